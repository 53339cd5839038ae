// The one interface every upstream kind implements. Adapters live in providers/<type>/ and are the
// only code that knows a wire format; the registry (registry.ts) is the only list of them.
import type { ImageSize, JsonObject, Usage } from '../core/types.js';
import type { JsonText } from '../lib/json-text.js';
import type { ModelConfig, ProviderConfig } from '../config/schema.js';
import type { UpstreamClient } from '../upstream/types.js';

export interface CallContext {
  requestId: string;
  /**
   * Cancels the call; adapters pass it to the upstream call. The gateway passes none: once
   * admitted, a call runs to its end (bounded by the upstream timeouts) because the provider
   * charges for it either way; a stream is cut with its close() instead.
   */
  signal?: AbortSignal;
}

/**
 * A chat request in the OpenAI shape. `body` is the client's body, already validated, with
 * `model` still the gateway's model id: the adapter substitutes `model.upstream`. Unknown fields
 * (tools, response_format, seed, …) must pass through untouched — unless the adapter translates to
 * a wire format that refuses unknown fields: it then drops the hints it has no word for and
 * refuses (400 invalid_request naming the field) those whose meaning it cannot keep.
 */
export interface ChatCall {
  model: ModelConfig;
  body: JsonObject;
}

export interface ChatResult {
  /**
   * OpenAI chat.completion object, `model` rewritten to the gateway's id: the upstream's text with
   * that one member replaced (lib/json-text.ts), not parsed and serialised again.
   */
  body: JsonText;
  /** From the upstream's `usage`; undefined when the upstream reported none. */
  usage: Usage | undefined;
}

/** One SSE event of a chat stream, in OpenAI's `chat.completion.chunk` shape. */
export interface ChatStreamEvent {
  /** The parsed chunk (model rewritten to the gateway's id). */
  chunk: JsonObject;
  /** Set on the chunk that carries upstream usage (OpenAI: the final chunk with empty `choices`). */
  usage?: Usage;
  /**
   * The event's data exactly as the upstream sent it, when it is `chunk` serialised (the adapter
   * changed nothing): relayed as is, saving a JSON.stringify per event.
   */
  raw?: string;
}

export interface ChatStream {
  /** Yields chunks as the upstream sends them; ends after upstream's `[DONE]` (or end of body). */
  events: AsyncIterable<ChatStreamEvent>;
  /** Abort the upstream request and free its connection. Idempotent. */
  close(): void;
}

export interface EmbedCall {
  model: ModelConfig;
  body: JsonObject;
}

export interface EmbedResult {
  /** OpenAI embeddings list, `model` rewritten to the gateway's id (as ChatResult's body). */
  body: JsonText;
  usage: Usage | undefined;
}

/**
 * An image request normalised by core: whichever of the OpenAI (`n`, `size`) or fal-style
 * (`num_images`, `image_size`) fields the client used, the adapter receives count and size here
 * and writes them in its own wire format.
 */
export interface ImageCall {
  model: ModelConfig;
  prompt: string;
  n: number;
  /** Undefined: let the upstream use its default size. */
  size: ImageSize | undefined;
  /** The name the client used for the size, when it used a fal preset such as `square_hd`. */
  sizePreset: string | undefined;
  /**
   * The fields the client named the count and the size in (`n` or `num_images`, `size` or
   * `image_size`), for the `param` of a refusal; absent: `n`, and `image_size` only for a preset.
   */
  params?: { count: 'n' | 'num_images'; size: 'size' | 'image_size' };
  responseFormat: 'url' | 'b64_json' | undefined;
  /** Source image for image-to-image models. */
  imageUrl: string | undefined;
  /** Every other field of the client's body (seed, guidance_scale, quality, style…), passed through. */
  extra: JsonObject;
}

export interface ImageResult {
  /** OpenAI images response: `{ created, data: [{ url } | { b64_json }] }`. */
  body: JsonObject;
  usage: Usage;
}

/**
 * A call that failed after the upstream had done (and billed) the work — fal generated the images,
 * then their download failed. The gateway charges `usage` and answers with `error`, where any other
 * failure releases everything.
 */
export class BilledFailure extends Error {
  constructor(
    readonly error: Error,
    readonly usage: Usage,
  ) {
    super(error.message, { cause: error });
    this.name = 'BilledFailure';
  }
}

export interface Provider {
  readonly id: string;
  /** False when the provider lacks credentials: calls answer 503 provider_not_configured. */
  readonly configured: boolean;
  chat(call: ChatCall, ctx: CallContext): Promise<ChatResult>;
  chatStream(call: ChatCall, ctx: CallContext): Promise<ChatStream>;
  embed(call: EmbedCall, ctx: CallContext): Promise<EmbedResult>;
  generateImage(call: ImageCall, ctx: CallContext): Promise<ImageResult>;
}

export interface ProviderDeps {
  config: ProviderConfig;
  client: UpstreamClient;
}

/** What a provider type module exports: its name and how to build one from config. */
export interface ProviderType {
  readonly type: string;
  /** The model kinds it serves; absent: every kind (config/load.ts refuses a model on a type that cannot serve it). */
  readonly kinds?: readonly ('chat' | 'embedding' | 'image')[];
  create(deps: ProviderDeps): Provider;
}
