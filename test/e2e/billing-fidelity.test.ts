// What the upstream bills against what Tollgate reserves and charges (SPEC §7): request fields that
// change the upstream's price, and usage fields that change what was really spent.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, testModels, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;

beforeAll(async () => {
  const models = [
    ...testModels(),
    // An operator whose price for this model is OpenAI's priority one, and who lets callers ask for it.
    { id: 'gpt-4o-mini-priority', upstream: 'gpt-4o-mini', kind: 'chat' as const, provider: 'openai', price: { input: 0.25, output: 1 }, serviceTiers: ['priority'] },
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
