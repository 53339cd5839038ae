// A fake fal.ai synchronous API (`POST {url}/{model path}`, `Authorization: Key …`) answering in
// fal's shapes: `{ images: [...], timings, seed, has_nsfw_concepts, prompt }`, FastAPI-style errors.
import type { ServerResponse } from 'node:http';
import { sendJson, startFakeServer, type Behaviour, type FakeUpstream, type RecordedRequest } from './fake-server.js';

export type { Behaviour, RecordedRequest };
export type FakeFal = FakeUpstream;

export const FAL_SEED = 42;
// A tiny JPEG header-ish payload: the fake never decodes it, it only has to round-trip.
export const FAKE_JPEG_B64 = Buffer.from('fake-jpeg-bytes').toString('base64');

/** fal's preset sizes (https://docs.fal.ai: image_size enum). */
export const FAL_PRESETS: Record<string, { width: number; height: number }> = {
  square_hd: { width: 1024, height: 1024 },
  square: { width: 512, height: 512 },
  portrait_4_3: { width: 768, height: 1024 },
  portrait_16_9: { width: 576, height: 1024 },
  landscape_4_3: { width: 1024, height: 768 },
  landscape_16_9: { width: 1024, height: 576 },
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function answer(req: RecordedRequest, res: ServerResponse): void {
  if (req.method !== 'POST') return sendJson(res, 405, { detail: 'Method Not Allowed' });
  const auth = req.headers.authorization;
  if (auth === undefined) return sendJson(res, 401, { detail: 'Missing authorization header' });
  if (!/^Key \S+/.test(auth)) return sendJson(res, 401, { detail: 'No user found for Key ID and Secret' });
  const body = isObject(req.body) ? req.body : {};
  if (typeof body.prompt !== 'string') {
    return sendJson(res, 422, { detail: [{ loc: ['body', 'prompt'], msg: 'field required', type: 'value_error.missing' }] });
  }
  const n = typeof body.num_images === 'number' ? body.num_images : 1;
  const size = body.image_size;
  const dims =
    typeof size === 'string'
      ? (FAL_PRESETS[size] ?? FAL_PRESETS.landscape_4_3!)
      : isObject(size) && typeof size.width === 'number' && typeof size.height === 'number'
        ? { width: size.width, height: size.height }
        : FAL_PRESETS.landscape_4_3!;
  const sync = body.sync_mode === true;
  const images = Array.from({ length: n }, (_, i) => ({
    url: sync ? `data:image/jpeg;base64,${FAKE_JPEG_B64}` : `https://fal.example/${i}.jpeg`,
    width: dims.width,
    height: dims.height,
    content_type: 'image/jpeg',
  }));
  sendJson(res, 200, {
    images,
    timings: { inference: 0.1 },
    seed: typeof body.seed === 'number' ? body.seed : FAL_SEED,
    has_nsfw_concepts: images.map(() => false),
    prompt: body.prompt,
  });
}

export function startFakeFal(opts: { delayMs?: number } = {}): Promise<FakeFal> {
  return startFakeServer({ pathPrefix: '', delayMs: opts.delayMs, handle: answer });
}
