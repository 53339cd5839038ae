// A fake Anthropic Messages API (`POST {url}/messages`) speaking the real wire format: it checks
// `x-api-key` and `anthropic-version` as Anthropic does, refuses a body without `max_tokens`, and
// answers a Message as JSON or, for `stream: true`, replays test/fixtures/anthropic/text.sse byte
// for byte. https://docs.anthropic.com/en/api/messages
import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { sendJson, startFakeServer, type Behaviour, type FakeUpstream, type RecordedRequest } from './fake-server.js';

export type { Behaviour, RecordedRequest };
export type FakeAnthropic = FakeUpstream;

export const ANTHROPIC_KEY = 'sk-ant-upstream-secret';
export const FAKE_CLAUDE_TEXT = 'Hello from the fake Claude.';
/** The JSON answer's usage: 2,000 of its prompt tokens read from the cache, 100 written to it. */
export const FAKE_CLAUDE_USAGE = { input_tokens: 25, cache_creation_input_tokens: 100, cache_read_input_tokens: 2000, output_tokens: 9 } as const;

export function anthropicFixture(name: string): string {
  return readFileSync(new URL(`../fixtures/anthropic/${name}`, import.meta.url), 'utf8');
}

/** Anthropic's error body (https://docs.anthropic.com/en/api/errors). */
export const anthropicError = (type: string, message: string) => ({ type: 'error', error: { type, message }, request_id: 'req_fake' });

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
let seq = 0;

function answer(req: RecordedRequest, res: ServerResponse): void {
  if (req.method !== 'POST' || req.path !== '/v1/messages') return sendJson(res, 404, anthropicError('not_found_error', `Not Found: ${req.method} ${req.path}`));
  if (req.headers['x-api-key'] !== ANTHROPIC_KEY) return sendJson(res, 401, anthropicError('authentication_error', 'invalid x-api-key'));
  if (typeof req.headers['anthropic-version'] !== 'string') return sendJson(res, 400, anthropicError('invalid_request_error', 'anthropic-version: header is required'));
  const body = isObject(req.body) ? req.body : {};
  if (typeof body.max_tokens !== 'number') return sendJson(res, 400, anthropicError('invalid_request_error', 'max_tokens: Field required'));
  // As Anthropic refuses them (https://github.com/BerriAI/litellm/issues/3286): a gateway that
  // passes such a stop or schema on leaves its caller with a 400 about fields it never sent.
  const stops = body.stop_sequences;
  if (stops !== undefined && !(Array.isArray(stops) && stops.every((s) => typeof s === 'string' && s.trim() !== ''))) {
    return sendJson(res, 400, anthropicError('invalid_request_error', 'stop_sequences: each stop sequence must contain non-whitespace'));
  }
  const tools = Array.isArray(body.tools) ? body.tools : [];
  const schemaless = tools.findIndex((t) => !isObject(t) || !isObject(t.input_schema) || t.input_schema.type !== 'object');
  if (schemaless >= 0) return sendJson(res, 400, anthropicError('invalid_request_error', `tools.${schemaless}.custom.input_schema.type: Input should be 'object'`));
  if (body.stream === true) {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    res.end(anthropicFixture('text.sse'));
    return;
  }
  sendJson(res, 200, {
    id: `msg_fake${++seq}`,
    type: 'message',
    role: 'assistant',
    model: typeof body.model === 'string' ? body.model : 'claude-sonnet-4-5',
    content: [{ type: 'text', text: FAKE_CLAUDE_TEXT }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: { ...FAKE_CLAUDE_USAGE, service_tier: 'standard' },
  });
}

export function startFakeAnthropic(): Promise<FakeAnthropic> {
  return startFakeServer({ pathPrefix: '/v1', handle: answer });
}
