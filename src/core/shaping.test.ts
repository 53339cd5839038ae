// Shape rules on image sizes: a model with a list of sizes is cut down to one of them; a model
// that takes any size (no `sizes`, like fal's flux) to the plan's maxSize itself. And the output
// cap at its boundary: a limit equal to the cap is no clamp.
import { describe, expect, it } from 'vitest';
import { modelSchema, type ChatModelConfig, type ImageModelConfig, type ShapeRule } from '../config/schema.js';
import type { ImageCall } from '../providers/provider.js';
import { shapeRequest } from './shaping.js';

const flux: ImageModelConfig = { id: 'flux/schnell', kind: 'image', provider: 'fal', upstream: 'fal-ai/flux/schnell', pro: false, sizes: [], defaultSize: '1024x1024', imageToImage: false, price: { perImage: 0.003 } };
const dalle2: ImageModelConfig = { ...flux, id: 'dall-e-2', provider: 'openai', upstream: 'dall-e-2', sizes: ['256x256', '512x512', '1024x1024'], price: { perImage: { '256x256': 0.016, '512x512': 0.018, '1024x1024': 0.02 } } };
const rule = (onExceed: 'clamp' | 'reject'): ShapeRule => ({ id: 'small_images', shape: 'image_sizes', maxSize: '512x512', onExceed });

function shape(model: ImageModelConfig, onExceed: 'clamp' | 'reject', preset?: string) {
  const size = { width: 1024, height: 768 };
  const call: ImageCall = { model, prompt: 'x', n: 1, size, sizePreset: preset, responseFormat: undefined, imageUrl: undefined, extra: {} };
  try {
    return { outcome: shapeRequest([rule(onExceed)], 'api', model, { kind: 'image', call, size }), call };
  } catch (err) {
    return { error: err as { code: string; message: string; vars: { detail: string }; param: string } };
  }
}

describe('image_sizes', () => {
  it('clamps a model that takes any size to maxSize', () => {
    const { outcome, call } = shape(flux, 'clamp', 'landscape_4_3');
    expect(outcome).toEqual({ clamped: ['size=512x512'], size: { width: 512, height: 512 } });
    expect(call).toMatchObject({ size: { width: 512, height: 512 }, sizePreset: undefined });
  });

  it('clamps a model with a list of sizes to the largest that fits', () => {
    expect(shape(dalle2, 'clamp').outcome).toEqual({ clamped: ['size=512x512'], size: { width: 512, height: 512 } });
  });

  it('refuses a model that takes any size by naming the size to ask for, not by calling it unusable', () => {
    const { error } = shape(flux, 'reject', 'landscape_4_3');
    expect(error).toMatchObject({ code: 'image_size_not_allowed', param: 'image_size' });
    expect(error!.vars.detail).toBe('Your plan allows flux/schnell images up to 512x512: use a size within 512x512 (the request asked for 1024x768).');
  });

  it("a refusal offers only the sizes the plan's cost ceiling lets through too, and calls the model unusable when none is", () => {
    const size = { width: 1024, height: 1024 };
    const refusal = (ceiling: number, n = 1) => {
      const call: ImageCall = { model: dalle2, prompt: 'x', n, size, sizePreset: undefined, responseFormat: undefined, imageUrl: undefined, extra: {} };
      const rules = [rule('reject'), { id: 'image_cost', shape: 'max_request_cost', limit: ceiling, onExceed: 'reject' } as ShapeRule];
      // 2,000,000 credits a dollar: 32,000 for 256x256, 36,000 for 512x512.
      const unitCredits = (s: { width: number }) => (s.width === 256 ? 32_000 : 36_000);
      try {
        shapeRequest(rules, 'api', dalle2, { kind: 'image', call, size, unitCredits });
      } catch (err) {
        return (err as { vars: { detail: string } }).vars.detail;
      }
      throw new Error('not refused');
    };
    expect(refusal(40_000)).toBe('Your plan allows dall-e-2 images up to 512x512: use size 256x256 or 512x512 (the request asked for 1024x1024).');
    expect(refusal(35_000)).toBe('Your plan allows dall-e-2 images up to 512x512: use size 256x256 (the request asked for 1024x1024).');
    // Two images of the smallest size are over it: none is offered.
    expect(refusal(35_000, 2)).toMatch(/^dall-e-2 images within 512x512, the largest your plan allows \(size 256x256 or 512x512\), cost more than the 35,000 credits your plan allows a request, so it cannot be used on this plan/);
    expect(refusal(512)).toMatch(/cost more than the 512 credits your plan allows a request, so it cannot be used on this plan\. Update your payment method to use it\.$/);
  });

  it("an unusable model's refusal sends to a payment method only where one lifts the plan", () => {
    const size = { width: 1024, height: 1024 };
    const dalle3: ImageModelConfig = { ...dalle2, id: 'dall-e-3', sizes: ['1024x1024', '1792x1024'], price: { perImage: { '1024x1024': 0.04, '1792x1024': 0.08 } } };
    const detail = (paymentLifts: boolean) => {
      const call: ImageCall = { model: dalle3, prompt: 'x', n: 1, size, sizePreset: undefined, responseFormat: undefined, imageUrl: undefined, extra: {} };
      try {
        shapeRequest([rule('reject')], 'api', dalle3, { kind: 'image', call, size }, paymentLifts);
      } catch (err) {
        return (err as { vars: { detail: string } }).vars.detail;
      }
      throw new Error('not refused');
    };
    expect(detail(true)).toMatch(/cannot be used on this plan\. Update your payment method to use it\.$/);
    // An operator's plan (a team's): a card on file changes nothing.
    expect(detail(false)).toMatch(/cannot be used on this plan\. Only the operator of this service can change that\.$/);
  });

  it('refuses a model with no size within maxSize as unusable on the plan', () => {
    const { error } = shape({ ...dalle2, sizes: ['1024x1024'] }, 'clamp');
    expect(error!.vars.detail).toMatch(/^dall-e-2 has no size within 512x512, the largest your plan allows \(its sizes are 1024x1024\), so it cannot be used/);
  });
});

