// The public API end to end: the official openai client → the real gateway → fake upstreams that
// speak each provider's wire format. Credits are checked to the credit against the ledger.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { chatStreamFixture, FAKE_CONTENT, FAKE_USAGE } from '../helpers/fake-openai.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway();
});
afterAll(async () => t?.close());

/** gpt-4o-mini at $0.15 / $0.60 per 1M tokens and $1 = 2,000,000 credits: 0.3 and 1.2 credits a token. */
const chatCredits = (prompt: number, output: number) => Math.ceil((prompt * 300_000 + output * 1_200_000) / 1_000_000);

async function ledger(accountId: string) {
  const r = await t.admin('GET', `/usage?account=${accountId}`);
  expect(r.status).toBe(200);
  return r.body.data as Array<Record<string, unknown>>;
}

describe('chat completions', () => {
  it('answers through the openai client, meters and records the request', async () => {
    const { accountId, keyId, secret } = await t.newAccount();
    const before = t.openai.requests.length;
    const { data, response } = await t
      .client(secret)
      .chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'Say hello' }],
        max_tokens: 100,
        tools: [{ type: 'function', function: { name: 'noop', parameters: { type: 'object', properties: {} } } }],
        response_format: { type: 'text' },
        seed: 7,
      })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe(FAKE_CONTENT);
    expect(data.model).toBe('gpt-4o-mini');
    expect(data.usage?.prompt_tokens).toBe(FAKE_USAGE.prompt_tokens);

    const credits = chatCredits(FAKE_USAGE.prompt_tokens, FAKE_USAGE.completion_tokens);
    expect(credits).toBe(12); // 12 × 0.3 + 7 × 1.2 = 3.6 + 8.4, exactly 12 (no float drift to 13)
    expect((data as unknown as { meta: unknown }).meta).toEqual({ usage: { credits_used: credits } });
    expect(response.headers.get('x-tollgate-credits-used')).toBe(String(credits));
    expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);

    // What the upstream received: the upstream model id, our provider key, every field passed through.
    const sent = t.openai.requests[before]!;
    expect(sent.path).toBe('/v1/chat/completions');
    expect(sent.headers.authorization).toBe('Bearer sk-upstream-secret');
    expect(sent.body).toMatchObject({ model: 'gpt-4o-mini', max_tokens: 100, seed: 7, response_format: { type: 'text' } });
    expect((sent.body as { tools: unknown[] }).tools).toHaveLength(1);

    const rows = await ledger(accountId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      requestId: response.headers.get('x-request-id'),
      accountId,
      keyId,
      model: 'gpt-4o-mini',
      surface: 'api',
      promptTokens: 12,
      outputTokens: 7,
      credits,
      status: 'ok',
      httpStatus: 200,
    });
  });

  it('streams the upstream chunks in order, before the upstream has finished', async () => {
    const { accountId, secret } = await t.newAccount();
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    // The fixture with the usage chunk, as the upstream sends it when asked for usage.
    t.openai.enqueue({ kind: 'sse', events: chatStreamFixture, holdBeforeIndex: 4, release: released });

    const stream = await t.client(secret).chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Say hello' }],
      stream: true,
    });
    const contents: string[] = [];
    let sawUsage = false;
    let upstreamFinished = false;
    for await (const chunk of stream) {
      if (chunk.usage) sawUsage = true;
      const c = chunk.choices[0]?.delta.content;
      if (c !== undefined && c !== null) contents.push(c);
      // The upstream holds everything from its 5th event on: receiving the first three content
      // chunks now proves the gateway relays without buffering the whole answer.
      if (contents.length === 3 && !upstreamFinished) {
        upstreamFinished = true;
        release();
      }
    }
    const upstreamContents = chatStreamFixture
      .filter((d) => d !== '[DONE]')
      .map((d) => JSON.parse(d).choices[0]?.delta?.content)
      .filter((c) => c !== undefined);
    expect(contents).toEqual(upstreamContents);
    expect(contents.join('')).toBe(FAKE_CONTENT);
    // The client did not ask for usage: the gateway asked upstream for it and hid the chunk.
    expect(sawUsage).toBe(false);
    expect((t.openai.requests.at(-1)!.body as { stream_options: unknown }).stream_options).toEqual({ include_usage: true });

    const rows = await ledger(accountId);
    expect(rows[0]).toMatchObject({ status: 'ok', promptTokens: 12, outputTokens: 7, credits: chatCredits(12, 7) });
  });

  it('shows the usage chunk with the credits when the client asks for usage', async () => {
    const { secret } = await t.newAccount();
    const stream = await t.client(secret).chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Say hello' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ prompt_tokens: 12, completion_tokens: 7 });
    expect((last as unknown as { meta: unknown }).meta).toEqual({ usage: { credits_used: chatCredits(12, 7) } });
  });

  it('passes an upstream error through with its status and records nothing charged', async () => {
    const { accountId, secret } = await t.newAccount();
    t.openai.enqueue({
      kind: 'json',
      status: 429,
      body: { error: { message: 'Rate limit reached for gpt-4o-mini', type: 'requests', code: 'rate_limit_exceeded', param: null } },
    });
    const err = await t
      .client(secret)
      .chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 429, code: 'rate_limit_exceeded', message: expect.stringContaining('Rate limit reached') });
    const rows = await ledger(accountId);
    expect(rows[0]).toMatchObject({ status: 'error', httpStatus: 429, credits: 0 });
  });

  it('answers 504 upstream_timeout when the upstream never answers, charging nothing', async () => {
    const { accountId, secret } = await t.newAccount();
    t.openai.enqueue({ kind: 'hang' });
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status).toBe(504);
    const body = await res.json();
    expect(body.error.code).toBe('upstream_timeout');
    // upstream.answerTimeoutMs (2 s in these tests), not the 10 s total limit.
    expect(body.error.message).toBe("The provider 'openai' did not answer within 2000 ms (answer).");
    expect(body.requestId).toBe(res.headers.get('x-request-id'));
    expect((await ledger(accountId))[0]).toMatchObject({ status: 'error', httpStatus: 504, credits: 0 });
  });

  it('answers 503 provider_not_configured for a model whose provider has no key', async () => {
    const { secret } = await t.newAccount();
    const before = t.upstreamCalls();
    const err = await t
      .client(secret)
      .chat.completions.create({ model: 'unkeyed-chat', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 503, code: 'provider_not_configured' });
    expect(t.upstreamCalls()).toBe(before);
  });
});

