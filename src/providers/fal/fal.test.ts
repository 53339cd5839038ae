import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FAKE_JPEG_B64, FAL_SEED, startFakeFal, type FakeFal } from '../../../test/helpers/fake-fal.js';
import { modelSchema, type ProviderConfig } from '../../config/schema.js';
import { GatewayError, UpstreamHttpError } from '../../errors/gateway-error.js';
import { createUpstreamClient } from '../../upstream/client.js';
import type { UpstreamClient } from '../../upstream/types.js';
import { BilledFailure, type CallContext, type ImageCall, type Provider } from '../provider.js';
import { falProviderType } from './index.js';
import { rejection } from '../../../test/helpers/rejection.js';

const flux = modelSchema.parse({
  id: 'flux/schnell',
  kind: 'image',
  provider: 'fal',
  upstream: 'fal-ai/flux/schnell',
  price: { perImage: 0.003 },
});
const chatModel = modelSchema.parse({ id: 'c', kind: 'chat', provider: 'fal', price: { input: 1, output: 1 } });

let fake: FakeFal;
let client: UpstreamClient;
let provider: Provider;

const config = (over: Partial<ProviderConfig> = {}): ProviderConfig => ({
  id: 'fal',
  type: 'fal',
  baseUrl: fake.url,
  apiKey: 'fal-key-id:secret',
  headers: {},
  ...over,
});
const ctx = (): CallContext => ({ requestId: 'req-1', signal: new AbortController().signal });
const call = (over: Partial<ImageCall> = {}): ImageCall => ({
  model: flux,
  prompt: 'a lighthouse at dusk',
  n: 1,
  size: undefined,
  sizePreset: undefined,
  responseFormat: undefined,
  imageUrl: undefined,
  extra: {},
  ...over,
});
const lastBody = () => fake.requests.at(-1)!.body as Record<string, unknown>;

beforeAll(async () => {
  fake = await startFakeFal();
  client = createUpstreamClient({
    connectTimeoutMs: 1_000,
    firstByteTimeoutMs: 400,
    totalTimeoutMs: 10_000,
    idleTimeoutMs: 400,
    connectionsPerOrigin: 8,
  });
  provider = falProviderType.create({ config: config(), client });
});
beforeEach(() => {
  fake.requests.length = 0;
});
afterAll(async () => {
  await client.close();
  await fake.close();
});

describe('fal provider: request mapping', () => {
  it('POSTs to baseUrl/upstream with Key auth, prompt, num_images and extra fields', async () => {
    await provider.generateImage(call({ n: 2, extra: { seed: 7, guidance_scale: 3.5 } }), ctx());
    const req = fake.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/fal-ai/flux/schnell');
    expect(req.headers.authorization).toBe('Key fal-key-id:secret');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.body).toEqual({ prompt: 'a lighthouse at dusk', num_images: 2, seed: 7, guidance_scale: 3.5 });
  });

  it('sends a preset name when the client used one, else {width, height}, else nothing', async () => {
    await provider.generateImage(call({ sizePreset: 'portrait_16_9', size: { width: 576, height: 1024 } }), ctx());
    expect(lastBody().image_size).toBe('portrait_16_9');
    await provider.generateImage(call({ size: { width: 640, height: 480 } }), ctx());
    expect(lastBody().image_size).toEqual({ width: 640, height: 480 });
    await provider.generateImage(call(), ctx());
    expect(lastBody()).not.toHaveProperty('image_size');
  });

  it('sends image_url for image-to-image', async () => {
    await provider.generateImage(call({ imageUrl: 'https://example.com/in.png' }), ctx());
    expect(lastBody().image_url).toBe('https://example.com/in.png');
  });
});

