import { describe, expect, it } from 'vitest';
import { modelSchema, type ChatModelConfig, type EmbeddingModelConfig, type ImageModelConfig } from '../config/schema.js';
import { Pricing } from './pricing.js';

const pricing = new Pricing(2_000_000);
const image = (price: unknown) => modelSchema.parse({ id: 'img', kind: 'image', provider: 'p', sizes: [], price }) as ImageModelConfig;

describe('image prices', () => {
  it('prices a quality at its own price where one is given, else at its size', () => {
    const dalle3 = image({ perImage: { '1024x1024': 0.04, '1024x1792': 0.08, '1024x1024/hd': 0.08 } });
    const square = { width: 1024, height: 1024 };
    expect(pricing.imageUnitCredits(dalle3, square)).toBe(80_000);
    expect(pricing.imageUnitCredits(dalle3, square, 'standard')).toBe(80_000);
    expect(pricing.imageUnitCredits(dalle3, square, 'hd')).toBe(160_000);
    expect(pricing.imageUnitCredits(dalle3, { width: 1024, height: 1792 }, 'hd')).toBe(160_000);
    expect(pricing.imageUnitCredits(dalle3, { width: 512, height: 512 })).toBeUndefined();
  });

  it('a flat price is per started megapixel above one', () => {
    const flux = image({ perImage: 0.003 });
    expect(pricing.imageUnitCredits(flux, { width: 1024, height: 1024 })).toBe(6000);
    expect(pricing.imageUnitCredits(flux, { width: 1024, height: 576 })).toBe(6000);
    expect(pricing.imageUnitCredits(flux, { width: 1025, height: 1024 })).toBe(12_000);
    expect(pricing.imageUnitCredits(flux, { width: 2048, height: 2048 })).toBe(24_000);
    expect(pricing.imageUnitCredits(flux, undefined)).toBe(6000);
  });
});

describe('token prices', () => {
  const chat = (input: number, output: number) => modelSchema.parse({ id: 'c', kind: 'chat', provider: 'p', price: { input, output } }) as ChatModelConfig;

  it('converts exactly where the product is whole, however the float lands', () => {
    // 0.6 × 2,000,000 is 1,200,000.0000000002 in floating point: still 1,200,000 credits per 1M.
    expect(pricing.chatCredits(chat(0.15, 0.6), { promptTokens: 1_000_000, outputTokens: 1_000_000 })).toBe(1_500_000);
    expect(pricing.chatCredits(chat(0.15, 0.6), { promptTokens: 1000, outputTokens: 200 })).toBe(540);
  });

  it('never serves a priced model for free at a low credits.perUsd: a fraction of a credit per 1M tokens is charged as one', () => {
    const cents = new Pricing(100); // 1 credit = 1 cent
    // 0.15 USD per 1M tokens is 15 credits per 1M; 0.004 USD is 0.4 credits per 1M, charged as 1.
    expect(cents.chatCredits(chat(0.15, 0.004), { promptTokens: 1_000_000, outputTokens: 1_000_000 })).toBe(16);
    const dollars = new Pricing(1);
    expect(dollars.chatCredits(chat(0.15, 0.6), { promptTokens: 10, outputTokens: 10 })).toBe(1);
    expect(dollars.chatCredits(chat(1.4, 1.4), { promptTokens: 1_000_000, outputTokens: 0 })).toBe(2);
    // A price of 0 is still free.
    expect(dollars.chatCredits(chat(0, 0), { promptTokens: 1_000_000, outputTokens: 1_000_000 })).toBe(0);
  });
});

