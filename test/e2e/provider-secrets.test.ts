// A provider's own credentials (its apiKey, its configured headers) never reach a caller or the log,
// even when the upstream quotes them back: some servers echo the request's headers in a 400/422
// (pydantic's `input`), a proxy's 500 page, a 2xx error object or a mid-stream error event.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import type { Behaviour } from '../helpers/fake-server.js';

const lines: string[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    lines.push(chunk.toString());
    done();
  },
});

// The test gateway's provider keys (test/helpers/gateway.ts): short ones, as a local server's are.
const OPENAI_KEY = 'sk-upstream-secret';
const FAL_KEY = 'fal-upstream-secret';

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway({ gateway: { logger: pino({ level: 'debug' }, sink) } });
});
afterAll(async () => t?.close());

const chat = (secret: string, stream = false) =>
  fetch(`${t.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream }),
  });

describe("the providers' keys stay out of answers and logs", () => {
  it('an upstream error that quotes the Authorization header reaches the caller masked', async () => {
    const { secret } = await t.newAccount({ plan: 'open' });
    const echoes: Behaviour[] = [
      { kind: 'json', status: 400, body: { error: { message: `bad header authorization: Bearer ${OPENAI_KEY}`, type: 'invalid_request_error', code: null, param: null } } },
      { kind: 'text', status: 500, body: `<html>upstream failed; request headers: authorization=Bearer ${OPENAI_KEY}</html>` },
      { kind: 'json', status: 422, body: { detail: [{ loc: ['header', 'authorization'], input: `Bearer ${OPENAI_KEY}`, type: 'string_pattern_mismatch' }] } },
      { kind: 'json', status: 302, body: {}, headers: { location: `https://elsewhere.example/${OPENAI_KEY}/v1` } },
      // vLLM's error object under HTTP 200 (providers/openai throwIfError).
      { kind: 'json', status: 200, body: { object: 'error', message: `no such key ${OPENAI_KEY}`, type: 'BadRequestError', code: 400 } },
      // The same without a message: the body is quoted up to 300 characters, the key across the cut
      // (it starts at 288 of `{"object":"error","code":400,"info":"xx…`); cut first, its start was kept.
      { kind: 'json', status: 200, body: { object: 'error', code: 400, info: `${'x'.repeat(251)}${OPENAI_KEY}` } },
    ];
    for (const b of echoes) {
      t.openai.enqueue(b);
      const res = await chat(secret);
      const text = await res.text();
      expect(res.status, text).toBeGreaterThanOrEqual(400);
      expect(text).not.toContain(OPENAI_KEY.slice(0, 10));
      expect(text).toContain('[redacted]');
    }
    // Mid-stream: the 200 is sent, the failure goes out as an error event (and into the log).
    t.openai.enqueue({ kind: 'sse', events: [JSON.stringify({ error: { message: `stream refused for ${OPENAI_KEY}`, type: 'server_error' } })] });
    const streamed = await (await chat(secret, true)).text();
    expect(streamed).toContain('[redacted]');
    expect(streamed).not.toContain(OPENAI_KEY);
  });

  it('the key quoted in the type, code or param of a 200-wrapped or mid-stream error is masked too', async () => {
    const { secret } = await t.newAccount({ plan: 'open' });
    const quoted = { message: 'refused', type: `bad_key_${OPENAI_KEY}`, code: `key:${OPENAI_KEY}`, param: `header.${OPENAI_KEY}` };
    t.openai.enqueue({ kind: 'json', status: 200, body: { error: quoted } });
    const res = await chat(secret);
    const text = await res.text();
    expect(res.status, text).toBe(502);
    expect(text).not.toContain(OPENAI_KEY);
    expect(JSON.parse(text).error).toMatchObject({ type: 'bad_key_[redacted]', code: 'key:[redacted]', param: 'header.[redacted]' });
    t.openai.enqueue({ kind: 'sse', events: [JSON.stringify({ error: quoted })] });
    const streamed = await (await chat(secret, true)).text();
    expect(streamed).toContain('key:[redacted]');
    expect(streamed).not.toContain(OPENAI_KEY);
  });

  it("fal's pydantic 422 echoing its `Key …` header reaches the caller masked", async () => {
    const { secret } = await t.newAccount({ plan: 'open' });
    t.fal.enqueue({ kind: 'json', status: 422, body: { detail: [{ loc: ['header', 'authorization'], msg: `invalid value Key ${FAL_KEY}`, type: 'value_error' }] } });
    const res = await fetch(`${t.url}/v1/images/generations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'flux/schnell', prompt: 'a cat' }),
    });
    const text = await res.text();
    expect(res.status).toBe(422);
    expect(text).not.toContain(FAL_KEY);
  });

  it("a provider's 401 that quotes a short key is masked in the operator's log line", async () => {
    const { secret } = await t.newAccount({ plan: 'open' });
    t.openai.enqueue({ kind: 'json', status: 401, body: { error: { message: `Incorrect API key provided: ${OPENAI_KEY}`, type: 'invalid_request_error', code: 'invalid_api_key', param: null } } });
    expect((await chat(secret)).status).toBe(502);
    await new Promise((r) => setTimeout(r, 50));
    const refused = lines.filter((l) => l.includes("the provider refused the gateway's credentials"));
    expect(refused).toHaveLength(1);
    expect(refused[0]).toContain('Incorrect API key provided: [redacted]');
    expect(lines.join('')).not.toContain(OPENAI_KEY);
    expect(lines.join('')).not.toContain(FAL_KEY);
  });
});

