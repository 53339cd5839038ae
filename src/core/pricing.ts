// Turns usage into credits (SPEC §2: one metering unit; `credits.perUsd` credits per US dollar).
//
// Prices are configured in USD per 1M tokens or per image. Converting each price once to integer
// credits-per-million-tokens keeps the per-request arithmetic in exact integers: 0.15 USD × 2e6
// = 300,000 credits per 1M tokens, so 10 tokens cost exactly 3 credits, not 3.0000000000000004
// rounded up to 4. A request's total is rounded up to a whole credit, once.
import type { ChatModelConfig, EmbeddingModelConfig, ImageModelConfig, ModelConfig } from '../config/schema.js';
import type { ImageSize, Usage } from './types.js';

/** The token counts a chat call is priced by (a Usage, or a worst case's two totals). */
export type ChatTokens = Pick<Usage, 'promptTokens' | 'outputTokens' | 'cachedPromptTokens' | 'cacheWritePromptTokens' | 'audioPromptTokens' | 'audioOutputTokens'>;

/** Whether a chat request has audio in its prompt, and asks for audio out. */
export interface AudioUse {
  input: boolean;
  output: boolean;
}
export const NO_AUDIO: AudioUse = { input: false, output: false };

export function sizeKey(size: ImageSize): string {
  return `${size.width}x${size.height}`;
}

/** A `WxH` size the config schema or the request schema has already checked. */
export function parseSize(text: string): ImageSize {
  const [w, h] = text.split('x');
  return { width: Number(w), height: Number(h) };
}

/** 1024 × 1024 pixels: fal's billing unit for image size. */
const MEGAPIXEL = 1024 * 1024;

/**
 * A cost in micro-credits as charged: NaN past 2^53 − 1, where the sum is no longer exact — only a
 * broken report gets there (9 billion credits, $4,500 at the seed's rate, for one call). The
 * adapters hold an absurd token count (1e20) to 2^53 − 1 so its record fits every ledger; priced
 * at an input price below a credit per token, that made a "valid" charge of 2.7e15 credits,
 * driving a free day's counter or a prepaid balance that far. NaN is an unusable cost, which
 * settlement replaces with the reservation (chat-output.ts usableCredits).
 */
function exactMicroCredits(micro: number): number {
  return Number.isSafeInteger(micro) ? micro : Number.NaN;
}

export class Pricing {
  constructor(private readonly perUsd: number) {}

  /**
   * Credits per 1M tokens for a USD-per-1M price, as an integer, rounded up: rounded to the nearest,
   * a price worth less than half a credit per 1M tokens at a low credits.perUsd (0.15 at perUsd 1)
   * was served for free, and one of 1.4 credits charged 1. Up, the most it adds is one credit per
   * million tokens. The allowance absorbs the float error of an exact product
   * (0.6 × 2,000,000 = 1,200,000.0000000002).
   */
  private perMillion(usdPerMillion: number): number {
    return usdPerMillion > 0 ? Math.ceil(usdPerMillion * this.perUsd - 1e-6) : 0;
  }

  /**
   * What a chat call's tokens cost: prompt tokens the upstream's prompt cache served at
   * `cachedInput`, those it wrote to it at `cacheWriteInput`, and audio tokens at `audioInput` /
   * `audioOutput`, where the model has those prices; the rest at `input` / `output`.
   */
  chatCredits(model: ChatModelConfig, usage: ChatTokens): number {
    const { promptTokens, outputTokens } = usage;
    const { input, cachedInput = input, cacheWriteInput = input, output, audioInput = input, audioOutput = output } = model.price;
    const cached = usage.cachedPromptTokens ?? 0;
    // Parts of the totals, never more than the totals (a broken report cannot lower a charge).
    const written = Math.min(usage.cacheWritePromptTokens ?? 0, promptTokens - cached);
    const audioIn = Math.min(usage.audioPromptTokens ?? 0, promptTokens - cached - written);
    const audioOut = Math.min(usage.audioOutputTokens ?? 0, outputTokens);
    const microCredits =
      (promptTokens - cached - written - audioIn) * this.perMillion(input) +
      cached * this.perMillion(cachedInput) +
      written * this.perMillion(cacheWriteInput) +
      audioIn * this.perMillion(audioInput) +
      (outputTokens - audioOut) * this.perMillion(output) +
      audioOut * this.perMillion(audioOutput);
    return Math.ceil(exactMicroCredits(microCredits) / 1_000_000) + this.requestFee(model);
  }

  /** The model's fee per call, in credits (price.perRequest), rounded up. */
  private requestFee(model: ChatModelConfig): number {
    const fee = model.price.perRequest;
    return fee === undefined ? 0 : Math.ceil(fee * this.perUsd - 1e-9);
  }