describe('fal provider: response mapping', () => {
  it('answers in the OpenAI images shape with urls, seed and image usage', async () => {
    const before = Math.floor(Date.now() / 1000);
    const { body, usage } = await provider.generateImage(call({ n: 3 }), ctx());
    expect(body.data).toEqual([0, 1, 2].map((i) => ({ url: `https://fal.example/${i}.jpeg` })));
    expect(body.created).toBeGreaterThanOrEqual(before);
    expect(body.created).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
    expect(body.seed).toBe(FAL_SEED);
    expect(usage).toEqual({ promptTokens: 0, outputTokens: 0, images: 3 });
  });

  it('asks for sync_mode and turns data URIs into plain base64 for b64_json', async () => {
    const { body } = await provider.generateImage(call({ n: 2, responseFormat: 'b64_json' }), ctx());
    expect(lastBody().sync_mode).toBe(true);
    expect(body.data).toEqual([{ b64_json: FAKE_JPEG_B64 }, { b64_json: FAKE_JPEG_B64 }]);
  });

  it('downloads the file when a model ignored sync_mode', async () => {
    const files = createServer((_req, res) => res.end(Buffer.from([0xff, 0xd8, 0xff, 0x00])));
    await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
    const fileUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}/img.jpeg`;
    try {
      fake.enqueue({ kind: 'json', body: { images: [{ url: fileUrl, width: 1, height: 1, content_type: 'image/jpeg' }], seed: 1 } });
      const { body } = await provider.generateImage(call({ responseFormat: 'b64_json' }), ctx());
      expect(body.data).toEqual([{ b64_json: Buffer.from([0xff, 0xd8, 0xff, 0x00]).toString('base64') }]);
    } finally {
      files.closeAllConnections();
      await new Promise<void>((r) => files.close(() => r()));
    }
  });

  it('downloads over https only, or over http from baseUrl\'s own host: an answer naming an internal address is not fetched', async () => {
    for (const url of ['http://169.254.169.254/latest/meta-data/iam', 'http://localhost/admin', 'file:///etc/passwd', 'ftp://fal.media/x.jpeg', 'not a url']) {
      const before = fake.requests.length;
      fake.enqueue({ kind: 'json', body: { images: [{ url }], seed: 1 } });
      const err = await rejection(provider.generateImage(call({ responseFormat: 'b64_json' }), ctx()));
      // fal made (and billed) the image: charged, and the caller told why it has none.
      expect(err, url).toBeInstanceOf(BilledFailure);
      expect((err as BilledFailure).error, url).toMatchObject({ status: 502, body: { error: { code: 'invalid_upstream_response' } } });
      expect(fake.requests.length, url).toBe(before + 1);
    }
  });

  it('a download that fails after fal made the images is a BilledFailure: the images are charged, the error answered', async () => {
    const files = createServer((_req, res) => {
      res.statusCode = 404;
      res.end('gone');
    });
    await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
    const fileUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}/img.jpeg`;
    try {
      fake.enqueue({ kind: 'json', body: { images: [{ url: fileUrl }, { url: fileUrl }], seed: 1 } });
      const err = await rejection(provider.generateImage(call({ n: 2, responseFormat: 'b64_json' }), ctx()));
      expect(err).toBeInstanceOf(BilledFailure);
      expect((err as BilledFailure).usage).toEqual({ promptTokens: 0, outputTokens: 0, images: 2 });
      expect((err as BilledFailure).error).toMatchObject({ status: 502, body: { error: { code: 'invalid_upstream_response' } } });
    } finally {
      files.closeAllConnections();
      await new Promise<void>((r) => files.close(() => r()));
    }
  });

  it('a data URI that does not decode is a 502 invalid_upstream_response, not a crash', async () => {
    fake.enqueue({ kind: 'json', body: { images: [{ url: 'data:image/png,%E0%A4%A' }], seed: 1 } });
    const err = await rejection(provider.generateImage(call({ responseFormat: 'b64_json' }), ctx()));
    expect(err).toBeInstanceOf(BilledFailure);
    expect((err as BilledFailure).error).toMatchObject({ status: 502, body: { error: { code: 'invalid_upstream_response' } } });
  });

  it('takes no more images than it asked for: the rest are neither downloaded nor relayed', async () => {
    let downloads = 0;
    const files = createServer((_req, res) => {
      downloads++;
      res.end(Buffer.from([0xff, 0xd8, 0xff, 0x00]));
    });
    await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
    const fileUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}/img.jpeg`;
    try {
      fake.enqueue({ kind: 'json', body: { images: Array.from({ length: 50 }, (_, i) => ({ url: `${fileUrl}?${i}` })), seed: 1 } });
      const { body, usage } = await provider.generateImage(call({ n: 2, responseFormat: 'b64_json' }), ctx());
      expect(body.data).toHaveLength(2);
      expect(usage.images).toBe(2);
      expect(downloads).toBe(2);
      fake.enqueue({ kind: 'json', body: { images: Array.from({ length: 50 }, (_, i) => ({ url: `https://fal.example/${i}.jpeg` })), seed: 1 } });
      expect((await provider.generateImage(call({ n: 1 }), ctx())).body.data).toEqual([{ url: 'https://fal.example/0.jpeg' }]);
    } finally {
      files.closeAllConnections();
      await new Promise<void>((r) => files.close(() => r()));
    }
  });

  it('counts the images fal actually returned', async () => {
    fake.enqueue({ kind: 'json', body: { images: [{ url: 'https://fal.example/only.jpeg' }], seed: 1 } });
    const { usage } = await provider.generateImage(call({ n: 4 }), ctx());
    expect(usage.images).toBe(1);
  });

  it('rejects a 200 that lists no image: invalid_upstream_response, nothing charged', async () => {
    fake.enqueue({ kind: 'json', body: { images: [], seed: 1 } });
    const err = await rejection(provider.generateImage(call(), ctx()));
    expect(err).not.toBeInstanceOf(BilledFailure);
    expect(err).toMatchObject({ status: 502, body: { error: { code: 'invalid_upstream_response' } } });
  });

  it('rejects a 200 without an images list', async () => {
    fake.enqueue({ kind: 'json', body: { status: 'IN_QUEUE' } });
    const err = await rejection(provider.generateImage(call(), ctx()));
    expect((err as UpstreamHttpError).status).toBe(502);
  });
});