describe('inputTokensOver', () => {
  it('is the fewest input tokens whose price alone passes a budget', () => {
    const pricing = new Pricing(2_000_000);
    const model = modelSchema.parse({ id: 'm', kind: 'chat', provider: 'p', price: { input: 0.15, output: 0.6 } }) as ChatModelConfig;
    const over = pricing.inputTokensOver(model, 50_000);
    expect(pricing.chatCredits(model, { promptTokens: over, outputTokens: 0 })).toBeGreaterThan(50_000);
    expect(pricing.chatCredits(model, { promptTokens: over - 1, outputTokens: 0 })).toBeLessThanOrEqual(50_000);
    expect(pricing.inputTokensOver(model, Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY);
    const free = modelSchema.parse({ id: 'f', kind: 'chat', provider: 'p', price: { input: 0, output: 0.6 } }) as ChatModelConfig;
    expect(pricing.inputTokensOver(free, 50_000)).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('chat prices', () => {
  const chat = (price: unknown) => modelSchema.parse({ id: 'm', kind: 'chat', provider: 'p', price }) as ChatModelConfig;

  it('charges cached prompt tokens at cachedInput, and at input for a model without one', () => {
    const cached = chat({ input: 0.15, cachedInput: 0.075, output: 0.6 });
    expect(pricing.chatCredits(cached, { promptTokens: 100_000, outputTokens: 1_000 })).toBe(31_200);
    expect(pricing.chatCredits(cached, { promptTokens: 100_000, outputTokens: 1_000, cachedPromptTokens: 80_000 })).toBe(19_200);
    expect(pricing.chatCredits(cached, { promptTokens: 100_000, outputTokens: 1_000, cachedPromptTokens: 100_000 })).toBe(16_200);
    // A single cached token is charged too, at its cached price (rounded up to a credit).
    expect(pricing.chatCredits(cached, { promptTokens: 1, outputTokens: 0, cachedPromptTokens: 1 })).toBe(1);
    expect(pricing.chatCredits(chat({ input: 0.15, output: 0.6 }), { promptTokens: 100_000, outputTokens: 1_000, cachedPromptTokens: 80_000 })).toBe(31_200);
  });

  it('charges prompt tokens written to the cache at cacheWriteInput, and reserves every prompt token at the dearer of it and input', () => {
    // claude-sonnet-4-5: 3 in, 3.75 for a 5-minute cache write, 0.30 for a cache read, 15 out.
    const claude = chat({ input: 3, cacheWriteInput: 3.75, cachedInput: 0.3, output: 15 });
    // 10 plain + 200 written + 3,000 read, 40 out: 10 × 6,000,000 + 200 × 7,500,000 + 3,000 × 600,000 + 40 × 30,000,000 micro-credits.
    expect(pricing.chatCredits(claude, { promptTokens: 3_210, outputTokens: 40, cacheWritePromptTokens: 200, cachedPromptTokens: 3_000 })).toBe(4_560);
    // A broken report cannot lower the charge: writes past the prompt count as no more than the prompt.
    expect(pricing.chatCredits(claude, { promptTokens: 100, outputTokens: 0, cacheWritePromptTokens: 1_000 })).toBe(750);
    // Any prompt token may be written: the worst case prices the prompt at 3.75, and the settled
    // charge of a prompt all written stays within it.
    expect(pricing.chatWorstCase(claude, 1_000, 100)).toBe(10_500);
    expect(pricing.chatCredits(claude, { promptTokens: 1_000, outputTokens: 100, cacheWritePromptTokens: 1_000 })).toBe(10_500);
    expect(pricing.describe(claude)).toMatchObject({ input_per_1m_tokens: 6_000_000, cache_write_input_per_1m_tokens: 7_500_000, cached_input_per_1m_tokens: 600_000 });
  });

  it('charges audio tokens at audioInput / audioOutput, and at input / output for a model without them', () => {
    // gpt-4o-audio-preview: text 2.50 / 10, audio 40 / 80 USD per 1M.
    const audio = chat({ input: 2.5, output: 10, audioInput: 40, audioOutput: 80 });
    // 1,000 prompt tokens (400 of them audio), 500 output (300 audio).
    const usage = { promptTokens: 1_000, outputTokens: 500, audioPromptTokens: 400, audioOutputTokens: 300 };
    expect(pricing.chatCredits(audio, usage)).toBe(600 * 5 + 400 * 80 + 200 * 20 + 300 * 160);
    expect(pricing.chatCredits(chat({ input: 2.5, output: 10 }), usage)).toBe(1_000 * 5 + 500 * 20);
    // An audio count past its total is a broken report: the whole total is taken as audio, no more.
    expect(pricing.chatCredits(audio, { promptTokens: 10, outputTokens: 10, audioPromptTokens: 50, audioOutputTokens: 50 })).toBe(10 * 80 + 10 * 160);
  });

  it('a cost past exact arithmetic (2^53 − 1 micro-credits: a broken usage report) is no cost at all: NaN, charged as the reservation', () => {
    const mini = chat({ input: 0.15, output: 0.6 });
    // An adapter's absurd count held to 2^53 − 1, at 0.3 credits a token: it priced at 2.7e15 credits.
    expect(pricing.chatCredits(mini, { promptTokens: Number.MAX_SAFE_INTEGER, outputTokens: 1 })).toBeNaN();
    expect(pricing.embeddingCharge(modelSchema.parse({ id: 'e', kind: 'embedding', provider: 'p', price: { input: 0.02 } }) as EmbeddingModelConfig, Number.MAX_SAFE_INTEGER)).toBeNaN();
    // Just inside it, still priced exactly.
    expect(pricing.chatCredits(mini, { promptTokens: 30_000_000_000, outputTokens: 0 })).toBe(9_000_000_000);
  });

  it('adds price.perRequest to every charge and to the worst case, rounded up to a credit', () => {
    // A search model's fee: $0.03 a call = 60,000 credits; tokens at 2.50 / 10 = 5 / 20 credits each.
    const search = chat({ input: 2.5, output: 10, perRequest: 0.03 });
    expect(pricing.chatCredits(search, { promptTokens: 100, outputTokens: 10 })).toBe(500 + 200 + 60_000);
    expect(pricing.chatWorstCase(search, 100, 50)).toBe(500 + 1_000 + 60_000);
    expect(pricing.chatCredits(chat({ input: 0, output: 0, perRequest: 0.0000001 }), { promptTokens: 0, outputTokens: 0 })).toBe(1);
    expect(pricing.describe(search)).toMatchObject({ per_request: 60_000 });
  });

  it('prices the worst case at the audio price only where the request uses audio and it is dearer', () => {
    const audio = chat({ input: 2.5, output: 10, audioInput: 40, audioOutput: 80 });
    expect(pricing.chatWorstCase(audio, 1_000, 100)).toBe(1_000 * 5 + 100 * 20);
    expect(pricing.chatWorstCase(audio, 1_000, 100, { input: false, output: true })).toBe(1_000 * 5 + 100 * 160);
    expect(pricing.chatWorstCase(audio, 1_000, 100, { input: true, output: true })).toBe(1_000 * 80 + 100 * 160);
    // A (hypothetical) cheaper audio price never lowers the worst case.
    expect(pricing.chatWorstCase(chat({ input: 2.5, output: 10, audioOutput: 1 }), 1_000, 100, { input: true, output: true })).toBe(1_000 * 5 + 100 * 20);
  });

  it('refuses a cachedInput above input: the worst case prices the prompt at input', () => {
    const parsed = modelSchema.safeParse({ id: 'm', kind: 'chat', provider: 'p', price: { input: 0.15, cachedInput: 0.3, output: 0.6 } });
    expect(parsed.success).toBe(false);
    expect(parsed.error!.issues[0]).toMatchObject({ path: ['price', 'cachedInput'], message: 'cachedInput must not be above input' });
  });
});