  /**
   * A chat request's worst case: every prompt token at `input` (or at `cacheWriteInput` where the
   * model has that dearer price: any prompt token may be written to the cache) and the output
   * allowance at `output` — or at the audio price where it is dearer and the request has audio in
   * (`audio.input`) or asks for it out (`audio.output`): its usage cannot be known to be text
   * before the answer.
   */
  chatWorstCase(model: ChatModelConfig, promptTokens: number, allowance: number, audio: AudioUse = NO_AUDIO): number {
    const { output, audioOutput = output } = model.price;
    const input = Math.max(model.price.input, model.price.cacheWriteInput ?? 0);
    const { audioInput = input } = model.price;
    const inPrice = audio.input ? Math.max(input, audioInput) : input;
    const outPrice = audio.output ? Math.max(output, audioOutput) : output;
    return Math.ceil((promptTokens * this.perMillion(inPrice) + allowance * this.perMillion(outPrice)) / 1_000_000) + this.requestFee(model);
  }

  /**
   * The fewest input tokens of `model` that cost more than `credits` on their own: a prompt's count
   * past them tells nothing more, since no budget of `credits` can admit it. Infinity for a free
   * input price or an unbounded budget.
   */
  inputTokensOver(model: ChatModelConfig | EmbeddingModelConfig, credits: number): number {
    return this.tokensOver(model.price.input, credits);
  }

  /** As inputTokensOver, for output tokens of a chat model. */
  outputTokensOver(model: ChatModelConfig, credits: number): number {
    return this.tokensOver(model.price.output, credits);
  }

  private tokensOver(usdPerMillion: number, credits: number): number {
    const perMillion = this.perMillion(usdPerMillion);
    if (perMillion === 0 || !Number.isFinite(credits)) return Number.POSITIVE_INFINITY;
    return Math.floor((credits * 1_000_000) / perMillion) + 1;
  }

  /** An embedding request's worst case: its counted prompt at `input`. */
  embeddingCredits(model: EmbeddingModelConfig, promptTokens: number): number {
    return Math.ceil((promptTokens * this.perMillion(model.price.input)) / 1_000_000);
  }

  /** What an embedding call's reported prompt tokens cost (NaN past exact arithmetic, as chatCredits). */
  embeddingCharge(model: EmbeddingModelConfig, promptTokens: number): number {
    return Math.ceil(exactMicroCredits(promptTokens * this.perMillion(model.price.input)) / 1_000_000);
  }

  /**
   * Credits for one image of this size (and quality: dall-e-3's `hd` costs twice its `standard`,
   * gpt-image-1 prices low / medium / high). A quality with no price of its own costs the size's.
   */
  imageUnitCredits(model: ImageModelConfig, size: ImageSize | undefined, quality?: string): number | undefined {
    const perImage = model.price.perImage;
    if (typeof perImage === 'number') {
      // One price is for an image of up to a megapixel; a larger one pays per started megapixel, as
      // fal bills its flux models. A flat price let image_size {width: 100000, height: 100000}
      // through at the price of 1024×1024.
      const units = size ? Math.max(1, Math.ceil((size.width * size.height) / MEGAPIXEL)) : 1;
      return Math.ceil(perImage * units * this.perUsd - 1e-9);
    }
    const key = size ? sizeKey(size) : model.defaultSize;
    const usd = (quality !== undefined ? perImage[`${key}/${quality}`] : undefined) ?? perImage[key];
    return usd === undefined ? undefined : Math.ceil(usd * this.perUsd - 1e-9);
  }

  /** Public per-unit prices in credits, for /v1/models. */
  describe(model: ModelConfig): Record<string, unknown> {
    switch (model.kind) {
      case 'chat':
        return {
          input_per_1m_tokens: this.perMillion(model.price.input),
          ...(model.price.cachedInput !== undefined && { cached_input_per_1m_tokens: this.perMillion(model.price.cachedInput) }),
          ...(model.price.cacheWriteInput !== undefined && { cache_write_input_per_1m_tokens: this.perMillion(model.price.cacheWriteInput) }),
          output_per_1m_tokens: this.perMillion(model.price.output),
          ...(model.price.audioInput !== undefined && { audio_input_per_1m_tokens: this.perMillion(model.price.audioInput) }),
          ...(model.price.audioOutput !== undefined && { audio_output_per_1m_tokens: this.perMillion(model.price.audioOutput) }),
          ...(model.price.perRequest !== undefined && { per_request: this.requestFee(model) }),
        };
      case 'embedding':
        return { input_per_1m_tokens: this.perMillion(model.price.input) };
      case 'image': {
        const perImage = model.price.perImage;
        if (typeof perImage === 'number') return { per_image: Math.ceil(perImage * this.perUsd - 1e-9) };
        return {
          per_image: Object.fromEntries(Object.entries(perImage).map(([s, usd]) => [s, Math.ceil(usd * this.perUsd - 1e-9)])),
        };
      }
    }
  }
}
