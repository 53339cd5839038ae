// Normalises the two image request dialects the seed's API accepts — OpenAI's (`n`, `size`) and
// fal's (`num_images`, `image_size`) — into one count and one size that core prices and checks.
import type { ImageModelConfig } from '../config/schema.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { ImageCall } from '../providers/provider.js';
import { falSizePresetPixels, type ImageRequest } from './requests.js';
import { parseSize, sizeKey } from './pricing.js';
import type { ImageSize, JsonObject } from './types.js';

// `stream` too: only its default (false, or null, which OpenAI reads so) gets past the check below.
const OWN_FIELDS = new Set(['model', 'prompt', 'n', 'num_images', 'size', 'image_size', 'response_format', 'image_url', 'stream']);

export function normaliseImageRequest(model: ImageModelConfig, req: ImageRequest): ImageCall {
  // Refused before any upstream call: passed through, the provider generated (and billed) images
  // streamed as events this gateway does not read, and the caller got a 502 and retried.
  if (req.stream !== undefined && req.stream !== null && req.stream !== false) {
    throw new GatewayError('invalid_request', { vars: { detail: 'streamed image generation is not supported; leave stream out' }, param: 'stream' });
  }
  if (req.n !== undefined && req.num_images !== undefined && req.n !== req.num_images) {
    throw new GatewayError('invalid_request', { vars: { detail: 'n and num_images disagree; send one of them' }, param: 'n' });
  }
  const n = req.n ?? req.num_images ?? 1;

  let size: ImageSize | undefined;
  let sizePreset: string | undefined;
  let param: 'size' | 'image_size' = 'size';
  if (req.size !== undefined && req.image_size !== undefined) {
    throw new GatewayError('invalid_request', { vars: { detail: 'size and image_size both given; send one of them' }, param: 'size' });
  }
  if (req.size !== undefined) {
    size = parseSize(req.size);
  } else if (typeof req.image_size === 'string') {
    sizePreset = req.image_size;
    size = falSizePresetPixels[req.image_size];
    param = 'image_size';
  } else if (req.image_size !== undefined) {
    size = { width: req.image_size.width, height: req.image_size.height };
    param = 'image_size';
  }
  if (model.imageToImage && req.image_url === undefined) {
    throw new GatewayError('invalid_request', { vars: { detail: `image_url: ${model.id} transforms an image; send image_url` }, param: 'image_url' });
  }

  const extra: JsonObject = {};
  for (const [k, v] of Object.entries(req)) if (!OWN_FIELDS.has(k)) extra[k] = v;
  return {
    model,
    prompt: req.prompt,
    n,
    size,
    sizePreset,
    params: { count: req.n === undefined && req.num_images !== undefined ? 'num_images' : 'n', size: param },
    responseFormat: req.response_format,
    imageUrl: req.image_url,
    extra,
  };
}

/**
 * Refuses a size the model does not take. Run after the plan's shape rules: a plan that allows no
 * size of the model, or none this large, explains that (image_size_not_allowed, with the sizes that
 * pass) rather than sending the caller from one refusal to the next (SPEC §3, §4: every dall-e-3
 * request on the free plan, a 512x512 one included).
 */
export function checkModelSize(model: ImageModelConfig, call: ImageCall): void {
  const size = call.size;
  if (size && model.sizes.length > 0 && !model.sizes.includes(sizeKey(size))) {
    const param = call.params?.size ?? 'size';
    throw new GatewayError('invalid_request', {
      vars: { detail: `${param}: ${model.id} supports ${model.sizes.join(', ')}, not ${sizeKey(size)}` },
      param,
    });
  }
}

/** The size an image request is priced at: the one asked for, else the model's default. */
export function pricedSize(model: ImageModelConfig, call: ImageCall): ImageSize {
  return call.size ?? parseSize(model.defaultSize);
}