describe('embeddings', () => {
  it('embeds a string and an array, metered by upstream usage', async () => {
    const { accountId, secret } = await t.newAccount();
    const client = t.client(secret);
    const one = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'hello world' }).withResponse();
    expect(one.data.data).toHaveLength(1);
    expect(one.data.data[0]!.embedding).toHaveLength(8);
    // The upstream's answer passes through as text with the gateway's members spliced in.
    expect(one.response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(one.data.model).toBe('text-embedding-3-small');
    expect((one.data as unknown as { meta: unknown }).meta).toEqual({ usage: { credits_used: 1 } });
    const three = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b', 'c'] });
    expect(three.data.map((d) => d.index)).toEqual([0, 1, 2]);
    // 4 tokens per input at $0.02/1M = 0.04 credits a token → rounds up to 1 credit per request.
    expect(one.response.headers.get('x-tollgate-credits-used')).toBe('1');
    const rows = await ledger(accountId);
    expect(rows.map((r) => [r.promptTokens, r.credits])).toEqual([
      [12, 1],
      [4, 1],
    ]);
  });
});

// Image prices exceed the free tier's 512-credit ceiling (tested with the plans): these tests use
// an account on a plan without rules.
describe('images', () => {
  it('generates with an OpenAI-shaped model, priced by size', async () => {
    const { accountId, secret } = await t.newAccount({ plan: 'open' });
    const { data, response } = await t
      .client(secret)
      .images.generate({ model: 'dall-e-2', prompt: 'a lighthouse', n: 2, size: '512x512' })
      .withResponse();
    expect(data.data).toHaveLength(2);
    expect(data.data?.[0]?.url).toMatch(/^https:\/\//);
    // $0.018 × 2,000,000 = 36,000 credits an image.
    expect(response.headers.get('x-tollgate-credits-used')).toBe('72000');
    expect(t.openai.requests.at(-1)!.body).toMatchObject({ model: 'dall-e-2', n: 2, size: '512x512', prompt: 'a lighthouse' });
    expect((await ledger(accountId))[0]).toMatchObject({ model: 'dall-e-2', credits: 72_000, status: 'ok' });
  });

  it('serves a fal model from the OpenAI request shape and from the fal shape', async () => {
    const { accountId, secret } = await t.newAccount({ plan: 'open' });
    const openaiShape = await t.client(secret).images.generate({ model: 'flux/schnell', prompt: 'a fox', size: '512x512' });
    expect(openaiShape.data).toHaveLength(1);
    expect(t.fal.requests.at(-1)).toMatchObject({
      path: '/fal-ai/flux/schnell',
      headers: { authorization: 'Key fal-upstream-secret' },
      body: { prompt: 'a fox', num_images: 1, image_size: { width: 512, height: 512 } },
    });

    const res = await fetch(`${t.url}/v1/images/generations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'flux/schnell', prompt: 'a fox', num_images: 1, image_size: 'square_hd', seed: 3 }),
    });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.data).toHaveLength(1);
    expect(typeof body.created).toBe('number');
    expect(body.meta).toEqual({ usage: { credits_used: 6000 } });
    expect(t.fal.requests.at(-1)!.body).toMatchObject({ image_size: 'square_hd', num_images: 1, seed: 3 });
    const rows = await ledger(accountId);
    expect(rows.map((r) => r.credits)).toEqual([6000, 6000]);
  });

  it("takes null for the fields OpenAI's images API lets be null (n, size, response_format, stream), as absent", async () => {
    // The SDKs' own types allow it (`n?: number | null`), and clients generated from OpenAI's
    // OpenAPI spec send null for what is not set: each was a 400 here.
    const { accountId, secret } = await t.newAccount({ plan: 'open' });
    const nulls = { n: null, size: null, response_format: null, stream: null };
    const openai = await t.client(secret).images.generate({ model: 'dall-e-2', prompt: 'a kite', ...nulls } as never);
    expect(openai.data).toHaveLength(1);
    // Priced and sent at the model's default size, one image.
    expect(t.openai.requests.at(-1)!.body).toMatchObject({ model: 'dall-e-2', n: 1, size: '1024x1024' });
    const fal = await t.client(secret).images.generate({ model: 'flux/schnell', prompt: 'a kite', ...nulls } as never);
    expect(fal.data).toHaveLength(1);
    expect(t.fal.requests.at(-1)!.body).toMatchObject({ num_images: 1 });
    expect((await ledger(accountId)).map((r) => r.credits)).toEqual([6000, 40_000]);
  });

  it('sends image_url to an image-to-image model', async () => {
    const { secret } = await t.newAccount({ plan: 'open' });
    const res = await fetch(`${t.url}/v1/images/generations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'flux/dev/image-to-image', prompt: 'as a watercolour', image_url: 'https://example.com/in.png' }),
    });
    expect(res.status).toBe(200);
    expect(t.fal.requests.at(-1)!.body).toMatchObject({ image_url: 'https://example.com/in.png' });
  });
});

