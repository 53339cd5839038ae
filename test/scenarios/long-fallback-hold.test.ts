// Scenario: a model with fallbacks makes one upstream call per route before its answer, each bounded
// by upstream.totalTimeoutMs on its own. The meter renews a reservation only for as long as a request
// can last (maxHoldMs): bounded by two rounds (an image's generation and downloads), the reservation
// of a call on its fourth route lapsed, and the balance it held was spent again meanwhile.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const ROUND_MS = 2_900; // each route's answer, just inside the total timeout
const TOTAL_MS = 3_000;
const overloaded = { kind: 'json', status: 503, body: { error: { message: 'overloaded', type: 'server_error', code: null, param: null } } } as const;

let upstream: FakeOpenAI;
let t: TestGateway;
beforeAll(async () => {
  upstream = await startFakeOpenAI({ delayMs: ROUND_MS });
  t = await startTestGateway({
    config: {
      upstream: { connectTimeoutMs: 2000, firstByteTimeoutMs: TOTAL_MS, totalTimeoutMs: TOTAL_MS, answerTimeoutMs: TOTAL_MS, idleTimeoutMs: TOTAL_MS, fallbackCooldownMs: 0 },
      metering: { reservationTtlMs: 1000, renewEveryMs: 100, drainUsageMs: 0 },
      providers: [{ id: 'openai', type: 'openai', baseUrl: upstream.url, apiKey: 'sk-upstream-secret' }],
      models: [
        {
          id: 'gpt-4o-mini', kind: 'chat', provider: 'openai', upstream: 'first', price: { input: 0.15, output: 0.6 },
          fallbacks: [{ provider: 'openai', upstream: 'second' }, { provider: 'openai', upstream: 'third' }, { provider: 'openai', upstream: 'fourth' }],
        },
      ],
    },
  });
});
afterAll(async () => {
  await t?.close();
  await upstream?.close();
});

const chat = (secret: string) =>
  fetch(`${t.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 16 }),
  });

it('holds the reservation of a call through every route it tries: the balance is not spent twice', { timeout: 30_000 }, async () => {
  const { accountId, secret } = await t.newAccount({ plan: 'paid' });
  // Enough for one request's worst case (22 credits), not two.
  expect((await t.admin('POST', `/accounts/${accountId}/credits`, { amount: 30 })).status).toBe(200);
  for (let i = 0; i < 3; i++) upstream.enqueue(overloaded);
  const first = chat(secret);
  // Past two rounds plus the TTL (the old bound: renewals stopped, the reservation lapsed at about
  // 8 s), the fourth route still answering (until about 11.6 s): the balance is still held by the first request.
  await new Promise((r) => setTimeout(r, 3 * TOTAL_MS));
  const second = await chat(secret);
  expect(second.status).toBe(403);
  expect(((await second.json()) as { error: { code: string } }).error.code).toBe('insufficient_balance');
  expect((await first).status).toBe(200);
  expect(upstream.requests.map((r) => (r.body as { model: string }).model).slice(0, 4)).toEqual(['first', 'second', 'third', 'fourth']);
  const account = await t.admin('GET', `/accounts/${accountId}`);
  expect(account.body.balance).toBe(30 - 12);
});
