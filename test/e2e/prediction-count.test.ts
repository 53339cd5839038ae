// How far a Predicted Outputs `prediction` is counted: no further than a prompt would be. A prepaid
// plan has no fixed credits ceiling, and a model without contextTokens no window: a key with an
// empty balance had a 9 MB prediction counted whole (~140 ms of the event loop) before its refusal.
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

/** The caps predictionTokens was asked to count to, and the tokens it counted. */
const counted = vi.hoisted(() => [] as Array<{ cap: number; tokens: number }>);
vi.mock('../../src/core/chat-output.js', async (importOriginal) => {
  const mod = await importOriginal<typeof import('../../src/core/chat-output.js')>();
  return {
    ...mod,
    predictionTokens: (body: Parameters<typeof mod.predictionTokens>[0], cap: number) => {
      const tokens = mod.predictionTokens(body, cap);
      counted.push({ cap, tokens });
      return tokens;
    },
  };
});

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway();
});
afterAll(async () => t?.close());

it('a prediction on a prepaid plan is counted only as far as the balance pays for, and refused', async () => {
  const { secret } = await t.newAccount({ plan: 'paid' });
  const before = t.upstreamCalls();
  const res = await fetch(`${t.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], prediction: { type: 'content', content: 'word '.repeat(200_000) } }),
  });
  expect(res.status).toBe(403);
  expect((await res.json()).error.code).toBe('insufficient_balance');
  expect(t.upstreamCalls()).toBe(before);
  // 200,000 tokens; never counted whole, never without a bound.
  expect(counted.length).toBeGreaterThan(0);
  for (const c of counted) {
    expect(c.cap).toBeLessThan(Number.POSITIVE_INFINITY);
    expect(c.tokens).toBeLessThan(20_000);
  }
});