describe('models and usage', () => {
  it('lists models without a key, with type, pro flag and price in credits', async () => {
    const res = await fetch(`${t.url}/v1/models`);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.object).toBe('list');
    const mini = body.data.find((m: { id: string }) => m.id === 'gpt-4o-mini');
    expect(mini).toMatchObject({ object: 'model', type: 'chat', pro: false, owned_by: 'openai', price: { input_per_1m_tokens: 300_000, output_per_1m_tokens: 1_200_000 } });
    expect(mini.available).toBeUndefined();
  });

  it('says per model whether the key can use it, and works with the openai client', async () => {
    const { secret } = await t.newAccount();
    const page = await t.client(secret).models.list();
    const byId = new Map(page.data.map((m) => [m.id, m as unknown as { available: boolean }]));
    expect(byId.get('gpt-4o-mini')?.available).toBe(true);
    expect(byId.get('unkeyed-chat')?.available).toBe(false);
  });

  it("reports today's usage for the key's account", async () => {
    const { accountId, secret } = await t.newAccount();
    await t.client(secret).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    const res = await fetch(`${t.url}/v1/usage`, { headers: { authorization: `Bearer ${secret}` } });
    const body = await res.json();
    expect(body).toMatchObject({ account: accountId, plan: 'free', today: { credits: 12, requests: 1 } });
    expect(body.today.by_model).toEqual([{ model: 'gpt-4o-mini', requests: 1, promptTokens: 12, outputTokens: 7, credits: 12 }]);
  });
});

describe('models.retrieve', () => {
  it('answers GET /v1/models/{id} with the list entry, ids with slashes included; an unknown id is 404 model_not_found', async () => {
    const { secret } = await t.newAccount();
    const client = t.client(secret);
    const list = (await fetch(`${t.url}/v1/models`).then((r) => r.json())).data as Array<{ id: string }>;
    const mini = await client.models.retrieve('gpt-4o-mini');
    expect(mini).toMatchObject({ ...list.find((m) => m.id === 'gpt-4o-mini'), available: true });
    expect((await client.models.retrieve('flux/schnell')).id).toBe('flux/schnell');
    expect((await fetch(`${t.url}/v1/models/flux/schnell`).then((r) => r.json())).id).toBe('flux/schnell');
    const missing = await fetch(`${t.url}/v1/models/gpt-9`);
    expect(missing.status).toBe(404);
    expect((await missing.json()).error).toMatchObject({ code: 'model_not_found', param: 'model' });
  });
});

describe('a server whose database file another server took over', () => {
  it('stops serving (fail-stop) instead of admitting beside the other one', async () => {
    let fatal = false;
    const s = await startTestGateway({ gateway: { onFatal: () => void (fatal = true) } });
    try {
      const { secret } = await s.newAccount();
      const chat = () =>
        fetch(`${s.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
        });
      expect((await chat()).status).toBe(200);
      // Another server takes the lease (as after this one stalled past the heartbeat's limit).
      const thief = new Database(s.gw.config.storage.url.replace(/^sqlite:/, ''));
      thief.prepare("UPDATE server_lease SET owner = 'thief', host = 'elsewhere', pid = 7").run();
      thief.close();
      // The next heartbeat (every 2 s) finds it gone: the gateway closes itself.
      const deadline = Date.now() + 6000;
      while (!fatal && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(fatal).toBe(true);
      await expect(chat()).rejects.toThrow();
    } finally {
      await s.close();
    }
  });
});
