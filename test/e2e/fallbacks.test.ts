// A model's fallbacks (config models[].fallbacks, core/routes.ts) through the real server: the next
// provider takes a call the one before failed without doing the work — answered 429 or 5xx, was
// unreachable, has no key — under the one reservation the request was admitted with; a failure
// after which the first may have done (and billed) the work, or that is about the request itself,
// is the client's answer.
import { createServer } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { pino } from 'pino';
import { ManualClock } from '../../src/lib/clock.js';
import { providerTypes } from '../../src/providers/registry.js';
import { chatStreamFixture, FAKE_CONTENT, startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { startTestGateway, testModels, type TestGateway } from '../helpers/gateway.js';
import { jsonLines } from '../helpers/log-lines.js';

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

let t: TestGateway;
let backup: FakeOpenAI;
const logged: Array<{ level: number; msg: string; provider?: string; err?: { code: string | null } }> = [];
beforeAll(async () => {
  backup = await startFakeOpenAI();
  const down = `http://127.0.0.1:${await closedPort()}/v1`;
  t = await startTestGateway({
    gateway: { logger: pino({ level: 'warn' }, jsonLines(logged)) },
    config: (fakes) => ({
      // Short, so the timeout case is quick; long enough for a loaded machine's fast answers.
      // No cooldown: each case below starts from the configured order (the cooldown has its own case).
      upstream: { connectTimeoutMs: 2000, firstByteTimeoutMs: 600, totalTimeoutMs: 10_000, answerTimeoutMs: 600, idleTimeoutMs: 600, fallbackCooldownMs: 0 },
      providers: [
        { id: 'openai', type: 'openai', baseUrl: fakes.openai, apiKey: 'sk-upstream-secret' },
        { id: 'fal', type: 'fal', baseUrl: fakes.fal, apiKey: 'fal-upstream-secret' },
        { id: 'nokey', type: 'openai', baseUrl: fakes.openai },
        { id: 'backup', type: 'openai', baseUrl: backup.url, apiKey: 'sk-backup-secret' },
        { id: 'down', type: 'openai', baseUrl: down, apiKey: 'sk-down' },
        { id: 'fal-down', type: 'fal', baseUrl: down.replace(/\/v1$/, ''), apiKey: 'fal-down' },
      ],
      models: [
        ...testModels().map((m) =>
          m.id === 'gpt-4o-mini' || m.id === 'text-embedding-3-small' ? { ...m, fallbacks: [{ provider: 'backup', upstream: `${m.id}-backup` }] } : m,
        ),
        { id: 'limited-then-down', kind: 'chat', provider: 'openai', upstream: 'gpt-4o-mini', fallbacks: [{ provider: 'down' }], price: { input: 0.15, output: 0.6 } },
        { id: 'far-chat', kind: 'chat', provider: 'down', upstream: 'gpt-4o-mini', fallbacks: [{ provider: 'backup' }], price: { input: 0.15, output: 0.6 } },
        { id: 'keyless-first', kind: 'chat', provider: 'nokey', upstream: 'gpt-4o-mini', fallbacks: [{ provider: 'backup' }], price: { input: 0.15, output: 0.6 } },
        { id: 'far-flux', kind: 'image', provider: 'fal-down', upstream: 'fal-ai/flux/schnell', fallbacks: [{ provider: 'fal' }], price: { perImage: 0.003 } },
      ],
    }),
  });
});
afterAll(async () => {
  await t?.close();
  await backup?.close();
});
beforeEach(() => {
  t.openai.setDefault(undefined);
  backup.setDefault(undefined);
});

const hi = (model = 'gpt-4o-mini') => ({ model, messages: [{ role: 'user' as const, content: 'hi' }] });
async function post(secret: string, path: string, body: unknown) {
  return fetch(`${t.url}/v1${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}
async function ledger(accountId: string) {
  return (await t.admin('GET', `/usage?account=${accountId}`)).body.data as Array<{ credits: number; status: string; model: string; provider: string | null }>;
}
async function apiTokenUsed(secret: string): Promise<number> {
  const u = (await (await fetch(`${t.url}/v1/usage`, { headers: { authorization: `Bearer ${secret}` } })).json()) as any;
  return u.rules.find((r: { id: string }) => r.id === 'api_token').used;
}
const upstream503 = { kind: 'json', status: 503, body: { error: { message: 'overloaded', type: 'server_error', code: null, param: null } } } as const;

describe('fallbacks', () => {
  it('a 503 from the provider hands the call to the next one, under its upstream name, charged once', async () => {
    const { accountId, secret } = await t.newAccount();
    t.openai.enqueue(upstream503);
    const before = backup.requests.length;
    const res = await post(secret, '/chat/completions', hi());
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body.choices[0].message.content).toBe(FAKE_CONTENT);
    expect(body.model).toBe('gpt-4o-mini');
    expect(backup.requests.length).toBe(before + 1);
    expect((backup.requests.at(-1)!.body as any).model).toBe('gpt-4o-mini-backup');
    expect(backup.requests.at(-1)!.headers.authorization).toBe('Bearer sk-backup-secret');
    const rows = await ledger(accountId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 'ok', model: 'gpt-4o-mini', credits: body.meta.usage.credits_used });
    expect(await apiTokenUsed(secret)).toBe(body.meta.usage.credits_used);
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toMatch(/tollgate_upstream_fallbacks_total\{model="gpt-4o-mini",provider="openai"\} [1-9]/);
  });

  it('a stream refused with 429 starts on the next provider; its usage chunk is charged', async () => {
    const { secret } = await t.newAccount();
    t.openai.enqueue({ kind: 'json', status: 429, body: { error: { message: 'Rate limit reached', type: 'requests', code: 'rate_limit_exceeded', param: null } } });
    const stream = await t.client(secret).chat.completions.create({ ...hi(), stream: true, stream_options: { include_usage: true } });
    let text = '';
    let credits = 0;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      credits = (chunk as any).meta?.usage?.credits_used ?? credits;
    }
    expect(text.length).toBeGreaterThan(0);
    expect(credits).toBeGreaterThan(0);
    expect(await apiTokenUsed(secret)).toBe(credits);
  });

  it('embeddings fall back too', async () => {
    const { secret } = await t.newAccount();
    t.openai.enqueue({ kind: 'json', status: 500, body: { error: { message: 'boom', type: 'server_error', code: null, param: null } } });
    const res = await post(secret, '/embeddings', { model: 'text-embedding-3-small', input: 'hello' });
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).model).toBe('text-embedding-3-small');
    expect((backup.requests.at(-1)!.body as any).model).toBe('text-embedding-3-small-backup');
  });

  it("a provider that refuses the gateway's key hands the call on, and says so at error level (the caller's 502 line never comes)", async () => {
    const { secret } = await t.newAccount();
    t.openai.enqueue({ kind: 'json', status: 401, body: { error: { message: 'Incorrect API key provided', type: 'invalid_request_error', code: 'invalid_api_key', param: null } } });
    t.openai.enqueue(upstream503);
    logged.length = 0;
    expect((await post(secret, '/chat/completions', hi())).status).toBe(200);
    expect((await post(secret, '/chat/completions', hi())).status).toBe(200);
    const lines = logged.filter((l) => l.msg === 'upstream failed without doing the work; trying the next provider');
    expect(lines.map((l) => [l.level, l.provider, l.err?.code])).toEqual([
      [50, 'openai', 'upstream_auth_failed'],
      [40, 'openai', null],
    ]);
  });

  it('an unreachable provider, or one without a key, is passed over', async () => {
    const { secret } = await t.newAccount();
    const before = { backup: backup.requests.length, nokey: t.openai.requests.length };
    expect((await post(secret, '/chat/completions', hi('far-chat'))).status).toBe(200);
    expect((await post(secret, '/chat/completions', hi('keyless-first'))).status).toBe(200);
    expect(backup.requests.length).toBe(before.backup + 2);
    // The keyless provider was never called: it is no route at all.
    expect(t.openai.requests.length).toBe(before.nokey);
  });

  it("a proxy's gateway timeout (504) is the answer: the provider behind it may still be making and billing it", async () => {
    const { accountId, secret } = await t.newAccount();
    const before = backup.requests.length;
    t.openai.enqueue({ kind: 'json', status: 504, body: { error: { message: 'upstream request timeout', type: 'server_error', code: null, param: null } } });
    const res = await post(secret, '/chat/completions', hi());
    expect(res.status).toBe(504);
    expect(backup.requests.length).toBe(before);
    expect(await ledger(accountId)).toEqual([expect.objectContaining({ status: 'error', credits: 0 })]);
  });

  it('an error object answered with HTTP 200 is the answer: the provider took the call (OpenRouter: "the model started processing")', async () => {
    // https://openrouter.ai/docs/api-reference/errors: "Otherwise, the returned HTTP response status
    // will be 200 and any error occurred while the LLM is producing the output will be emitted in
    // the response body"; the provider may bill the prompt even so.
    const { accountId, secret } = await t.newAccount();
    const before = backup.requests.length;
    const wrapped = { kind: 'json', status: 200, body: { error: { code: 502, message: 'Provider returned error', metadata: { provider_name: 'Example' } } } } as const;
    t.openai.enqueue(wrapped);
    const res = await post(secret, '/chat/completions', hi());
    expect(res.status).toBe(502);
    expect(((await res.json()) as any).error.message).toBe('Provider returned error');
    t.openai.enqueue(wrapped);
    expect((await post(secret, '/chat/completions', { ...hi(), stream: true })).status).toBe(502);
    expect(backup.requests.length).toBe(before);
    expect((await ledger(accountId)).map((r) => [r.status, r.credits])).toEqual([['error', 0], ['error', 0]]);
  });

  it('/v1/models says a model served by a fallback alone is available (its own provider has no key)', async () => {
    const { secret } = await t.newAccount();
    const listed = (await (await fetch(`${t.url}/v1/models`, { headers: { authorization: `Bearer ${secret}` } })).json()) as { data: Array<{ id: string; available: boolean }> };
    expect(listed.data.find((m) => m.id === 'keyless-first')?.available).toBe(true);
  });

  it('a 400 about the request, or a timeout, is the answer: the next provider is not asked', async () => {
    const { accountId, secret } = await t.newAccount();
    const before = backup.requests.length;
    t.openai.enqueue({ kind: 'json', status: 400, body: { error: { message: "Invalid value for 'temperature'", type: 'invalid_request_error', code: null, param: 'temperature' } } });
    const bad = await post(secret, '/chat/completions', hi());
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).error.param).toBe('temperature');
    // The provider may still be working on a call that timed out, and bill it: not sent twice.
    t.openai.enqueue({ kind: 'hang' });
    expect((await post(secret, '/chat/completions', hi())).status).toBe(504);
    expect(backup.requests.length).toBe(before);
    expect((await ledger(accountId)).map((r) => r.credits)).toEqual([0, 0]);
    expect(await apiTokenUsed(secret)).toBe(0);
  });

  it('when every provider fails, the last failure is the answer and nothing is charged', async () => {
    const { accountId, secret } = await t.newAccount();
    t.openai.enqueue(upstream503);
    backup.enqueue({ kind: 'json', status: 502, body: { error: { message: 'bad gateway at the backup', type: 'server_error', code: null, param: null } } });
    const res = await post(secret, '/chat/completions', hi());
    expect(res.status).toBe(502);
    expect(((await res.json()) as any).error.message).toContain('bad gateway at the backup');
    expect((await ledger(accountId)).map((r) => [r.status, r.credits])).toEqual([['error', 0]]);
    expect(await apiTokenUsed(secret)).toBe(0);
  });

  it("a provider's rate limit is the answer when the next one fails without doing the work too: its Retry-After tells when to come back", async () => {
    const { accountId, secret } = await t.newAccount();
    const limited = { kind: 'json', status: 429, headers: { 'retry-after': '2' }, body: { error: { message: 'slow down', type: 'rate_limit_error', code: 'rate_limit_exceeded', param: null } } } as const;
    // The fallback unreachable: it answered 502 "The provider 'down' could not be reached".
    t.openai.enqueue(limited);
    const res = await post(secret, '/chat/completions', hi('limited-then-down'));
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('2');
    const body = (await res.json()) as any;
    expect(body.error).toMatchObject({ code: 'rate_limit_exceeded', message: expect.stringContaining('slow down') });
    expect(JSON.stringify(body)).not.toContain("'down'");
    // The fallback answering an error about the request itself: that is the answer, not the 429.
    t.openai.enqueue(limited);
    backup.enqueue({ kind: 'json', status: 400, body: { error: { message: 'bad field at the backup', type: 'invalid_request_error', code: null, param: 'messages' } } });
    const bad = await post(secret, '/chat/completions', hi());
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).error.message).toContain('bad field at the backup');
    // The fallback failing with a 5xx: the 429 still wins.
    t.openai.enqueue(limited);
    backup.enqueue(upstream503);
    const both = await post(secret, '/chat/completions', hi());
    expect(both.status).toBe(429);
    expect((await ledger(accountId)).map((r) => [r.status, r.credits])).toEqual([['error', 0], ['error', 0], ['error', 0]]);
    expect(await apiTokenUsed(secret)).toBe(0);
  });

  it("a fallback that refuses the gateway's key behind a rate limit: the caller gets the 429, the operator still gets the error line", async () => {
    // The rate limit answers the caller now, so the fallback's failure is no longer the 502 whose
    // line (http/app.ts) told the operator to check its apiKey: it must be logged here, or never.
    const { secret } = await t.newAccount();
    t.openai.enqueue({ kind: 'json', status: 429, headers: { 'retry-after': '2' }, body: { error: { message: 'slow down', type: 'rate_limit_error', code: 'rate_limit_exceeded', param: null } } });
    backup.enqueue({ kind: 'json', status: 401, body: { error: { message: 'Incorrect API key provided', type: 'invalid_request_error', code: 'invalid_api_key', param: null } } });
    logged.length = 0;
    expect((await post(secret, '/chat/completions', hi())).status).toBe(429);
    const backupLines = logged.filter((l) => l.provider === 'backup');
    expect(backupLines.map((l) => [l.level, l.err?.code])).toEqual([[50, 'upstream_auth_failed']]);
  });

  it('200 parallel calls with the first provider down: each admitted once, the day counter equals the ledger', async () => {
    const { accountId, secret } = await t.newAccount();
    t.openai.setDefault(upstream503);
    const before = backup.requests.length;
    const statuses = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => (await post(secret, '/chat/completions', i % 2 ? hi() : { ...hi(), stream: true })).status),
    );
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(backup.requests.length).toBe(before + 200);
    const rows = await ledger(accountId);
    expect(rows).toHaveLength(200);
    expect(rows.every((r) => r.status === 'ok' && r.credits > 0)).toBe(true);
    expect(await apiTokenUsed(secret)).toBe(rows.reduce((a, r) => a + r.credits, 0));
  });
});

describe('the ledger names the provider that served', () => {
  async function until(check: () => Promise<boolean>, ms = 3000) {
    const end = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > end) throw new Error('condition not reached');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('the fallback when the primary is unreachable, the primary when it answers', async () => {
    const { accountId, secret } = await t.newAccount();
    expect((await post(secret, '/chat/completions', hi('far-chat'))).status).toBe(200);
    expect(await ledger(accountId)).toEqual([expect.objectContaining({ model: 'far-chat', status: 'ok', provider: 'backup' })]);
    expect((await post(secret, '/chat/completions', hi())).status).toBe(200);
    expect((await ledger(accountId)).map((r) => [r.model, r.provider])).toEqual([
      ['gpt-4o-mini', 'openai'],
      ['far-chat', 'backup'],
    ]);
  });

  it('a stream the fallback served, read to its end or left mid-way (settled by the drain)', async () => {
    const { accountId, secret } = await t.newAccount();
    const whole = await post(secret, '/chat/completions', { ...hi('far-chat'), stream: true });
    expect(whole.status).toBe(200);
    await whole.text();
    await until(async () => (await ledger(accountId)).length === 1);
    expect((await ledger(accountId))[0]).toMatchObject({ status: 'ok', provider: 'backup' });

    // The backup sends the role and a word, then holds the rest; the client leaves, and the
    // backup finishes within the drain window: its usage settles the record.
    let release!: () => void;
    backup.enqueue({ kind: 'sse', events: chatStreamFixture, holdBeforeIndex: 2, release: new Promise<void>((r) => (release = r)) });
    const abort = new AbortController();
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...hi('far-chat'), stream: true }),
      signal: abort.signal,
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('Hello')) text += new TextDecoder().decode((await reader.read()).value);
    abort.abort();
    await new Promise((r) => setTimeout(r, 100));
    release();
    await until(async () => (await ledger(accountId)).length === 2);
    expect((await ledger(accountId))[0]).toMatchObject({ status: 'aborted', provider: 'backup' });
    expect((await ledger(accountId))[0]!.credits).toBeGreaterThan(0);
  });

  it('embeddings the fallback served', async () => {
    const { accountId, secret } = await t.newAccount();
    t.openai.enqueue(upstream503);
    expect((await post(secret, '/embeddings', { model: 'text-embedding-3-small', input: 'hello' })).status).toBe(200);
    expect(await ledger(accountId)).toEqual([expect.objectContaining({ status: 'ok', provider: 'backup' })]);
  });

  it('images the fallback served, and the fallback that made (and billed) images whose download then failed', async () => {
    const { accountId, secret } = await t.newAccount();
    // flux costs 6,000 credits an image, past the free tier's 512 per image request.
    await t.admin('PATCH', `/accounts/${accountId}`, { paymentMethod: true });
    await t.admin('POST', `/accounts/${accountId}/credits`, { amount: 100_000 });
    const image = { model: 'far-flux', prompt: 'a lighthouse' };
    expect((await post(secret, '/images/generations', image)).status).toBe(200);
    t.fal.enqueue({ kind: 'json', body: { images: [{ url: 'http://127.0.0.1:1/lost.jpeg' }], seed: 1 } });
    expect((await post(secret, '/images/generations', { ...image, response_format: 'b64_json' })).status).toBe(502);
    expect((await ledger(accountId)).map((r) => [r.status, r.credits, r.provider])).toEqual([
      ['error', 6000, 'fal'],
      ['ok', 6000, 'fal'],
    ]);
  });

  it('none when every provider failed, or the one asked answered an error: nothing was served or charged', async () => {
    const { accountId, secret } = await t.newAccount();
    t.openai.enqueue(upstream503);
    backup.enqueue(upstream503);
    expect((await post(secret, '/chat/completions', hi())).status).toBe(503);
    t.openai.enqueue({ kind: 'json', status: 400, body: { error: { message: 'bad temperature', type: 'invalid_request_error', code: null, param: 'temperature' } } });
    expect((await post(secret, '/chat/completions', { ...hi(), stream: true })).status).toBe(400);
    expect((await ledger(accountId)).map((r) => [r.status, r.credits, r.provider])).toEqual([
      ['error', 0, null],
      ['error', 0, null],
    ]);
  });

  it('a request the plan refuses before any upstream call writes no record', async () => {
    const { accountId, secret } = await t.newAccount();
    const before = { openai: t.openai.requests.length, backup: backup.requests.length };
    // The free plan's image_input rule: 400 before admission.
    const refused = await post(secret, '/chat/completions', {
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }] }],
    });
    expect(refused.status).toBe(400);
    expect({ openai: t.openai.requests.length, backup: backup.requests.length }).toEqual(before);
    expect(await ledger(accountId)).toEqual([]);
  });
});

describe('the cooldown', () => {
  it('a provider that failed is tried after the fallback for upstream.fallbackCooldownMs, then first again', async () => {
    const clock = new ManualClock(Date.parse('2026-12-05T12:00:00Z'));
    const g = await startTestGateway({
      gateway: { clock },
      config: (fakes) => ({
        upstream: { fallbackCooldownMs: 60_000 },
        providers: [
          { id: 'openai', type: 'openai', baseUrl: fakes.openai, apiKey: 'sk-upstream-secret' },
          { id: 'fal', type: 'fal', baseUrl: fakes.fal, apiKey: 'fal-upstream-secret' },
          { id: 'backup', type: 'openai', baseUrl: backup.url, apiKey: 'sk-backup-secret' },
        ],
        models: testModels()
          .filter((m) => m.provider !== 'nokey')
          .map((m) => (m.id === 'gpt-4o-mini' ? { ...m, fallbacks: [{ provider: 'backup' }] } : m)),
      }),
    });
    try {
      const { secret } = await g.newAccount();
      const calls = () => ({ first: g.openai.requests.length, backup: backup.requests.length });
      const ask = async () => (await g.client(secret).chat.completions.create(hi())).choices[0]!.message.content;
      g.openai.enqueue(upstream503);
      let before = calls();
      expect(await ask()).toBe(FAKE_CONTENT);
      expect(calls()).toEqual({ first: before.first + 1, backup: before.backup + 1 });
      // Cooling: the backup first, the failed provider not asked.
      clock.advance(59_000);
      before = calls();
      expect(await ask()).toBe(FAKE_CONTENT);
      expect(calls()).toEqual({ first: before.first, backup: before.backup + 1 });
      // The backup failing too while the first cools: the first is still tried, last.
      backup.enqueue(upstream503);
      before = calls();
      expect(await ask()).toBe(FAKE_CONTENT);
      expect(calls()).toEqual({ first: before.first + 1, backup: before.backup + 1 });
      // Both cooled down past their minute: the configured order again.
      clock.advance(61_000);
      before = calls();
      expect(await ask()).toBe(FAKE_CONTENT);
      expect(calls()).toEqual({ first: before.first + 1, backup: before.backup });
    } finally {
      await g.close();
    }
  });
});

describe('fallbacks in config', () => {
  const load = (models: unknown[]) =>
    loadConfig({
      env: {},
      providerTypes,
      input: {
        providers: [{ id: 'a', type: 'openai', baseUrl: 'http://127.0.0.1:1/v1', apiKey: 'k' }, { id: 'f', type: 'fal', baseUrl: 'http://127.0.0.1:2', apiKey: 'k' }],
        models,
      } as any,
    });
  /** The problems load() lists for `models`. */
  const problemsOf = (models: unknown[]): string[] => {
    try {
      load(models);
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
    return [];
  };
  const chat = { id: 'm', kind: 'chat', provider: 'a', price: { input: 1, output: 1 } };

  it('names a fallback provider that does not exist, and one that repeats the model itself or an earlier fallback', () => {
    const problems = problemsOf([{ ...chat, fallbacks: [{ provider: 'nowhere' }, { provider: 'a' }, { provider: 'a', upstream: 'm' }, { provider: 'a', upstream: 'm-2' }, { provider: 'a', upstream: 'm-2' }] }]);
    expect(problems).toEqual([
      "models[0].fallbacks[0].provider: no provider with id 'nowhere'",
      'models[0].fallbacks[1]: the same provider and upstream as the model itself',
      'models[0].fallbacks[2]: the same provider and upstream as the model itself',
      'models[0].fallbacks[4]: the same provider and upstream as an earlier fallback',
    ]);
  });

  it('refuses a model, or a fallback, on a provider whose type cannot serve its kind (fal serves images only)', () => {
    const problems = problemsOf([
      { id: 'c', kind: 'chat', provider: 'f', price: { input: 1, output: 1 } },
      { id: 'e', kind: 'embedding', provider: 'a', fallbacks: [{ provider: 'f' }], price: { input: 1 } },
      { id: 'i', kind: 'image', provider: 'f', fallbacks: [{ provider: 'a' }], price: { perImage: 0.01 } },
    ]);
    expect(problems).toEqual([
      "models[0].provider: provider 'f' serves image models only, not chat",
      "models[1].fallbacks[0].provider: provider 'f' serves image models only, not embedding",
    ]);
  });

  it('accepts the same provider under another upstream name', () => {
    expect(load([{ ...chat, fallbacks: [{ provider: 'a', upstream: 'm-2024' }] }]).models[0]!.fallbacks).toEqual([{ provider: 'a', upstream: 'm-2024' }]);
  });
});