describe('fal provider: errors', () => {
  it('a missing or refused key is upstream_auth_failed (502), with fal’s detail only as the cause', async () => {
    const keyless = falProviderType.create({ config: config({ apiKey: undefined }), client });
    expect(keyless.configured).toBe(false);
    const err = await rejection(keyless.generateImage(call(), ctx()));
    expect(err).toBeInstanceOf(GatewayError);
    expect(err).toMatchObject({ code: 'upstream_auth_failed', status: 502, vars: { provider: 'fal', upstreamStatus: 401 } });
    expect(String((err as GatewayError).cause)).toContain('Missing authorization header');
  });

  it('a 422 validation list becomes one message with the field as param', async () => {
    fake.enqueue({
      kind: 'json',
      status: 422,
      body: {
        detail: [
          { loc: ['body', 'num_images'], msg: 'ensure this value is less than or equal to 4', type: 'value_error.number.not_le' },
          { loc: ['body', 'image_size'], msg: 'value is not a valid enumeration member', type: 'type_error.enum' },
        ],
      },
    });
    const err = (await rejection(provider.generateImage(call({ n: 9 }), ctx()))) as UpstreamHttpError;
    expect(err.status).toBe(422);
    expect(err.body.error).toEqual({
      message: 'num_images: ensure this value is less than or equal to 4; image_size: value is not a valid enumeration member',
      type: 'invalid_request_error',
      code: 'value_error.number.not_le',
      param: 'num_images',
    });
  });

  it('an HTML or text body keeps its status and becomes a short message', async () => {
    fake.enqueue({ kind: 'text', status: 504, body: '<!DOCTYPE html><html><body><h1>Gateway Timeout</h1></body></html>' });
    const err = (await rejection(provider.generateImage(call(), ctx()))) as UpstreamHttpError;
    expect(err.status).toBe(504);
    expect(err.body.error).toEqual({ message: 'Gateway Timeout', type: 'api_error', code: null, param: null });
  });

  it('transport failures map to the catalogue', async () => {
    // A hung call waits for the total limit (the answer's head comes with the images): a short one here.
    const bounded = createUpstreamClient({ connectTimeoutMs: 1_000, firstByteTimeoutMs: 400, totalTimeoutMs: 500, idleTimeoutMs: 400, connectionsPerOrigin: 1 });
    fake.enqueue({ kind: 'hang' });
    const timeout = await rejection(falProviderType.create({ config: config(), client: bounded }).generateImage(call(), ctx()));
    expect((timeout as GatewayError).code).toBe('upstream_timeout');
    expect((timeout as GatewayError).vars).toMatchObject({ phase: 'total', timeoutMs: 500 });
    fake.enqueue({ kind: 'destroy' });
    const dropped = await rejection(provider.generateImage(call(), ctx()));
    expect((dropped as GatewayError).code).toBe('upstream_unavailable');
  });

  it('waits for the images past the first-byte limit (the synchronous endpoint answers when they are made), up to the total one', async () => {
    const slow = await startFakeFal({ delayMs: 1_000 });
    try {
      const p = falProviderType.create({ config: config({ baseUrl: slow.url }), client });
      expect((await p.generateImage(call(), ctx())).usage.images).toBe(1);
    } finally {
      await slow.close();
    }
  });

  it('refuses chat and embeddings with invalid_request', async () => {
    for (const p of [
      provider.chat({ model: chatModel, body: {} }, ctx()),
      provider.chatStream({ model: chatModel, body: {} }, ctx()),
      provider.embed({ model: chatModel, body: {} }, ctx()),
    ]) {
      const err = await rejection(p);
      expect(err).toBeInstanceOf(GatewayError);
      expect((err as GatewayError).code).toBe('invalid_request');
      expect((err as GatewayError).vars.detail).toBe('provider fal serves image models only');
    }
    expect(fake.requests).toHaveLength(0);
  });
});
