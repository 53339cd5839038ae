// Streams that do not end well: the upstream failing mid-stream or before it starts, or sending no
// usage. Exactly one ledger record each, charging what was produced. (A client leaving mid-stream:
// test/e2e/metering.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countChatPrompt, countText } from '../../src/core/tokens.js';
import { chatStreamFixture } from '../helpers/fake-openai.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway();
});
afterAll(async () => t?.close());

const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Tell me a long story' }], stream: true };

async function ledgerRows(accountId: string, atLeast: number) {
  for (let i = 0; i < 100; i++) {
    const rows = (await t.admin('GET', `/usage?account=${accountId}`)).body.data;
    if (rows.length >= atLeast) return rows;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('ledger row never appeared');
}

describe('streams that end early', () => {
  it('upstream error mid-stream: the client gets an error event, the output so far is charged', async () => {
    const { accountId, secret } = await t.newAccount();
    const events = [
      ...chatStreamFixture.slice(0, 3),
      JSON.stringify({ error: { message: 'The server had an error while processing your request.', type: 'server_error', code: null, param: null } }),
    ];
    t.openai.enqueue({ kind: 'sse', events });
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    const payloads = text.split('\n\n').filter(Boolean).map((l) => l.replace(/^data: /, ''));
    expect(payloads).toHaveLength(4);
    expect(JSON.parse(payloads[3]!).error.message).toMatch(/server had an error/);
    expect(text).not.toContain('[DONE]');
    const [row] = await ledgerRows(accountId, 1);
    expect(row).toMatchObject({ status: 'error', outputTokens: countText('Hello from') });
    expect(row.credits).toBeGreaterThan(0);
  });

  it('upstream error before the stream starts: a JSON error with the upstream status', async () => {
    const { accountId, secret } = await t.newAccount();
    t.openai.enqueue({ kind: 'json', status: 400, body: { error: { message: "Invalid value for 'logit_bias'", type: 'invalid_request_error', param: 'logit_bias', code: null } } });
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, logit_bias: { x: 1 } }),
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('x-request-id')).toBeTruthy();
    expect((await res.json()).error).toMatchObject({ param: 'logit_bias', type: 'invalid_request_error' });
    const [row] = await ledgerRows(accountId, 1);
    expect(row).toMatchObject({ status: 'error', credits: 0, httpStatus: 400 });
  });

  it('an upstream that sends no usage is metered with the tokenizer', async () => {
    const { accountId, secret } = await t.newAccount();
    t.openai.enqueue({ kind: 'sse', events: chatStreamFixture.filter((d) => !d.includes('"usage"')) });
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(await res.text()).toContain('[DONE]');
    const [row] = await ledgerRows(accountId, 1);
    expect(row).toMatchObject({ status: 'ok', promptTokens: countChatPrompt(body), outputTokens: countText('Hello from the fake upstream.') });
  });
});

describe('a stream’s head', () => {
  it('carries the request id, the limit headers, the clamp note and the event-stream headers', async () => {
    const { secret } = await t.newAccount();
    t.openai.enqueue({ kind: 'sse', events: chatStreamFixture });
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, max_tokens: 9000 }),
    });
    const text = await res.text();
    expect(res.status).toBe(200);
    const id = res.headers.get('x-request-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(res.headers.get('x-accel-buffering')).toBe('no');
    expect(res.headers.get('x-tollgate-clamped')).toBe('max_tokens=512');
    expect(res.headers.get('x-ratelimit-limit-tokens')).toBe('50000');
    expect(Number(res.headers.get('x-ratelimit-remaining-tokens'))).toBeLessThan(50_000);
    expect(res.headers.get('x-ratelimit-reset-tokens')).toMatch(/^(\d+h)?(\d+m)?\d+s$/);
    expect(text).toContain('[DONE]');
  });
});
