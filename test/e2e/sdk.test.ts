// The official openai client (v6) against the gateway where it acts on its own: retries, helpers
// and error classes. What it does here is read in node_modules/openai/src/client.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway({
    config: {
      plans: {
        free: { preset: 'free-tier' },
        paid: { preset: 'pay-as-you-go' },
        open: {},
        // A month window: its Retry-After is past a minute but in the month's last one.
        monthly: { rules: [{ id: 'per_month', measure: 'requests', limit: 1, window: 'month' }] },
      },
    },
  });
});
afterAll(async () => t?.close());

const hi = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hi' }] };

describe('retries the SDK makes by itself', () => {
  it('a 429 whose Retry-After is past a minute fails at once: the SDK neither sleeps that long nor retries', async () => {
    const { secret } = await t.newAccount({ plan: 'monthly' });
    let calls = 0;
    // The SDK's defaults: two retries, each after the Retry-After the answer gives, however long
    // (an hour window's held the call for an hour, twice; a month's overflows setTimeout, so the
    // retries came at once).
    const client = new OpenAI({
      baseURL: `${t.url}/v1`,
      apiKey: secret,
      timeout: 10_000,
      fetch: (url, init) => {
        calls++;
        return fetch(url, init);
      },
    });
    await client.chat.completions.create(hi);
    calls = 0;
    const refused = await Promise.race([
      client.chat.completions.create(hi).then(
        () => 'admitted',
        (err: unknown) => err,
      ),
      new Promise((resolve) => setTimeout(() => resolve('still waiting after 3 s'), 3000)),
    ]);
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    const err = refused as InstanceType<typeof OpenAI.RateLimitError>;
    expect(err.code).toBe('rate_limit_exceeded');
    expect(Number(err.headers.get('retry-after'))).toBeGreaterThan(60);
    expect(err.headers.get('x-should-retry')).toBe('false');
    expect(calls).toBe(1);
  });
});

describe('embeddings as the SDK asks for them', () => {
  it('base64, its default: an upstream that answers floats regardless (Ollama, TEI) still gives the SDK its vectors', async () => {
    const { secret } = await t.newAccount({ plan: 'open' });
    const vector = [0.5, -0.25, 0.125, 3];
    t.openai.enqueue({
      kind: 'json',
      body: { object: 'list', data: [{ object: 'embedding', index: 0, embedding: vector }], model: 'nomic-embed-text', usage: { prompt_tokens: 2, total_tokens: 2 } },
    });
    const before = t.openai.requests.length;
    const r = await t.client(secret).embeddings.create({ model: 'text-embedding-3-small', input: 'hello' });
    // The SDK sent base64 without being told to, and decodes what it gets as base64.
    expect(t.openai.requests[before]!.body).toMatchObject({ encoding_format: 'base64' });
    expect(r.data[0]!.embedding).toEqual(vector);
  });
});

describe("the provider account's own limits", () => {
  it("OpenAI's insufficient_quota (the operator's account is out of credit) is no 429 about the caller's plan, and is not retried", async () => {
    const { secret } = await t.newAccount({ plan: 'open' });
    // OpenAI's answer when the account behind the gateway's key has no credit left.
    const quota = {
      error: {
        message: 'You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.',
        type: 'insufficient_quota',
        param: null,
        code: 'insufficient_quota',
      },
    };
    t.openai.setDefault({ kind: 'json', status: 429, body: quota });
    try {
      const client = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: secret, timeout: 10_000 }); // two retries, as shipped
      const before = t.openai.requests.length;
      const err = await client.chat.completions.create(hi).then(
        () => undefined,
        (e: unknown) => e as InstanceType<typeof OpenAI.APIError>,
      );
      expect(err).toBeInstanceOf(OpenAI.InternalServerError);
      expect(err!.status).toBe(502);
      expect(err!.code).toBe('upstream_quota_exhausted');
      expect(err!.message).not.toMatch(/your current quota|check your plan/i);
      expect(err!.message).toMatch(/operator/);
      expect(err!.headers?.get('x-should-retry')).toBe('false');
      expect(t.openai.requests.length - before).toBe(1);
    } finally {
      t.openai.setDefault(undefined);
    }
  });
});

describe("OpenAI's endpoints the gateway does not serve", () => {
  it('client.responses.create and the like: NotFoundError saying which calls are served', async () => {
    const { secret } = await t.newAccount({ plan: 'open' });
    const client = t.client(secret);
    const calls = [
      () => client.responses.create({ model: 'gpt-4o-mini', input: 'hi' }),
      () => client.moderations.create({ input: 'hi' }),
      () => client.images.edit({ model: 'dall-e-2', prompt: 'x', image: new File([Buffer.from('png')], 'a.png', { type: 'image/png' }) }),
    ];
    for (const call of calls) {
      const err = await call().then(
        () => undefined,
        (e: unknown) => e as InstanceType<typeof OpenAI.NotFoundError>,
      );
      expect(err).toBeInstanceOf(OpenAI.NotFoundError);
      expect(err!.code).toBe('route_not_found');
      expect(err!.requestID).toMatch(/^[0-9a-f-]{36}$/);
      expect(err!.message).toMatch(/serves POST \/v1\/chat\/completions/);
    }
  });
});
