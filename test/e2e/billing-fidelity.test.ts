// What the upstream bills against what Tollgate reserves and charges (SPEC §7): request fields that
// change the upstream's price, and usage fields that change what was really spent.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, testModels, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;

beforeAll(async () => {
  const models = [
    ...testModels(),
    // An operator whose price for this model is OpenAI's priority one, and who lets callers ask for it.
    // OpenAI's list price: cached input at half the input price.
    { id: 'gpt-4o-mini-cached', upstream: 'gpt-4o-mini', kind: 'chat' as const, provider: 'openai', price: { input: 0.15, cachedInput: 0.075, output: 0.6 } },
    { id: 'gpt-4o-mini-priority', upstream: 'gpt-4o-mini', kind: 'chat' as const, provider: 'openai', price: { input: 0.25, output: 1 }, serviceTiers: ['priority'] },
    // gpt-4o-audio-preview's list prices: text 2.50 / 10, audio 40 / 80 USD per 1M tokens.
    { id: 'gpt-4o-audio-preview', kind: 'chat' as const, provider: 'openai', price: { input: 2.5, output: 10, audioInput: 40, audioOutput: 80 } },
    // A search model's fee per call on top of its tokens ($0.03 = 60,000 credits).
    { id: 'gpt-4o-search-preview', kind: 'chat' as const, provider: 'openai', price: { input: 2.5, output: 10, perRequest: 0.03 } },
  ];
  t = await startTestGateway({ config: { models } });
});
afterAll(async () => t?.close());

