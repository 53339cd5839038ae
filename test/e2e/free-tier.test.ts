// One test per rule of SPEC §3, through the real HTTP server and the fake upstream: status,
// error code, body shape, and what the upstream received.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, testModels, type TestGateway } from '../helpers/gateway.js';
import { playgroundChat, playgroundContext } from '../helpers/playground.js';

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway({
    config: {
      models: [
        ...testModels().filter((m) => m.id !== 'flux/schnell'),
        // Cheap enough (400 credits) to pass the free tier's 512-credit image ceiling.
        { id: 'flux/schnell', kind: 'image', provider: 'fal', upstream: 'fal-ai/flux/schnell', price: { perImage: 0.0002 } },
        { id: 'flux-pro', kind: 'image', provider: 'fal', upstream: 'fal-ai/flux-pro', pro: true, price: { perImage: 0.0002 } },
        // As SPEC §10's example writes it: no `sizes`, its sizes are the ones it is priced at.
        { id: 'dall-e-3', kind: 'image', provider: 'openai', price: { perImage: { '1024x1024': 0.04, '1024x1792': 0.08, '1792x1024': 0.08 } } },
        { id: 'gpt-4o', kind: 'chat', provider: 'openai', pro: true, price: { input: 2.5, output: 10 } },
        // A reasoning model: its server refuses max_tokens, so the cap goes into max_completion_tokens.
        { id: 'o3-mini', kind: 'chat', provider: 'openai', outputLimitField: 'max_completion_tokens', price: { input: 1.1, output: 4.4 } },
        { id: 'gpt-4.1-nano', kind: 'chat', provider: 'openai', price: { input: 0.1, output: 0.4 } },
      ],
    },
  });
});
afterAll(async () => t?.close());

