// Canonical domain types. Provider adapters translate their wire formats into these at the edge;
// nothing in core knows which upstream produced them.

export type ModelKind = 'chat' | 'embedding' | 'image';
export type Surface = 'api' | 'playground';

/** Token usage as the gateway meters it. `outputTokens` is 0 for embeddings and images. */
export interface Usage {
  promptTokens: number;
  outputTokens: number;
  /**
   * Of `promptTokens`, those the upstream served from its prompt cache (billed at the model's
   * `price.cachedInput`). Absent: none, or the upstream did not say.
   */
  cachedPromptTokens?: number;
  /**
   * Of `promptTokens`, those the upstream wrote to its prompt cache (billed at the model's
   * `price.cacheWriteInput`). Absent: none, or the upstream did not say.
   */
  cacheWritePromptTokens?: number;
  /** Of `promptTokens` and `outputTokens`, the audio ones (billed at `price.audioInput` / `audioOutput`). */
  audioPromptTokens?: number;
  audioOutputTokens?: number;
  /** Images actually produced (image models only). */
  images?: number;
}

/** Width × height in pixels; the one size representation core prices and checks. */
export interface ImageSize {
  width: number;
  height: number;
}

export type JsonObject = Record<string, unknown>;