describe('max_output_tokens', () => {
  const chat = modelSchema.parse({ id: 'gpt-4o-mini', kind: 'chat', provider: 'openai', price: { input: 0.15, output: 0.6 } }) as ChatModelConfig;
  const cap: ShapeRule = { id: 'max_output_tokens', shape: 'max_output_tokens', limit: 512, onExceed: 'clamp' };
  const shapeChat = (body: Record<string, unknown>) => shapeRequest([cap], 'api', chat, { kind: 'chat', body });

  it('leaves a limit equal to the cap alone: nothing was clamped, so the response does not say so (SPEC §3)', () => {
    for (const field of ['max_tokens', 'max_completion_tokens']) {
      const body = { [field]: 512 };
      expect(shapeChat(body)).toEqual({ clamped: [] });
      expect(body).toEqual({ [field]: 512 });
    }
  });

  it('clamps one token above it', () => {
    const body = { max_tokens: 513 };
    expect(shapeChat(body)).toEqual({ clamped: ['max_tokens=512'] });
    expect(body).toEqual({ max_tokens: 512 });
  });
});

describe('image_sizes on both sides', () => {
  it('holds the height to maxSize as well as the width: a tall image is no smaller than a wide one', () => {
    const call: ImageCall = { model: flux, prompt: 'x', n: 1, size: { width: 512, height: 4096 }, sizePreset: undefined, responseFormat: undefined, imageUrl: undefined, extra: {} };
    let refused: unknown;
    try {
      shapeRequest([rule('reject')], 'api', flux, { kind: 'image', call: { ...call }, size: call.size! });
    } catch (err) {
      refused = err;
    }
    expect(refused).toMatchObject({ code: 'image_size_not_allowed' });
    expect(shapeRequest([rule('clamp')], 'api', flux, { kind: 'image', call, size: call.size! })).toEqual({ clamped: ['size=512x512'], size: { width: 512, height: 512 } });
  });
});
