// Metering semantics (SPEC §7) through the real server: windows keyed by UTC date under an
// injected clock, full release on upstream failure, settlement of streams cut short, the paid
// plan's balance, and plan changes taking effect on the next request.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countChatPrompt, countText } from '../../src/core/tokens.js';
import { ManualClock } from '../../src/lib/clock.js';
import { chatStreamFixture } from '../helpers/fake-openai.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const hi = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };
const clock = new ManualClock(Date.parse('2026-11-25T23:59:00Z'));

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway({ gateway: { clock }, config: { metering: { drainUsageMs: 1500 } } });
});
afterAll(async () => t?.close());

async function usage(secret: string) {
  const res = await fetch(`${t.url}/v1/usage`, { headers: { authorization: `Bearer ${secret}` } });
  return res.json() as Promise<any>;
}
const apiToken = (u: any) => u.rules.find((r: { id: string }) => r.id === 'api_token');
async function ledger(accountId: string) {
  return (await t.admin('GET', `/usage?account=${accountId}`)).body.data as Array<{ credits: number; status: string; createdAt: string; outputTokens: number; provider: string | null }>;
}
const sum = (rows: Array<{ credits: number }>) => rows.reduce((a, r) => a + r.credits, 0);
async function chat(secret: string, body: unknown = hi) {
  return fetch(`${t.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}
async function until(check: () => Promise<boolean>, ms = 3000) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('windows', () => {
  it('moving the clock past UTC midnight opens a fresh day; yesterday stays in the ledger', async () => {
    clock.set(Date.parse('2026-11-25T23:59:00Z'));
    const { accountId, secret } = await t.newAccount();
    expect((await chat(secret)).status).toBe(200);
    expect((await chat(secret)).status).toBe(200);
    const before = await usage(secret);
    expect(before.day).toBe('2026-11-25');
    expect(apiToken(before)).toMatchObject({ used: 24, reset: '2026-11-26T00:00:00.000Z' });

    clock.advance(2 * 60_000); // 2026-11-26T00:01
    const after = await usage(secret);
    expect(after.day).toBe('2026-11-26');
    expect(apiToken(after)).toMatchObject({ used: 0, remaining: 50_000, reset: '2026-11-27T00:00:00.000Z' });
    expect((await chat(secret)).status).toBe(200);
    expect(apiToken(await usage(secret)).used).toBe(12);

    const yesterday = (await t.admin('GET', `/usage?account=${accountId}&group=day&from=2026-11-25&to=2026-11-26`)).body.data;
    expect(yesterday).toEqual([expect.objectContaining({ day: '2026-11-25', requests: 2, credits: 24 })]);
    const today = (await t.admin('GET', `/usage?account=${accountId}&group=day&from=2026-11-26`)).body.data;
    expect(today).toEqual([expect.objectContaining({ day: '2026-11-26', requests: 1, credits: 12 })]);
  });

  it('a stream admitted before midnight and settled after it is counted and recorded on the same day', async () => {
    clock.set(Date.parse('2026-11-27T23:59:59Z'));
    const { accountId, secret } = await t.newAccount();
    let release!: () => void;
    t.openai.enqueue({ kind: 'sse', events: chatStreamFixture, holdBeforeIndex: 2, release: new Promise<void>((r) => (release = r)) });
    const res = await chat(secret, { ...hi, stream: true });
    expect(res.status).toBe(200);
    clock.advance(5_000); // 2026-11-28T00:00:04, while the upstream is still streaming
    release();
    await res.text();
    await until(async () => (await ledger(accountId)).length === 1);
    const [row] = await ledger(accountId);
    // The day's counter took the charge at admission; the ledger's day is the same one.
    expect(row!.createdAt).toBe('2026-11-27T23:59:59.000Z');
    const days = (await t.admin('GET', `/usage?account=${accountId}&group=day&from=2026-11-27&to=2026-11-29`)).body.data;
    expect(days).toEqual([expect.objectContaining({ day: '2026-11-27', requests: 1, credits: row!.credits })]);
    expect(apiToken(await usage(secret)).used).toBe(0); // the new day is untouched
  });
});

describe('an upstream asking to wait', () => {
  it("passes a 429's Retry-After on, so the caller's SDK waits as the provider asked", async () => {
    const { secret } = await t.newAccount();
    t.openai.enqueue({ kind: 'json', status: 429, headers: { 'retry-after': '2' }, body: { error: { message: 'Rate limit reached', type: 'requests', param: null, code: 'rate_limit_exceeded' } } });
    const res = await chat(secret);
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('2');
    expect(apiToken(await usage(secret)).used).toBe(0);
  });

  it('a 429 without one (or an error object under HTTP 200 naming 429) gets Retry-After: 1 (SPEC §5: every 429 carries it)', async () => {
    const { secret } = await t.newAccount();
    t.openai.enqueue({ kind: 'json', status: 429, body: { error: { message: 'Rate limit reached', type: 'requests', param: null, code: 'rate_limit_exceeded' } } });
    const res = await chat(secret);
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('1');
    t.openai.enqueue({ kind: 'json', status: 200, body: { object: 'error', message: 'busy', type: 'RateLimitError', code: 429 } });
    const wrapped = await chat(secret);
    expect(wrapped.status).toBe(429);
    expect(wrapped.headers.get('retry-after')).toBe('1');
    expect(apiToken(await usage(secret)).used).toBe(0);
  });
});

describe('failures release the reservation', () => {
  it.each([
    ['an upstream 500', { kind: 'json', status: 500, body: { error: { message: 'boom', type: 'server_error', code: null, param: null } } }, 500],
    ['an upstream timeout', { kind: 'hang' }, 504],
    ['a dropped connection', { kind: 'destroy' }, 502],
    // Neither an answer nor an error: it went out as a 200 without choices, its prompt charged.
    ['an upstream 200 of {} (no choices)', { kind: 'json', body: {} }, 502],
    ['an upstream 200 whose choices is not a list', { kind: 'json', body: { choices: 'none', usage: { prompt_tokens: 8, completion_tokens: 1 } } }, 502],
  ] as const)('%s charges nothing and leaves nothing reserved', async (_name, behaviour, status) => {
    const { accountId, secret } = await t.newAccount();
    t.openai.enqueue(behaviour as never);
    const res = await chat(secret);
    expect(res.status).toBe(status);
    // SPEC §6: the error answer carries the limit headers too, with the reservation given back.
    expect(res.headers.get('x-ratelimit-limit-tokens')).toBe('50000');
    expect(res.headers.get('x-ratelimit-remaining-tokens')).toBe('50000');
    expect(apiToken(await usage(secret)).used).toBe(0);
    const rows = await ledger(accountId);
    expect(rows).toEqual([expect.objectContaining({ status: 'error', credits: 0, httpStatus: status })]);
  });

  it.each([
    ['an upstream 500', { kind: 'json', status: 500, body: { error: { message: 'boom', type: 'server_error', code: null, param: null } } }, 500],
    ['a dropped connection', { kind: 'destroy' }, 502],
    // A server that ignores `stream` answers JSON: one without choices went out as an empty stream, charged.
    ['a JSON answer of {}', { kind: 'json', body: {} }, 502],
  ] as const)('a stream the upstream refuses before it starts (%s) charges nothing and leaves nothing reserved', async (_name, behaviour, status) => {
    const { accountId, secret } = await t.newAccount();
    t.openai.enqueue(behaviour as never);
    const res = await chat(secret, { ...hi, stream: true });
    expect(res.status).toBe(status);
    expect(res.headers.get('x-ratelimit-remaining-tokens')).toBe('50000');
    expect(apiToken(await usage(secret)).used).toBe(0);
    expect(await ledger(accountId)).toEqual([expect.objectContaining({ status: 'error', credits: 0, httpStatus: status })]);
  });
});

describe('the provider refusing the gateway’s own key', () => {
  it.each([401, 403])('an upstream %i is a 502 upstream_auth_failed that quotes nothing of the provider’s answer; nothing charged', async (status) => {
    const { accountId, secret } = await t.newAccount();
    const leaky = 'Incorrect API key provided: sk-upstr*****cret';
    t.openai.enqueue({ kind: 'json', status, body: { error: { message: leaky, type: 'invalid_request_error', code: 'invalid_api_key', param: null } } });
    const res = await chat(secret);
    expect(res.status).toBe(502);
    const text = await res.text();
    expect(text).not.toContain('sk-upstr');
    expect(JSON.parse(text).error).toMatchObject({ code: 'upstream_auth_failed', type: 'api_error' });
    expect(JSON.parse(text).error.message).toMatch(/not about your API key/);
    // No retry can help: the OpenAI SDKs are told not to.
    expect(res.headers.get('x-should-retry')).toBe('false');
    expect(apiToken(await usage(secret)).used).toBe(0);
    expect(await ledger(accountId)).toEqual([expect.objectContaining({ status: 'error', credits: 0, httpStatus: 502 })]);
  });
});

describe('what a whole answer is charged', () => {
  const answer = (content: string, usage?: object) => ({
    id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    ...(usage && { usage }),
  });

  it('an answer without usage is charged its prompt and its output counted with the tokenizer (SPEC §7)', async () => {
    const { accountId, secret } = await t.newAccount();
    const content = 'A reply of several words that the upstream did not count for us.';
    t.openai.enqueue({ kind: 'json', body: answer(content) });
    const res = await chat(secret);
    expect(res.status).toBe(200);
    const expected = Math.ceil((countChatPrompt(hi) * 300_000 + countText(content) * 1_200_000) / 1e6);
    expect(res.headers.get('x-tollgate-credits-used')).toBe(String(expected));
    expect((await ledger(accountId))[0]).toMatchObject({ credits: expected, outputTokens: countText(content) });
  });

  it('an upstream reporting output past the max_tokens it was sent is charged the limit, not its report', async () => {
    const { accountId, secret } = await t.newAccount();
    t.openai.enqueue({ kind: 'json', body: answer('a long answer', { prompt_tokens: 8, completion_tokens: 5000, total_tokens: 5008 }) });
    const res = await chat(secret, { ...hi, max_tokens: 10 });
    expect(res.status).toBe(200);
    // 8 prompt tokens at 300,000 credits per 1M, 10 output tokens (not 5,000) at 1,200,000.
    expect(res.headers.get('x-tollgate-credits-used')).toBe('15');
    expect((await ledger(accountId))[0]).toMatchObject({ credits: 15, outputTokens: 10 });
  });

  it('an absurd usage report (prompt_tokens 1e20) is charged the reservation, not 2.7e15 credits', async () => {
    const { accountId, secret } = await t.newAccount();
    t.openai.enqueue({ kind: 'json', body: answer('hi', { prompt_tokens: 1e20, completion_tokens: 1, total_tokens: 1e20 }) });
    const res = await chat(secret);
    expect(res.status).toBe(200);
    // The free plan clamps the output to 512 tokens: the reservation is the prompt and those.
    const reserved = Math.ceil((countChatPrompt(hi) * 300_000 + 512 * 1_200_000) / 1e6);
    expect(res.headers.get('x-tollgate-credits-used')).toBe(String(reserved));
    expect((await ledger(accountId))[0]).toMatchObject({ credits: reserved });
    expect(apiToken(await usage(secret)).used).toBe(reserved);
  });

  it('an embeddings 200 without a data list is a 502 invalid_upstream_response, nothing charged', async () => {
    const { accountId, secret } = await t.newAccount();
    t.openai.enqueue({ kind: 'json', body: { object: 'list', model: 'text-embedding-3-small', usage: { prompt_tokens: 1, total_tokens: 1 } } });
    const res = await fetch(`${t.url}/v1/embeddings`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'text-embedding-3-small', input: 'hello' }),
    });
    expect(res.status).toBe(502);
    expect((await res.json()).error.code).toBe('invalid_upstream_response');
    expect(apiToken(await usage(secret)).used).toBe(0);
    expect(await ledger(accountId)).toEqual([expect.objectContaining({ status: 'error', credits: 0, httpStatus: 502 })]);
  });

  it('an absurd embeddings usage report is charged the reservation; a prepaid balance does not go below zero', async () => {
    const { accountId, secret } = await t.newAccount({ plan: 'paid' });
    expect((await t.admin('POST', `/accounts/${accountId}/credits`, { amount: 1000 })).status).toBe(200);
    t.openai.enqueue({ kind: 'json', body: { object: 'list', data: [{ object: 'embedding', index: 0, embedding: [0.5] }], model: 'text-embedding-3-small', usage: { prompt_tokens: 1e20, total_tokens: 1e20 } } });
    const res = await fetch(`${t.url}/v1/embeddings`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'text-embedding-3-small', input: 'hello' }),
    });
    expect(res.status).toBe(200);
    const charged = Number(res.headers.get('x-tollgate-credits-used'));
    expect(charged).toBe(Math.ceil((countText('hello') * 40_000) / 1e6));
    expect((await ledger(accountId))[0]).toMatchObject({ credits: charged });
    expect((await t.admin('GET', `/accounts/${accountId}`)).body.balance).toBe(1000 - charged);
  });

  it("a prediction's unused tokens, billed as output past max_tokens, are reserved and charged (Predicted Outputs)", async () => {
    const { accountId, secret } = await t.newAccount();
    const predicted = 'const total = items.reduce((sum, item) => sum + item.price, 0);\n'.repeat(20);
    const rejected = countText(predicted);
    // OpenAI counts the rejected prediction tokens in completion_tokens, past the 10 asked for.
    t.openai.enqueue({
      kind: 'json',
      body: answer('short', { prompt_tokens: 8, completion_tokens: 10 + rejected, total_tokens: 18 + rejected, completion_tokens_details: { rejected_prediction_tokens: rejected } }),
    });
    const res = await chat(secret, { ...hi, max_tokens: 10, prediction: { type: 'content', content: predicted } });
    expect(res.status).toBe(200);
    const expected = Math.ceil((8 * 300_000 + (10 + rejected) * 1_200_000) / 1e6);
    expect(res.headers.get('x-tollgate-credits-used')).toBe(String(expected));
    expect((await ledger(accountId))[0]).toMatchObject({ credits: expected, outputTokens: 10 + rejected });
  });
});

describe('streams cut short', () => {
  const body = { ...hi, stream: true };

  /**
   * Starts a stream whose upstream sends `events` up to `holdBeforeIndex` (by default role + "Hello"
   * + " from" + " the") and then stalls until released; the client reads until its text holds
   * `until` and goes away.
   */
  async function abortMidStream(secret: string, events = chatStreamFixture, holdBeforeIndex = 4, until = ' the'): Promise<{ release: () => void }> {
    let release!: () => void;
    t.openai.enqueue({ kind: 'sse', events, holdBeforeIndex, release: new Promise<void>((r) => (release = r)) });
    const abort = new AbortController();
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: abort.signal,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes(until)) text += new TextDecoder().decode((await reader.read()).value);
    abort.abort();
    return { release };
  }

  it('client abort: charges prompt + output sent when the upstream gives no usage, once, nothing left reserved', async () => {
    const { accountId, secret } = await t.newAccount();
    const { release } = await abortMidStream(secret);
    // The upstream stalls past the drain window.
    await until(async () => (await ledger(accountId)).length === 1);
    release();
    const [row] = await ledger(accountId);
    const expected = Math.ceil((countChatPrompt(body) * 300_000 + countText('Hello from the') * 1_200_000) / 1e6);
    expect(row).toMatchObject({ status: 'aborted', credits: expected, outputTokens: countText('Hello from the'), provider: 'openai' });
    expect(apiToken(await usage(secret)).used).toBe(expected);
    await new Promise((r) => setTimeout(r, 100));
    expect(await ledger(accountId)).toHaveLength(1);
  });

  it('client abort, then an upstream error before any output: nothing charged (SPEC §7), recorded as aborted', async () => {
    const { accountId, secret } = await t.newAccount();
    const failure = JSON.stringify({ error: { message: 'The server is overloaded', type: 'server_error', param: null, code: null } });
    // The client reads the role chunk (no output yet) and leaves.
    const { release } = await abortMidStream(secret, [chatStreamFixture[0]!, failure], 1, 'data:');
    await new Promise((r) => setTimeout(r, 100));
    release(); // within the drain window, the upstream fails
    await until(async () => (await ledger(accountId)).length === 1);
    expect((await ledger(accountId))[0]).toMatchObject({ status: 'aborted', credits: 0, outputTokens: 0, provider: null });
    expect(apiToken(await usage(secret)).used).toBe(0);
  });

  it("client abort: drains the upstream's usage when it comes within the drain window", async () => {
    const { accountId, secret } = await t.newAccount();
    const { release } = await abortMidStream(secret);
    // The upstream finishes after the client left, within the drain window: its usage counts.
    await new Promise((r) => setTimeout(r, 100));
    release();
    await until(async () => (await ledger(accountId)).length === 1);
    const [row] = await ledger(accountId);
    expect(row).toMatchObject({ status: 'aborted', credits: 12, outputTokens: 7, provider: 'openai' });
    expect(apiToken(await usage(secret)).used).toBe(12);
  });
});

describe('images', () => {
  async function image(secret: string, body: unknown) {
    return fetch(`${t.url}/v1/images/generations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  }
  async function paidAccount(credits: number) {
    const a = await t.newAccount();
    await t.admin('PATCH', `/accounts/${a.accountId}`, { paymentMethod: true });
    await t.admin('POST', `/accounts/${a.accountId}/credits`, { amount: credits });
    return a;
  }

  it('fal made the images but their download failed: the images are charged, the error answered', async () => {
    const { accountId, secret } = await paidAccount(100_000);
    // A URL nothing listens on: fal generated (and billed) the image, handing it over fails.
    t.fal.enqueue({ kind: 'json', body: { images: [{ url: 'http://127.0.0.1:1/lost.jpeg' }], seed: 1 } });
    const res = await image(secret, { model: 'flux/schnell', prompt: 'a lighthouse', response_format: 'b64_json' });
    expect(res.status).toBe(502);
    // Charged, so the SDK must not send it again (each retry would be charged).
    expect(res.headers.get('x-should-retry')).toBe('false');
    const [row] = await ledger(accountId);
    // flux/schnell: $0.003 an image = 6,000 credits.
    // fal did (and billed) the work: its invoice has the images, so the record names it.
    expect(row).toMatchObject({ status: 'error', credits: 6000, httpStatus: 502, provider: 'fal' });
    expect((await t.admin('GET', `/accounts/${accountId}`)).body.balance).toBe(94_000);
  });

  it('an image quality with a price of its own is charged at it (dall-e-2 here, with an hd price for the test)', async () => {
    const s = await startTestGateway({
      config: {
        models: [
          {
            id: 'dall-e-2', kind: 'image', provider: 'openai', sizes: ['1024x1024'], defaultSize: '1024x1024',
            price: { perImage: { '1024x1024': 0.02, '1024x1024/hd': 0.05 } },
          },
        ],
      },
    });
    try {
      const { accountId, secret } = await s.newAccount();
      await s.admin('PATCH', `/accounts/${accountId}`, { paymentMethod: true });
      await s.admin('POST', `/accounts/${accountId}/credits`, { amount: 1_000_000 });
      const post = (body: unknown) =>
        fetch(`${s.url}/v1/images/generations`, { method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect((await post({ model: 'dall-e-2', prompt: 'a lighthouse', quality: 'hd' })).headers.get('x-tollgate-credits-used')).toBe('100000');
      expect((await post({ model: 'dall-e-2', prompt: 'a lighthouse', quality: 'standard' })).headers.get('x-tollgate-credits-used')).toBe('40000');
      expect((s.openai.requests.at(-2)!.body as { quality?: string }).quality).toBe('hd');
    } finally {
      await s.close();
    }
  });

  it("a request naming no size is sent the size it is priced at, not left to the upstream's default", async () => {
    const { secret } = await paidAccount(100_000);
    const res = await image(secret, { model: 'dall-e-2', prompt: 'a lighthouse' });
    // Priced at dall-e-2's defaultSize (1024x1024, 40,000 credits): that is the size asked for, so
    // an upstream whose own default differs cannot make (or bill) another one.
    expect(res.headers.get('x-tollgate-credits-used')).toBe('40000');
    expect((t.openai.requests.at(-1)!.body as { size?: string }).size).toBe('1024x1024');
  });

  it('n images reserve n times the unit price, and no more than n are charged or relayed whatever the upstream returns', async () => {
    // dall-e-2 at its default 1024x1024: 40,000 credits an image.
    const { accountId, secret } = await paidAccount(100_000);
    const before = t.openai.requests.length;
    const three = await image(secret, { model: 'dall-e-2', prompt: 'a lighthouse', n: 3 });
    expect(three.status).toBe(403);
    expect((await three.json()).error.code).toBe('insufficient_balance');
    expect(t.openai.requests.length).toBe(before);
    // An upstream answering two images with three: two were asked for and reserved, two are charged,
    // and two are relayed (the third would have gone out for nothing).
    const urls = [0, 1, 2].map((i) => ({ url: `https://fake.example/extra-${i}.png` }));
    t.openai.enqueue({ kind: 'json', body: { created: 1, data: urls } });
    const two = await image(secret, { model: 'dall-e-2', prompt: 'a lighthouse', n: 2 });
    expect(two.status).toBe(200);
    expect(two.headers.get('x-tollgate-credits-used')).toBe('80000');
    expect((await two.json()).data).toEqual(urls.slice(0, 2));
    expect(sum(await ledger(accountId))).toBe(80_000);
    expect((await t.admin('GET', `/accounts/${accountId}`)).body.balance).toBe(20_000);
  });

  it('streamed image generation is refused before any upstream call', async () => {
    const { accountId, secret } = await paidAccount(100_000);
    const before = t.openai.requests.length;
    const res = await image(secret, { model: 'dall-e-2', prompt: 'a lighthouse', stream: true, partial_images: 1 });
    expect(res.status).toBe(400);
    expect((await res.json()).error).toMatchObject({ code: 'invalid_request', param: 'stream' });
    expect(t.openai.requests.length).toBe(before);
    expect(await ledger(accountId)).toEqual([]);
  });

  it('a flat image price is per started megapixel above one (as fal bills): a huge custom size costs its size', async () => {
    const { accountId, secret } = await paidAccount(1_000_000);
    // 2048×2048 = 4 MP = 4 × 6,000 credits.
    const big = await image(secret, { model: 'flux/schnell', prompt: 'a lighthouse', image_size: { width: 2048, height: 2048 } });
    expect(big.status).toBe(200);
    expect(big.headers.get('x-tollgate-credits-used')).toBe('24000');
    // A preset of up to a megapixel pays the flat price.
    const small = await image(secret, { model: 'flux/schnell', prompt: 'a lighthouse', image_size: 'landscape_16_9' });
    expect(small.headers.get('x-tollgate-credits-used')).toBe('6000');
    // Past fal's largest side: refused before anything is reserved.
    const huge = await image(secret, { model: 'flux/schnell', prompt: 'a lighthouse', image_size: { width: 100_000, height: 100_000 } });
    expect(huge.status).toBe(400);
    expect((await huge.json()).error.param).toMatch(/image_size/);
    expect(sum(await ledger(accountId))).toBe(30_000);
  });
});

describe("an operator's plan (docs/plans.md's team: credits per day, requests per minute per key)", () => {
  it('a request refused by the minute count still carries the credit budget headers (SPEC §6: every /v1 answer)', async () => {
    const s = await startTestGateway({
      gateway: { clock },
      config: {
        plans: {
          free: { preset: 'free-tier' },
          team: {
            rules: [
              { id: 'daily_credits', measure: 'credits', limit: 2_000_000, window: 'day' },
              { id: 'rpm', measure: 'requests', limit: 2, window: 'minute', scope: 'key' },
            ],
          },
        },
      },
    });
    try {
      const { secret } = await s.newAccount({ plan: 'team' });
      const post = () =>
        fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' }, body: JSON.stringify({ ...hi, max_tokens: 5 }) });
      expect((await post()).status).toBe(200);
      const second = await post();
      expect(second.status).toBe(200);
      const left = second.headers.get('x-ratelimit-remaining-tokens');
      const third = await post();
      expect(third.status).toBe(429);
      expect((await third.json()).error).toMatchObject({ code: 'rate_limit_exceeded', rule: 'rpm' });
      expect(third.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(third.headers.get('x-ratelimit-limit-requests')).toBe('2');
      expect(third.headers.get('x-ratelimit-remaining-requests')).toBe('0');
      expect(third.headers.get('x-ratelimit-limit-tokens')).toBe('2000000');
      expect(third.headers.get('x-ratelimit-remaining-tokens')).toBe(left);
      expect(third.headers.get('x-ratelimit-reset-tokens')).toMatch(/^\d+(h|m|s)/);
    } finally {
      await s.close();
    }
  });
});

describe('the paid plan', () => {
  it('reserves for the larger of max_tokens and max_completion_tokens when both are set', async () => {
    const { accountId, secret } = await t.newAccount();
    await t.admin('PATCH', `/accounts/${accountId}`, { paymentMethod: true });
    await t.admin('POST', `/accounts/${accountId}/credits`, { amount: 1000 });
    // An upstream that reads only max_tokens could produce 16,000 tokens (~19,200 credits).
    const both = await chat(secret, { ...hi, max_completion_tokens: 1, max_tokens: 16_000 });
    expect(both.status).toBe(403);
    expect((await both.json()).error.code).toBe('insufficient_balance');
    expect((await chat(secret, { ...hi, max_completion_tokens: 16_000, max_tokens: 1 })).status).toBe(403);
    expect((await chat(secret, { ...hi, max_completion_tokens: 100, max_tokens: 200 })).status).toBe(200);
  });

  it("lowers a max_tokens above the model's output ceiling to it, so the upstream cannot spend past the reservation", async () => {
    const { accountId, secret } = await t.newAccount();
    await t.admin('PATCH', `/accounts/${accountId}`, { paymentMethod: true });
    await t.admin('POST', `/accounts/${accountId}/credits`, { amount: 100_000 });
    // gpt-4o-mini's maxOutputTokens is 16,384: the worst case reserved covers that much output, no more.
    const res = await chat(secret, { ...hi, max_completion_tokens: 40_000 });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-tollgate-clamped')).toBe('max_tokens=16384');
    expect((t.openai.requests.at(-1)!.body as { max_completion_tokens?: number }).max_completion_tokens).toBe(16_384);
    const streamed = await chat(secret, { ...hi, max_tokens: 20_000, stream: true });
    expect(streamed.headers.get('x-tollgate-clamped')).toBe('max_tokens=16384');
    await streamed.text();
    expect((t.openai.requests.at(-1)!.body as { max_tokens?: number }).max_tokens).toBe(16_384);
  });

  it('a payment method moves a free account to paid; requests spend the balance; an empty balance refuses', async () => {
    const { accountId, secret } = await t.newAccount();
    expect((await t.admin('PATCH', `/accounts/${accountId}`, { paymentMethod: true })).body.plan).toBe('paid');
    // The plan change applies to the very next request: no daily cap, but no balance yet.
    const refused = await chat(secret);
    expect(refused.status).toBe(403);
    const json = await refused.json();
    expect(json.error).toMatchObject({ code: 'insufficient_balance', type: 'permission_error' });
    expect(json.message).toBe("You've run out of credits. Please top up your balance or update your payment method to continue: http://gateway.test/app/billing");
    // The budget headers as every paid answer has them: a balance has no limit and no reset.
    expect(refused.headers.get('x-ratelimit-remaining-tokens')).toBe('0');
    expect(refused.headers.get('x-ratelimit-reset-tokens')).toBe('never');
    expect(Number(refused.headers.get('x-tollgate-request-cost'))).toBeGreaterThan(0);

    expect((await t.admin('POST', `/accounts/${accountId}/credits`, { amount: 1000 })).body.balance).toBe(1000);
    // The paid plan clamps nothing, so the worst case is the model's own output ceiling (16,384
    // tokens ≈ 19,700 credits) unless the request names a smaller max_tokens.
    expect((await chat(secret)).status).toBe(403);
    const small = { ...hi, max_tokens: 512 };
    const ok = await chat(secret, small);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-ratelimit-remaining-tokens')).toBe('988');
    expect((await t.admin('GET', `/accounts/${accountId}`)).body.balance).toBe(988);
    const u = await usage(secret);
    expect(u).toMatchObject({ plan: 'paid', prepaid: true, balance: 988, rules: [] });
    // Each reserves its ~618-credit worst case and settles to 12; a 1,000-token worst case (~1,203) no longer fits.
    expect((await chat(secret, small)).status).toBe(200);
    expect((await chat(secret, small)).status).toBe(200);
    expect((await chat(secret, { ...hi, max_tokens: 1000 })).status).toBe(403);
    const rows = await ledger(accountId);
    expect(rows.filter((r) => r.status === 'ok')).toHaveLength(3);
    expect((await t.admin('GET', `/accounts/${accountId}`)).body.balance).toBe(1000 - sum(rows));
  });

  it('a long prompt the balance cannot pay for is refused as the reservation would refuse it; one it can is served', async () => {
    // gpt-4o-mini input: 0.3 credits a token, so 20,000 credits pay for ~66,666 prompt tokens. The
    // prompt is counted only that far (core/prompt-count.ts), then refused with the balance's answer.
    const { accountId, secret } = await t.newAccount({ plan: 'paid' });
    await t.admin('POST', `/accounts/${accountId}/credits`, { amount: 20_000 });
    const calls = t.upstreamCalls();
    const long = ' hello'.repeat(200_000);
    const refused = await chat(secret, { ...hi, max_tokens: 16, messages: [{ role: 'user', content: long }] });
    expect(refused.status).toBe(403);
    expect((await refused.json()).error.code).toBe('insufficient_balance');
    expect(refused.headers.get('x-ratelimit-remaining-tokens')).toBe('20000');
    const embed = await fetch(`${t.url}/v1/embeddings`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'text-embedding-3-small', input: [long, long, long, long, long, long] }),
    });
    // text-embedding-3-small: 0.04 credits a token; 20,000 credits pay for 500,000 tokens, not 1.2 M.
    expect(embed.status).toBe(403);
    expect((await embed.json()).error.code).toBe('insufficient_balance');
    expect(t.upstreamCalls()).toBe(calls);
    expect((await t.admin('GET', `/accounts/${accountId}`)).body.balance).toBe(20_000);

    // 20,000 tokens (6,000 credits): past the quick count, within the balance, served and charged.
    const ok = await chat(secret, { ...hi, max_tokens: 16, messages: [{ role: 'user', content: ' hello'.repeat(20_000) }] });
    expect(ok.status).toBe(200);
    const rows = await ledger(accountId);
    expect(rows).toHaveLength(1);
    expect((await t.admin('GET', `/accounts/${accountId}`)).body.balance).toBe(20_000 - sum(rows));
  });

  it('moving back to free brings the daily budget back into force on the next request', async () => {
    const { accountId, secret } = await t.newAccount({ plan: 'paid' });
    await t.admin('POST', `/accounts/${accountId}/credits`, { amount: 100_000 });
    const big = { ...hi, max_tokens: 16_000 };
    expect((await chat(secret, big)).headers.get('x-tollgate-clamped')).toBeNull();
    await t.admin('PATCH', `/accounts/${accountId}`, { plan: 'free' });
    const res = await chat(secret, big);
    expect(res.headers.get('x-tollgate-clamped')).toBe('max_tokens=512');
    expect(res.headers.get('x-ratelimit-limit-tokens')).toBe('50000');
  });
});
