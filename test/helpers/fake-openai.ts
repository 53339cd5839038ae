// A fake OpenAI-compatible upstream speaking the real wire format: chat (JSON and SSE replayed from
// test/fixtures/openai/chat-stream.sse), embeddings (float or base64) and image generations.
import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import {
  sendJson,
  sendSse,
  startFakeServer,
  type Behaviour,
  type FakeUpstream,
  type RecordedRequest,
} from './fake-server.js';

export type { Behaviour, RecordedRequest };
export type FakeOpenAI = FakeUpstream;

export const FAKE_CONTENT = 'Hello from the fake upstream.';
export const FAKE_USAGE = { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 } as const;
export const EMBEDDING_DIMENSIONS = 8;
export const EMBEDDING_TOKENS_PER_INPUT = 4;

// A 1×1 transparent PNG.
export const FAKE_PNG_B64 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

const transcript = readFileSync(new URL('../fixtures/openai/chat-stream.sse', import.meta.url), 'utf8');
/** The fixture's data payloads, in order ([DONE] included). */
export const chatStreamFixture: string[] = transcript
  .split('\n\n')
  .filter((block) => block.startsWith('data: '))
  .map((block) => block.slice('data: '.length));

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const unix = () => Math.floor(Date.now() / 1000);
let seq = 0;

function notFound(req: RecordedRequest, res: ServerResponse): void {
  sendJson(res, 404, {
    error: { message: `Invalid URL (${req.method} ${req.path})`, type: 'invalid_request_error', param: null, code: null },
  });
}

function chat(req: RecordedRequest, res: ServerResponse): Promise<void> | void {
  const body = isObject(req.body) ? req.body : {};
  const model = typeof body.model === 'string' ? body.model : 'gpt-4o-mini';
  if (body.stream === true) {
    const withUsage = isObject(body.stream_options) && body.stream_options.include_usage === true;
    const events: string[] = [];
    for (const data of chatStreamFixture) {
      if (data === '[DONE]') {
        events.push(data);
        continue;
      }
      const chunk = JSON.parse(data) as Record<string, unknown>;
      if (Array.isArray(chunk.choices) && chunk.choices.length === 0 && !withUsage) continue;
      chunk.model = model;
      events.push(JSON.stringify(chunk));
    }
    return sendSse(res, events);
  }
  sendJson(res, 200, {
    id: `chatcmpl-fake${++seq}`,
    object: 'chat.completion',
    created: unix(),
    model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: FAKE_CONTENT, refusal: null, annotations: [] },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: {
      ...FAKE_USAGE,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    },
    service_tier: 'default',
    system_fingerprint: 'fp_fake',
  });
}

/** Input items as OpenAI counts them: a string or a token array is one, a list is one per element. */
function inputCount(input: unknown): number {
  if (!Array.isArray(input)) return 1;
  if (input.length > 0 && input.every((x) => typeof x === 'number')) return 1;
  return input.length;
}

/** Deterministic vector; every value is exact in float32 so base64 and float forms agree. */
export function fakeEmbedding(index: number): number[] {
  return Array.from({ length: EMBEDDING_DIMENSIONS }, (_, j) => (j + 1) / 16 + index / 2);
}

function embeddings(req: RecordedRequest, res: ServerResponse): void {
  const body = isObject(req.body) ? req.body : {};
  const n = inputCount(body.input);
  const base64 = body.encoding_format === 'base64';
  const data = Array.from({ length: n }, (_, i) => {
    const v = fakeEmbedding(i);
    return {
      object: 'embedding',
      index: i,
      embedding: base64 ? Buffer.from(new Float32Array(v).buffer).toString('base64') : v,
    };
  });
  const tokens = n * EMBEDDING_TOKENS_PER_INPUT;
  sendJson(res, 200, {
    object: 'list',
    data,
    model: typeof body.model === 'string' ? body.model : 'text-embedding-3-small',
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  });
}

function images(req: RecordedRequest, res: ServerResponse): void {
  const body = isObject(req.body) ? req.body : {};
  const n = typeof body.n === 'number' ? body.n : 1;
  const b64 = body.response_format === 'b64_json';
  const data = Array.from({ length: n }, (_, i) => (b64 ? { b64_json: FAKE_PNG_B64 } : { url: `https://fake.example/img-${i}.png` }));
  sendJson(res, 200, { created: unix(), data });
}

export function startFakeOpenAI(opts: { delayMs?: number } = {}): Promise<FakeOpenAI> {
  return startFakeServer({
    pathPrefix: '/v1',
    delayMs: opts.delayMs,
    handle: (req, res) => {
      if (req.method !== 'POST') return notFound(req, res);
      const path = req.path.split('?')[0];
      if (path === '/v1/chat/completions') return chat(req, res);
      if (path === '/v1/embeddings') return embeddings(req, res);
      if (path === '/v1/images/generations') return images(req, res);
      return notFound(req, res);
    },
  });
}