async function post(secret: string, path: string, body: unknown) {
  const res = await fetch(`${t.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { res, json: (await res.json()) as any };
}

const hi = [{ role: 'user', content: 'hi' }];

describe('max_output_tokens (API, chat: clamp to 512)', () => {
  it.each([
    ['absent', {}, { max_tokens: 512 }, 'max_tokens=512'],
    ['above', { max_tokens: 4000 }, { max_tokens: 512 }, 'max_tokens=512'],
    // SPEC §3 names the cap max_tokens=512 in the header whichever field the request used.
    ['max_completion_tokens above', { max_completion_tokens: 1000 }, { max_completion_tokens: 512 }, 'max_tokens=512'],
    ['both above', { max_tokens: 1000, max_completion_tokens: 2000 }, { max_tokens: 512, max_completion_tokens: 512 }, 'max_tokens=512'],
    ['null', { max_tokens: null }, { max_tokens: 512 }, 'max_tokens=512'],
  ])('%s → upstream gets 512 and the response says so', async (_n, extra, expected, header) => {
    const { secret } = await t.newAccount();
    const { res } = await post(secret, '/v1/chat/completions', { model: 'gpt-4o-mini', messages: hi, ...extra });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-tollgate-clamped')).toBe(header);
    expect(t.openai.requests.at(-1)!.body).toMatchObject(expected);
  });

  it('leaves a request within the limit alone', async () => {
    const { secret } = await t.newAccount();
    const { res } = await post(secret, '/v1/chat/completions', { model: 'gpt-4o-mini', messages: hi, max_tokens: 100 });
    expect(res.headers.get('x-tollgate-clamped')).toBeNull();
    expect(t.openai.requests.at(-1)!.body).toMatchObject({ max_tokens: 100 });
  });

  it('clamps streams too', async () => {
    const { secret } = await t.newAccount();
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: hi, stream: true, max_tokens: 9000 }),
    });
    await res.text();
    expect(res.headers.get('x-tollgate-clamped')).toBe('max_tokens=512');
    expect(t.openai.requests.at(-1)!.body).toMatchObject({ max_tokens: 512, stream: true });
  });

  it('caps a model whose server refuses max_tokens in max_completion_tokens (outputLimitField)', async () => {
    const { secret } = await t.newAccount();
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'o3-mini', messages: hi, reasoning_effort: 'low' }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-tollgate-clamped')).toBe('max_tokens=512');
    const sent = t.openai.requests.at(-1)!.body as Record<string, unknown>;
    expect(sent).toMatchObject({ max_completion_tokens: 512, reasoning_effort: 'low' });
    expect(sent).not.toHaveProperty('max_tokens');
  });
});

describe('image_input (API, chat)', () => {
  it('refuses a message with an image part, naming it', async () => {
    const { secret } = await t.newAccount();
    const before = t.upstreamCalls();
    const video = { type: 'video_url', video_url: { url: 'https://x/y.mp4' } }; // frames of images (vLLM)
    for (const part of [{ type: 'image_url', image_url: { url: 'https://x/y.png' } }, { type: 'input_image', image_url: 'https://x/y.png' }, video]) {
      const { res, json } = await post(secret, '/v1/chat/completions', {
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this?' }, part] }],
      });
      expect(res.status).toBe(400);
      expect(json.error).toMatchObject({ code: 'image_input_not_allowed', param: 'messages[0].content[1]', rule: 'image_input' });
      expect(json.message).toContain('[plan.rule:image_input]');
    }
    expect(t.upstreamCalls()).toBe(before);
  });

  it('lets text-only content parts through', async () => {
    const { secret } = await t.newAccount();
    const { res } = await post(secret, '/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] });
    expect(res.status).toBe(200);
  });
});

describe('images_per_request (the seed ten models: one image at a time)', () => {
  it('refuses n > 1 and num_images > 1, serves one', async () => {
    const { secret } = await t.newAccount();
    const before = t.upstreamCalls();
    // The refusal names the field the client sent (the fal-style name included).
    for (const [extra, param] of [[{ n: 2 }, 'n'], [{ num_images: 4 }, 'num_images'], [{ n: 3, num_images: 3 }, 'n']] as const) {
      const { res, json } = await post(secret, '/v1/images/generations', { model: 'flux/schnell', prompt: 'a fox', ...extra });
      expect(res.status).toBe(400);
      expect(json.error).toMatchObject({ code: 'too_many_images', rule: 'images_per_request', param });
    }
    expect(t.upstreamCalls()).toBe(before);
    const ok = await post(secret, '/v1/images/generations', { model: 'flux/schnell', prompt: 'a fox', n: 1 });
    expect(ok.res.status).toBe(200);
    expect(ok.json.meta.usage.credits_used).toBe(400);
    expect(t.fal.requests.at(-1)!.body).toMatchObject({ num_images: 1 });
  });

  it('does not apply to models outside the list', async () => {
    const { secret } = await t.newAccount();
    // dall-e-2 is not on the list: n = 2 passes this rule (and is then refused by its price).
    const { json } = await post(secret, '/v1/images/generations', { model: 'dall-e-2', prompt: 'x', n: 2, size: '256x256' });
    expect(json.error.code).toBe('request_cost_exceeded');
  });
});

describe('image_resolution (dall-e-2 and dall-e-3 up to 512x512)', () => {
  it('refuses dall-e-2 above 512x512 and lists the allowed sizes', async () => {
    const { secret } = await t.newAccount();
    for (const [body, param] of [
      [{ size: '1024x1024' }, 'size'],
      [{}, 'size'],
      // fal-style, as a preset and as {width, height}: the refusal names image_size.
      [{ image_size: 'square_hd' }, 'image_size'],
      [{ image_size: { width: 1024, height: 1024 } }, 'image_size'],
      // Above 512x512 and not a dall-e-2 size either: still the plan's refusal, which lists what passes.
      [{ size: '2048x2048' }, 'size'],
    ] as const) {
      const { res, json } = await post(secret, '/v1/images/generations', { model: 'dall-e-2', prompt: 'x', ...body });
      expect(res.status).toBe(400);
      expect(json.error).toMatchObject({ code: 'image_size_not_allowed', rule: 'image_resolution', param });
      expect(json.message).toMatch(/256x256 or 512x512/);
      // Both cost more than the plan's 512-credit image ceiling (32,000 and 36,000 credits): the
      // refusal says so, rather than send the caller to a size the next rule refuses.
      expect(json.message).toMatch(/cost more than the 512 credits your plan allows a request, so it cannot be used on this plan/);
    }
  });

  it('explains that dall-e-3 has no size within 512x512', async () => {
    const { secret } = await t.newAccount();
    // Every request (SPEC §4), one for a size within 512x512 included: no size it has can pass.
    for (const size of [undefined, '1024x1024', '1792x1024', '512x512', '256x256']) {
      const { res, json } = await post(secret, '/v1/images/generations', { model: 'dall-e-3', prompt: 'x', ...(size && { size }) });
      expect(res.status).toBe(400);
      expect(json.error.code).toBe('image_size_not_allowed');
      expect(json.message).toMatch(/dall-e-3 has no size within 512x512/);
      expect(json.message).toMatch(/1024x1024, 1024x1792, 1792x1024/);
    }
  });
});

describe('image_cost (a request above 512 credits is not processed)', () => {
  it('refuses by the worst-case cost, before any upstream call', async () => {
    const { secret } = await t.newAccount();
    const before = t.upstreamCalls();
    // dall-e-2 256x256 at $0.016 = 32,000 credits.
    const { res, json } = await post(secret, '/v1/images/generations', { model: 'dall-e-2', prompt: 'x', size: '256x256' });
    expect(res.status).toBe(403);
    expect(json.error).toMatchObject({ code: 'request_cost_exceeded', rule: 'image_cost', type: 'permission_error' });
    expect(json.message).toMatch(/up to 32000 credits, above the 512 credits/);
    expect(t.upstreamCalls()).toBe(before);
  });
});

describe('/v1/models says which models the plan can serve at all', () => {
  it('an image model every request of which the free tier refuses is not available through the API', async () => {
    const { secret } = await t.newAccount();
    const models = (await (await fetch(`${t.url}/v1/models`, { headers: { authorization: `Bearer ${secret}` } })).json()) as { data: Array<{ id: string; available: boolean }> };
    const available = Object.fromEntries(models.data.map((m) => [m.id, m.available]));
    expect(available).toMatchObject({
      // Its cheapest size, 256x256, costs 32,000 credits: above image_cost's 512.
      'dall-e-2': false,
      // No size within image_resolution's 512x512.
      'dall-e-3': false,
      // 400 credits: within the ceiling.
      'flux/schnell': true,
      // $0.03 = 60,000 credits: above the ceiling and the day's 50,000.
      'flux/dev/image-to-image': false,
      'gpt-4o-mini': true,
      'text-embedding-3-small': true,
    });
    // Each one marked so is refused, as the flag said.
    expect((await post(secret, '/v1/images/generations', { model: 'dall-e-3', prompt: 'x' })).res.status).toBe(400);
    expect((await post(secret, '/v1/images/generations', { model: 'dall-e-2', prompt: 'x', size: '256x256' })).res.status).toBe(403);
  });
});

describe('api_token (50,000 credits per UTC day)', () => {
  it('refuses with the seed body once the worst case no longer fits, and says when it resets', async () => {
    const { accountId, secret } = await t.newAccount();
    // gpt-4o at $10/1M output: 512 output tokens = 10,240 credits of worst case, and the fake
    // upstream reports 512 output tokens, so each request really costs about that.
    t.openai.setDefault({
      kind: 'json',
      body: {
        id: 'chatcmpl-x', object: 'chat.completion', created: 1, model: 'gpt-4o',
        choices: [{ index: 0, message: { role: 'assistant', content: 'long answer' }, finish_reason: 'length' }],
        usage: { prompt_tokens: 8, completion_tokens: 512, total_tokens: 520 },
      },
    });
    try {
      const statuses: number[] = [];
      let refusal: { res: Response; json: any } | undefined;
      for (let i = 0; i < 6; i++) {
        const r = await post(secret, '/v1/chat/completions', { model: 'gpt-4o', messages: hi });
        statuses.push(r.res.status);
        if (r.res.status !== 200) refusal ??= r;
        else expect(Number(r.res.headers.get('x-ratelimit-remaining-tokens'))).toBe(50_000 - statuses.length * 10_280);
      }
      // 8 × 2.5 × 2 + 512 × 10 × 2 = 40 + 10,240 = 10,280 worst case; actual 8 prompt tokens → 10,280.
      expect(statuses).toEqual([200, 200, 200, 200, 403, 403]);
      const { res, json } = refusal!;
      expect(json).toEqual({
        message: 'You have exhausted the available [plan.rule:api_token] resource limit. Update your payment method to continue using the service. For more information please visit http://gateway.test/app/billing',
        path: '/v1/chat/completions',
        requestId: res.headers.get('x-request-id'),
        statusCode: '403',
        timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        error: {
          message: json.message,
          type: 'rate_limit_error',
          code: 'resource_exhausted',
          param: null,
          rule: 'api_token',
        },
      });
      expect(res.headers.get('x-ratelimit-limit-tokens')).toBe('50000');
      // 9,120 left, less than the 10,280 this request can cost: both said, so the refusal of a
      // request too big for what is left is told from a budget that is spent.
      expect(res.headers.get('x-ratelimit-remaining-tokens')).toBe(String(50_000 - 4 * 10_280));
      expect(res.headers.get('x-tollgate-request-cost')).toBe('10280');
      const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
      expect(res.headers.get('x-tollgate-reset-at')).toBe(`${tomorrow}T00:00:00.000Z`);

      const usage = await (await fetch(`${t.url}/v1/usage`, { headers: { authorization: `Bearer ${secret}` } })).json();
      const rule = usage.rules.find((r: { id: string }) => r.id === 'api_token');
      expect(rule).toMatchObject({ limit: 50_000, used: 4 * 10_280, remaining: 50_000 - 4 * 10_280, window: 'day', reset: `${tomorrow}T00:00:00.000Z` });
      const ledger = (await t.admin('GET', `/usage?account=${accountId}`)).body.data;
      expect(ledger.reduce((a: number, r: { credits: number }) => a + r.credits, 0)).toBe(rule.used);
    } finally {
      t.openai.setDefault(undefined);
    }
  });

  it('a prompt past what the day budget could ever pay for is refused without counting all of it', async () => {
    const { secret } = await t.newAccount();
    const before = t.openai.requests.length;
    // ~3 MB of text: ~600,000 tokens at gpt-4o-mini's input price is ~180,000 credits, past 50,000.
    const r = await post(secret, '/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'lorem ipsum dolor sit amet '.repeat(110_000) }] });
    expect(r.res.status).toBe(403);
    expect(r.json.error).toMatchObject({ code: 'resource_exhausted', rule: 'api_token' });
    expect(t.openai.requests.length).toBe(before);
  });

  it("counts an assistant turn's reasoning sent back (reasoning_content, reasoning): vLLM's and Ollama's chat templates bill it as prompt", async () => {
    const { secret } = await t.newAccount();
    const before = t.openai.requests.length;
    // ~600,000 tokens hidden beside a one-word prompt: counted as nothing, the request was admitted
    // on a worst case of ~650 credits and the upstream billed ~180,000.
    const hidden = 'lorem ipsum dolor sit amet '.repeat(110_000);
    for (const field of ['reasoning_content', 'reasoning']) {
      const messages = [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'ok', [field]: hidden },
        { role: 'user', content: 'go on' },
      ];
      const r = await post(secret, '/v1/chat/completions', { model: 'gpt-4o-mini', messages });
      expect(r.res.status, field).toBe(403);
      expect(r.json.error).toMatchObject({ code: 'resource_exhausted', rule: 'api_token' });
    }
    expect(t.openai.requests.length).toBe(before);
  });

  it('every answer to a known key carries the budget as it stands (SPEC §6), refusals before admission included', async () => {
    const { secret } = await t.newAccount();
    expect((await post(secret, '/v1/chat/completions', { model: 'gpt-4o-mini', messages: hi })).res.status).toBe(200);
    const left = String(50_000 - 12);
    const get = (path: string) => fetch(`${t.url}${path}`, { headers: { authorization: `Bearer ${secret}` } });
    const answers = [
      (await post(secret, '/v1/chat/completions', { model: 'gpt-4o-mini', messages: [] })).res, // 400, bad input
      (await post(secret, '/v1/chat/completions', { model: 'no-such-model', messages: hi })).res, // 404
      (await post(secret, '/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://x/y.png' } }] }] })).res, // 400 by shape
      await get('/v1/usage'),
      await get('/v1/models'),
      await get('/v1/models/gpt-4o-mini'),
      await get('/v1/models/no-such-model'),
    ];
    expect(answers.map((r) => r.status)).toEqual([400, 404, 400, 200, 200, 200, 404]);
    for (const res of answers) {
      expect(res.headers.get('x-ratelimit-limit-tokens')).toBe('50000');
      expect(res.headers.get('x-ratelimit-remaining-tokens')).toBe(left);
      expect(res.headers.get('x-ratelimit-reset-tokens')).toMatch(/^\d+(h|m|s)/);
    }
    // No key, no account: nothing to report.
    expect((await fetch(`${t.url}/v1/models`)).headers.get('x-ratelimit-limit-tokens')).toBeNull();
  });
});

describe('playground_requests (10 per regular model per day) and playground_concurrency (one at a time)', () => {
  it('refuses the 11th Playground request to a regular model, not to another model or the API', async () => {
    const { accountId, secret } = await t.newAccount();
    const results = [];
    for (let i = 0; i < 11; i++) results.push(await playgroundChat(t, accountId));
    expect(results.slice(0, 10).every((r) => r.status === 200)).toBe(true);
    expect(results[10]).toMatchObject({ status: 429, code: 'requests_per_day_exceeded' });
    expect(Number(results[10]!.headers!['retry-after'])).toBeGreaterThan(0);
    expect(results[10]!.headers!['x-ratelimit-remaining-requests']).toBe('0');
    // Per model: another regular model still has its 10.
    expect((await playgroundChat(t, accountId, 'gpt-4.1-nano')).status).toBe(200);
    // Pro models are outside the count (they only draw on api_token).
    for (let i = 0; i < 11; i++) expect((await playgroundChat(t, accountId, 'gpt-4o')).status).toBe(200);
    // The API surface is not limited by Playground rules.
    const { res } = await post(secret, '/v1/chat/completions', { model: 'gpt-4o-mini', messages: hi });
    expect(res.status).toBe(200);

    const usage = await (await fetch(`${t.url}/v1/usage`, { headers: { authorization: `Bearer ${secret}` } })).json();
    const rule = usage.rules.find((r: { id: string }) => r.id === 'playground_requests');
    expect(rule.by_model).toEqual(
      expect.arrayContaining([
        { model: 'gpt-4o-mini', used: 10, remaining: 0 },
        { model: 'gpt-4.1-nano', used: 1, remaining: 9 },
      ]),
    );
    expect(rule.by_model.find((m: { model: string }) => m.model === 'gpt-4o')).toBeUndefined();
  });

  it('refuses a second Playground request while one runs, then admits the next', async () => {
    const { accountId } = await t.newAccount();
    let release!: () => void;
    t.openai.enqueue({ kind: 'sse', events: ['{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}', '[DONE]'], holdBeforeIndex: 1, release: new Promise<void>((r) => (release = r)) });
    const ctx = await playgroundContext(t, accountId);
    const started = await t.gw.gateway.chatStream(ctx, { model: 'gpt-4o-mini', messages: hi, stream: true });
    const sent: string[] = [];
    const piped = started.pipe({ send: (data) => void sent.push(data), fail: (err) => void sent.push(String(err)) });
    const second = await playgroundChat(t, accountId);
    expect(second).toMatchObject({ status: 429, code: 'concurrency_limit' });
    expect(second.headers!['retry-after']).toBe('1');
    release();
    await piped;
    expect(sent.at(-1)).toBe('[DONE]');
    expect((await playgroundChat(t, accountId)).status).toBe(200);
  });

  it('Playground and API share the one api_token budget', async () => {
    const { accountId, secret } = await t.newAccount();
    await playgroundChat(t, accountId);
    await post(secret, '/v1/chat/completions', { model: 'gpt-4o-mini', messages: hi });
    const usage = await (await fetch(`${t.url}/v1/usage`, { headers: { authorization: `Bearer ${secret}` } })).json();
    const ledger = (await t.admin('GET', `/usage?account=${accountId}`)).body.data;
    expect(ledger.map((r: { surface: string }) => r.surface).sort()).toEqual(['api', 'playground']);
    expect(usage.rules.find((r: { id: string }) => r.id === 'api_token').used).toBe(ledger.reduce((a: number, r: { credits: number }) => a + r.credits, 0));
  });
});

describe('pro_models', () => {
  it('the free plan may call Pro models through the API by default', async () => {
    const { secret } = await t.newAccount();
    const { res } = await post(secret, '/v1/chat/completions', { model: 'gpt-4o', messages: hi });
    expect(res.status).toBe(200);
  });

  it('a plan with proModelsViaApi: false refuses them with 403 model_not_in_plan', async () => {
    const strict = await startTestGateway({ config: { plans: { free: { preset: 'free-tier', proModelsViaApi: false } }, models: [...testModels(), { id: 'gpt-4o', kind: 'chat', provider: 'openai', pro: true, price: { input: 2.5, output: 10 } }] } });
    try {
      const { secret } = await strict.newAccount();
      const res = await fetch(`${strict.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o', messages: hi }),
      });
      expect(res.status).toBe(403);
      expect((await res.json()).error).toMatchObject({ code: 'model_not_in_plan', rule: 'pro_models' });
      const models = await (await fetch(`${strict.url}/v1/models`, { headers: { authorization: `Bearer ${secret}` } })).json();
      expect(models.data.find((m: { id: string }) => m.id === 'gpt-4o').available).toBe(false);
      expect(models.data.find((m: { id: string }) => m.id === 'gpt-4o-mini').available).toBe(true);
    } finally {
      await strict.close();
    }
  });
});