const chat = (secret: string, extra: Record<string, unknown>, model = 'gpt-4o-mini') =>
  fetch(`${t.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }], ...extra }),
  });

async function paid() {
  const { accountId, secret } = await t.newAccount({ plan: 'paid' });
  await t.admin('POST', `/accounts/${accountId}/credits`, { amount: 1_000_000 });
  return { accountId, secret };
}

describe('service_tier', () => {
  it('a tier the model is not priced for (OpenAI priority, ~1.75× the standard price) is refused before any call or charge', async () => {
    const { accountId, secret } = await paid();
    const calls = t.upstreamCalls();
    for (const tier of ['priority', 'scale', 'performance']) {
      const res = await chat(secret, { service_tier: tier });
      expect(res.status).toBe(400);
      const json = await res.json();
      expect(json.error).toMatchObject({ code: 'invalid_request', param: 'service_tier' });
      expect(json.error.message).toContain(`'${tier}'`);
    }
    expect(t.upstreamCalls()).toBe(calls);
    expect((await t.admin('GET', `/accounts/${accountId}`)).body.balance).toBe(1_000_000);
  });

  it('the standard tiers, a cheaper one and none at all pass through as sent', async () => {
    const { secret } = await paid();
    for (const tier of ['auto', 'default', 'flex', 'on_demand', null]) {
      const res = await chat(secret, { service_tier: tier });
      expect(res.status).toBe(200);
      expect((t.openai.requests.at(-1)!.body as { service_tier?: unknown }).service_tier).toBe(tier);
    }
    expect((await chat(secret, {})).status).toBe(200);
  });

  it('a model whose serviceTiers name priority takes it (its price is the operator’s to set)', async () => {
    const { secret } = await paid();
    const res = await chat(secret, { service_tier: 'priority' }, 'gpt-4o-mini-priority');
    expect(res.status).toBe(200);
    expect((t.openai.requests.at(-1)!.body as { service_tier?: unknown }).service_tier).toBe('priority');
    // Its own list replaces the default one.
    expect((await chat(secret, { service_tier: 'flex' }, 'gpt-4o-mini-priority')).status).toBe(400);
  });
});

/** A chat completion answer with `usage`, as OpenAI (or DeepSeek) writes it. */
const answer = (usage: Record<string, unknown>) => ({
  kind: 'json' as const,
  body: {
    id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
    usage,
  },
});
const streamOf = (usage: Record<string, unknown>) => ({
  kind: 'sse' as const,
  events: [
    JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, delta: { content: 'ok' }, finish_reason: 'stop' }] }),
    JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [], usage }),
    '[DONE]',
  ],
});
const charged = (res: Response) => Number(res.headers.get('x-tollgate-credits-used'));

describe('cached prompt tokens', () => {
  // 100,000 prompt tokens, 80,000 of them from the cache, and 1,000 output: at 0.15 / 0.075 / 0.6
  // USD per 1M (300,000 / 150,000 / 1,200,000 credits) that is 6,000 + 12,000 + 1,200 credits.
  const cachedUsage = { prompt_tokens: 100_000, completion_tokens: 1_000, total_tokens: 101_000, prompt_tokens_details: { cached_tokens: 80_000 } };

  it('are charged at the model price.cachedInput (OpenAI prompt_tokens_details.cached_tokens)', async () => {
    const { secret } = await paid();
    t.openai.enqueue(answer(cachedUsage));
    const res = await chat(secret, { max_tokens: 1_000 }, 'gpt-4o-mini-cached');
    expect(res.status).toBe(200);
    expect(charged(res)).toBe(19_200);
    expect((await res.json()).meta.usage.credits_used).toBe(19_200);
  });

  it('/v1/models lists the cached price beside the others', async () => {
    const models = (await (await fetch(`${t.url}/v1/models`)).json()).data as Array<{ id: string; price: unknown }>;
    expect(models.find((m) => m.id === 'gpt-4o-mini-cached')!.price).toEqual({ unit: 'credits',  input_per_1m_tokens: 300_000, cached_input_per_1m_tokens: 150_000, output_per_1m_tokens: 1_200_000 });
    expect(models.find((m) => m.id === 'gpt-4o-mini')!.price).toEqual({ unit: 'credits',  input_per_1m_tokens: 300_000, output_per_1m_tokens: 1_200_000 });
  });

  it("DeepSeek's prompt_cache_hit_tokens count the same", async () => {
    const { secret } = await paid();
    t.openai.enqueue(answer({ prompt_tokens: 100_000, completion_tokens: 1_000, total_tokens: 101_000, prompt_cache_hit_tokens: 80_000, prompt_cache_miss_tokens: 20_000 }));
    expect(charged(await chat(secret, { max_tokens: 1_000 }, 'gpt-4o-mini-cached'))).toBe(19_200);
  });

  it('in a stream too, in the usage chunk and in what is charged', async () => {
    const { accountId, secret } = await paid();
    t.openai.enqueue(streamOf(cachedUsage));
    const res = await chat(secret, { max_tokens: 1_000, stream: true, stream_options: { include_usage: true } }, 'gpt-4o-mini-cached');
    const text = await res.text();
    expect(text).toContain('"credits_used":19200');
    const rows = (await t.admin('GET', `/usage?account=${accountId}`)).body.data as Array<{ credits: number }>;
    expect(rows.map((r) => r.credits)).toEqual([19_200]);
  });

  it('a model without cachedInput charges them at the input price; a count past prompt_tokens or unreadable counts as none cached', async () => {
    const { secret } = await paid();
    t.openai.enqueue(answer(cachedUsage));
    expect(charged(await chat(secret, { max_tokens: 1_000 }))).toBe(31_200);
    t.openai.enqueue(answer({ ...cachedUsage, prompt_tokens_details: { cached_tokens: 500_000 } }));
    expect(charged(await chat(secret, { max_tokens: 1_000 }, 'gpt-4o-mini-cached'))).toBe(31_200);
    t.openai.enqueue(answer({ ...cachedUsage, prompt_tokens_details: { cached_tokens: '80000' } }));
    expect(charged(await chat(secret, { max_tokens: 1_000 }, 'gpt-4o-mini-cached'))).toBe(31_200);
    t.openai.enqueue(answer({ ...cachedUsage, prompt_tokens_details: { cached_tokens: -5 } }));
    expect(charged(await chat(secret, { max_tokens: 1_000 }, 'gpt-4o-mini-cached'))).toBe(31_200);
  });
});

describe('audio tokens', () => {
  // Credits per token at 2,000,000 a dollar: text 5 in / 20 out, audio 80 in / 160 out.
  const audioUsage = {
    prompt_tokens: 1_000, completion_tokens: 500, total_tokens: 1_500,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 400 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 300 },
  };
  const speak = { modalities: ['text', 'audio'], audio: { voice: 'alloy', format: 'wav' }, max_tokens: 500 };

  it('are charged at price.audioInput / audioOutput (prompt_tokens_details / completion_tokens_details.audio_tokens)', async () => {
    const { secret } = await paid();
    t.openai.enqueue(answer(audioUsage));
    const res = await chat(secret, speak, 'gpt-4o-audio-preview');
    expect(res.status).toBe(200);
    expect(charged(res)).toBe(600 * 5 + 400 * 80 + 200 * 20 + 300 * 160);
  });

  it('a request asking for audio out is reserved at the audio output price: a balance that covers only text refuses it', async () => {
    const { accountId, secret } = await t.newAccount({ plan: 'paid' });
    // 'hi' is a handful of prompt tokens; 500 output tokens are 10,000 credits as text, 80,000 as audio.
    await t.admin('POST', `/accounts/${accountId}/credits`, { amount: 20_000 });
    const calls = t.upstreamCalls();
    const refused = await chat(secret, speak, 'gpt-4o-audio-preview');
    expect(refused.status).toBe(403);
    expect((await refused.json()).error.code).toBe('insufficient_balance');
    expect(t.upstreamCalls()).toBe(calls);
    // Text only, the same balance serves it.
    t.openai.enqueue(answer({ prompt_tokens: 8, completion_tokens: 5, total_tokens: 13 }));
    expect((await chat(secret, { max_tokens: 500 }, 'gpt-4o-audio-preview')).status).toBe(200);
  });

  it('in a stream too, and /v1/models lists the audio prices', async () => {
    const { accountId, secret } = await paid();
    t.openai.enqueue(streamOf(audioUsage));
    const res = await chat(secret, { ...speak, stream: true, stream_options: { include_usage: true } }, 'gpt-4o-audio-preview');
    await res.text();
    const rows = (await t.admin('GET', `/usage?account=${accountId}`)).body.data as Array<{ credits: number }>;
    expect(rows.map((r) => r.credits)).toEqual([600 * 5 + 400 * 80 + 200 * 20 + 300 * 160]);
    const models = (await (await fetch(`${t.url}/v1/models`)).json()).data as Array<{ id: string; price: unknown }>;
    expect(models.find((m) => m.id === 'gpt-4o-audio-preview')!.price).toEqual({
      unit: 'credits', input_per_1m_tokens: 5_000_000, output_per_1m_tokens: 20_000_000, audio_input_per_1m_tokens: 80_000_000, audio_output_per_1m_tokens: 160_000_000,
    });
  });
});

describe('a fee per request (price.perRequest)', () => {
  it('is charged with the tokens, and reserved: a balance short of the fee refuses the call', async () => {
    const { accountId, secret } = await paid();
    t.openai.enqueue(answer({ prompt_tokens: 100, completion_tokens: 10, total_tokens: 110 }));
    const res = await chat(secret, {}, 'gpt-4o-search-preview');
    expect(res.status).toBe(200);
    expect(charged(res)).toBe(100 * 5 + 10 * 20 + 60_000);
    expect((await t.admin('GET', `/accounts/${accountId}`)).body.balance).toBe(1_000_000 - 60_700);
    const poor = await t.newAccount({ plan: 'paid' });
    await t.admin('POST', `/accounts/${poor.accountId}/credits`, { amount: 50_000 });
    const refused = await chat(poor.secret, {}, 'gpt-4o-search-preview');
    expect(refused.status).toBe(403);
    expect((await refused.json()).error.code).toBe('insufficient_balance');
  });
});
