// Streams that do not end well: the upstream failing mid-stream or before it starts, or sending no
// usage. Exactly one ledger record each, charging what was produced. (A client leaving mid-stream:
// test/e2e/metering.test.ts.)
import { once } from 'node:events';
import { connect } from 'node:net';
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
    // The provider produced (and bills) the output before it failed: the record names it.
    expect(row).toMatchObject({ status: 'error', outputTokens: countText('Hello from'), provider: 'openai' });
    expect(row.credits).toBeGreaterThan(0);
  });

  it('an upstream that ignores stream and answers JSON: the client still gets a stream, and it is charged', async () => {
    const { accountId, secret } = await t.newAccount();
    t.openai.enqueue({
      kind: 'json',
      body: {
        id: 'chatcmpl-j', object: 'chat.completion', created: 1, model: 'gpt-4o-mini',
        choices: [{ index: 0, message: { role: 'assistant', content: 'All at once.' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13 },
      },
    });
    const res = await t.client(secret).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Tell me a long story' }], stream: true, stream_options: { include_usage: true } });
    const chunks = [];
    for await (const c of res) chunks.push(c);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? null)).toEqual(['All at once.', null]);
    const [row] = await ledgerRows(accountId, 1);
    expect(row).toMatchObject({ status: 'ok', promptTokens: 9, outputTokens: 4 });
    expect((chunks.at(-1) as unknown as { meta: { usage: { credits_used: number } } }).meta.usage.credits_used).toBe(row.credits);
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

  it('a client that asked for usage gets a final usage chunk even when the upstream sends none: the counted usage, as charged', async () => {
    const { accountId, secret } = await t.newAccount();
    t.openai.enqueue({ kind: 'sse', events: chatStreamFixture.filter((d) => !d.includes('"usage"')) });
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, stream_options: { include_usage: true } }),
    });
    const payloads = (await res.text()).split('\n\n').filter(Boolean).map((l) => l.replace(/^data: /, ''));
    expect(payloads.at(-1)).toBe('[DONE]');
    const final = JSON.parse(payloads.at(-2)!);
    const outputTokens = countText('Hello from the fake upstream.');
    expect(final).toMatchObject({ object: 'chat.completion.chunk', model: 'gpt-4o-mini', choices: [], usage: { prompt_tokens: countChatPrompt(body), completion_tokens: outputTokens } });
    const [row] = await ledgerRows(accountId, 1);
    expect(row).toMatchObject({ status: 'ok', promptTokens: countChatPrompt(body), outputTokens });
    expect(final.meta.usage.credits_used).toBe(row.credits);
  });

  it('a refusal or a legacy function call streamed without usage is metered as output, not free', async () => {
    const head = { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini' };
    const delta = (d: object, finish: string | null = null) => JSON.stringify({ ...head, choices: [{ index: 0, delta: d, logprobs: null, finish_reason: finish }] });
    const refusal = "I'm sorry, but I can't help with that request. ".repeat(10);
    const args = JSON.stringify({ city: 'Paris', notes: 'a long note '.repeat(40) });
    const cases = [
      { events: [delta({ role: 'assistant', content: null, refusal: '' }), delta({ refusal }), delta({}, 'stop'), '[DONE]'], output: refusal },
      { events: [delta({ role: 'assistant', content: null, function_call: { name: 'get_weather', arguments: '' } }), delta({ function_call: { arguments: args } }), delta({}, 'function_call'), '[DONE]'], output: `get_weather${args}` },
    ];
    for (const { events, output } of cases) {
      const { accountId, secret } = await t.newAccount();
      t.openai.enqueue({ kind: 'sse', events });
      const stream = t.client(secret).chat.completions.stream({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Tell me a long story' }], stream_options: { include_usage: true } });
      const final = await stream.finalChatCompletion();
      const [row] = await ledgerRows(accountId, 1);
      expect(row).toMatchObject({ status: 'ok', outputTokens: countText(output) });
      expect(final.usage?.completion_tokens).toBe(countText(output));
      expect((final as unknown as { meta: { usage: { credits_used: number } } }).meta.usage.credits_used).toBe(row.credits);
    }
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

describe('a stream that waits for its first event', () => {
  it('gets SSE keep-alive comments meanwhile (a proxy in front would cut a silent one), which the SDK skips', async () => {
    // A reasoning model's wait: the head at once, then nothing for a while. The idle limit (400 ms)
    // does not cut it (the first event is answerTimeoutMs's to wait for, unset here).
    const k = await startTestGateway({ config: { server: { sseKeepAliveMs: 100 }, upstream: { idleTimeoutMs: 400 } } });
    try {
      const { secret } = await k.newAccount();
      k.openai.enqueue({ kind: 'sse', events: [...chatStreamFixture], holdBeforeIndex: 0, release: new Promise((r) => setTimeout(r, 700)) });
      const res = await fetch(`${k.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const text = await res.text();
      const firstData = text.indexOf('data: ');
      // At least one comment before the first event (100–200 ms apart over 700 ms), none once events flowed fast.
      expect(text.slice(0, firstData).match(/^: keep-alive$/gm)?.length ?? 0).toBeGreaterThanOrEqual(2);
      expect(text.slice(firstData)).not.toContain(': keep-alive');
      expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);

      // The official client reads through them.
      k.openai.enqueue({ kind: 'sse', events: [...chatStreamFixture], holdBeforeIndex: 0, release: new Promise((r) => setTimeout(r, 400)) });
      let content = '';
      for await (const chunk of await k.client(secret).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Think first' }], stream: true })) content += chunk.choices[0]?.delta?.content ?? '';
      expect(content).toBe(chatStreamFixture.filter((e) => e !== '[DONE]').map((e) => (JSON.parse(e) as { choices?: { delta?: { content?: string } }[] }).choices?.[0]?.delta?.content ?? '').join(''));
    } finally {
      await k.close();
    }
  });
});

describe('streams that fail before any output', () => {
  // A short idle limit, so the stall cases below end quickly.
  let s: TestGateway;
  beforeAll(async () => {
    s = await startTestGateway({ config: { upstream: { connectTimeoutMs: 2000, firstByteTimeoutMs: 2000, totalTimeoutMs: 10_000, idleTimeoutMs: 400 } } });
  });
  afterAll(async () => s?.close());

  async function streamOnce(secret: string) {
    const res = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    return text.split('\n\n').filter(Boolean).map((l) => l.replace(/^data: /, ''));
  }
  async function apiTokenUsed(secret: string) {
    const u = await (await fetch(`${s.url}/v1/usage`, { headers: { authorization: `Bearer ${secret}` } })).json();
    return u.rules.find((r: { id: string }) => r.id === 'api_token').used as number;
  }
  async function rows(accountId: string) {
    for (let i = 0; i < 100; i++) {
      const data = (await s.admin('GET', `/usage?account=${accountId}`)).body.data;
      if (data.length > 0) return data;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('ledger row never appeared');
  }

  const roleOnly = chatStreamFixture[0]!; // the role chunk: no content yet
  it.each([
    ['an error event first', [roleOnly, JSON.stringify({ error: { message: 'overloaded', type: 'server_error', code: null, param: null } })], 'overloaded'],
    ['an event that is not JSON first', [roleOnly, '{not json'], 'invalid_upstream_response'],
    ['a body that ends with nothing (no [DONE], no finish_reason)', [roleOnly], 'ended before [DONE]'],
  ] as const)('%s: the full reservation is released, nothing charged', async (_name, events, expected) => {
    const { accountId, secret } = await s.newAccount();
    s.openai.enqueue({ kind: 'sse', events: [...events] });
    const payloads = await streamOnce(secret);
    expect(JSON.stringify(JSON.parse(payloads.at(-1)!).error)).toContain(expected);
    expect(await apiTokenUsed(secret)).toBe(0);
    expect(await rows(accountId)).toEqual([expect.objectContaining({ status: 'error', credits: 0, httpStatus: 502 })]);
  });

  it('an upstream that stalls before any output: released, and the error event carries the catalogue message', async () => {
    const { accountId, secret } = await s.newAccount();
    s.openai.enqueue({ kind: 'sse', events: [roleOnly, chatStreamFixture[1]!], holdBeforeIndex: 1, release: new Promise<void>(() => {}) });
    const payloads = await streamOnce(secret);
    const last = JSON.parse(payloads.at(-1)!);
    // SPEC §5's body, made in the one place: the seed's fields and an OpenAI `error` with the rendered message.
    expect(last).toMatchObject({ statusCode: '504', path: '/v1/chat/completions', error: { code: 'upstream_timeout', type: 'api_error' } });
    expect(last.error.message).toMatch(/did not answer within 400 ms/);
    expect(await apiTokenUsed(secret)).toBe(0);
    expect(await rows(accountId)).toEqual([expect.objectContaining({ status: 'error', credits: 0, httpStatus: 504 })]);
  });

  it('an upstream that writes past the output limit it was sent is cut off and charged the limit', async () => {
    const { accountId, secret } = await s.newAccount();
    // The free tier sends max_tokens 512; this upstream writes ~60,000 tokens' worth and claims them.
    const chunk = JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, delta: { content: 'word '.repeat(1000) }, finish_reason: null }] });
    const usage = JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [], usage: { prompt_tokens: 12, completion_tokens: 60_000, total_tokens: 60_012 } });
    s.openai.enqueue({ kind: 'sse', events: [roleOnly, ...Array.from({ length: 60 }, () => chunk), usage, '[DONE]'] });
    const payloads = await streamOnce(secret);
    expect(JSON.parse(payloads.at(-1)!).error).toMatchObject({ code: 'invalid_upstream_response', message: expect.stringMatching(/past the output limit \(512 tokens\)/) });
    const [row] = await rows(accountId);
    expect(row).toMatchObject({ status: 'error', outputTokens: 512 });
    expect(row.credits).toBe(await apiTokenUsed(secret));
    // Non-streaming: the upstream's claim of 60,000 output tokens is charged as the 512 it was allowed.
    s.openai.enqueue({ kind: 'json', body: { id: 'c', object: 'chat.completion', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, message: { role: 'assistant', content: 'long' }, finish_reason: 'stop' }], usage: { prompt_tokens: 12, completion_tokens: 60_000, total_tokens: 60_012 } } });
    const res = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' }, body: JSON.stringify({ ...body, stream: false }) });
    expect(res.status).toBe(200);
    const all = (await s.admin('GET', `/usage?account=${accountId}`)).body.data as Array<{ requestId: string; credits: number }>;
    const second = all.find((r) => r.requestId === res.headers.get('x-request-id'));
    expect(second).toMatchObject({ outputTokens: 512, credits: Number(res.headers.get('x-tollgate-credits-used')) });
    expect(await apiTokenUsed(secret)).toBe(row.credits + second!.credits);
  });

  it('an upstream that holds its body open after [DONE]: the client gets [DONE] at once, the answer is not failed', async () => {
    const { accountId, secret } = await s.newAccount();
    s.openai.enqueue({ kind: 'sse', events: [...chatStreamFixture, ': keep-alive'], holdBeforeIndex: chatStreamFixture.length, release: new Promise<void>(() => {}) });
    const started = performance.now();
    const stream = await s.client(secret).chat.completions.create({ model: 'gpt-4o-mini', messages: body.messages as [{ role: 'user'; content: string }], stream: true, stream_options: { include_usage: true } });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe('Hello from the fake upstream.');
    // Not after the 400 ms idle limit, with an error event in place of [DONE].
    expect(performance.now() - started).toBeLessThan(350);
    expect(await rows(accountId)).toEqual([expect.objectContaining({ status: 'ok', httpStatus: 200, credits: 12 })]);
  });

  it('a stream within its output limit is not cut off: a long tool call, or a run of whitespace', async () => {
    const head = { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini' };
    const delta = (d: object, finish: string | null = null) => JSON.stringify({ ...head, choices: [{ index: 0, delta: d, logprobs: null, finish_reason: finish }] });
    const usage = (n: number) => JSON.stringify({ ...head, choices: [], usage: { prompt_tokens: 12, completion_tokens: n, total_tokens: 12 + n } });
    // OpenAI streams a tool call's arguments a token a chunk, each in its own tool_calls wrapper.
    const toolCall = [
      delta({ role: 'assistant', content: null, tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'write', arguments: '' } }] }),
      ...Array.from({ length: 480 }, () => delta({ tool_calls: [{ index: 0, function: { arguments: ' word' } }] })),
      delta({}, 'tool_calls'),
      usage(481),
      '[DONE]',
    ];
    // JSON mode's documented failure: whitespace up to the limit; o200k_base holds 128 spaces in one token.
    const whitespace = [roleOnly, ...Array.from({ length: 511 }, () => delta({ content: ' '.repeat(125) })), delta({}, 'length'), usage(511), '[DONE]'];
    for (const events of [toolCall, whitespace]) {
      const { accountId, secret } = await s.newAccount();
      s.openai.enqueue({ kind: 'sse', events });
      const payloads = await streamOnce(secret);
      expect(payloads.at(-1)).toBe('[DONE]');
      expect((await rows(accountId))[0]).toMatchObject({ status: 'ok' });
    }
  });

  it('output before the failure is charged (prompt + output), as before', async () => {
    const { accountId, secret } = await s.newAccount();
    s.openai.enqueue({ kind: 'sse', events: [...chatStreamFixture.slice(0, 2), '{not json'] });
    await streamOnce(secret);
    const [row] = await rows(accountId);
    expect(row).toMatchObject({ status: 'error', outputTokens: countText('Hello') });
    expect(row.credits).toBeGreaterThan(0);
    expect(await apiTokenUsed(secret)).toBe(row.credits);
  });

  it('a client that stops reading is cut off after the idle limit and settled as a client that left', async () => {
    const { accountId, secret } = await s.newAccount();
    // ~16 MB of events: more than the loopback socket buffers hold, so the relay waits for the reader.
    // The bulk is logprobs, not text: text past the output limit would be cut off as the upstream's fault.
    const big = JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, delta: { content: 'ab ' }, logprobs: { pad: 'x'.repeat(8100) }, finish_reason: null }] });
    s.openai.enqueue({ kind: 'sse', events: [roleOnly, ...Array.from({ length: 2000 }, () => big), '[DONE]'] });
    const { port } = new URL(s.url);
    const payload = JSON.stringify(body);
    const sock = connect(Number(port), '127.0.0.1');
    await once(sock, 'connect');
    sock.write(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${secret}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`,
    );
    sock.pause(); // never reads (and so never sees the server close the connection either)
    try {
      // Cut by the server (the idle limit is 400 ms) and settled, long before the upstream's 10 s total.
      const [row] = await rows(accountId);
      expect(row).toMatchObject({ status: 'aborted', httpStatus: 499 });
      expect(row.credits).toBeGreaterThan(0);
      expect(await apiTokenUsed(secret)).toBe(row.credits);
    } finally {
      sock.destroy();
    }
  });
});
