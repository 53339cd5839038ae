// A key's own credit limit (ApiKey.limit) through the real server: counted in the same atomic
// reservation as the plan's rules, exact under parallel requests, refused with 403
// key_limit_exceeded, set and lifted through the admin API, seen by /v1/usage and the key lists.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/lib/clock.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const clock = new ManualClock(Date.parse('2026-12-05T12:00:00Z'));
let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway({ gateway: { clock } });
});
afterAll(async () => t?.close());

// 'hi' with at most 16 output tokens: a worst case of 22 credits; the fake answers 12 prompt and 7
// output tokens, 12 credits.
const hi = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 16 };
async function chat(secret: string) {
  return fetch(`${t.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify(hi),
  });
}
async function usage(secret: string) {
  return (await (await fetch(`${t.url}/v1/usage`, { headers: { authorization: `Bearer ${secret}` } })).json()) as any;
}
async function keyOf(accountId: string, limit?: unknown) {
  const res = await t.admin('POST', `/accounts/${accountId}/keys`, { name: 'limited', ...(limit !== undefined && { limit }) });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { id: string; key: string; limit: unknown };
}
async function ledgerCredits(accountId: string) {
  const rows = (await t.admin('GET', `/usage?account=${accountId}`)).body.data as Array<{ keyId: string; credits: number }>;
  return (keyId: string) => rows.filter((r) => r.keyId === keyId).reduce((a, r) => a + r.credits, 0);
}

describe("a key's own credit limit", () => {
  it('admits 300 parallel requests exactly as far as the limit allows, and refuses the rest with 403 key_limit_exceeded', async () => {
    const { accountId } = await t.newAccount({ plan: 'open' });
    const limited = await keyOf(accountId, { credits: 1000, window: 'day' });
    expect(limited.limit).toEqual({ credits: 1000, window: 'day' });
    const results = await Promise.all(Array.from({ length: 300 }, () => chat(limited.key)));
    const ok = results.filter((r) => r.status === 200).length;
    const refused = results.filter((r) => r.status === 403);
    expect(ok + refused.length).toBe(300);
    const body = (await refused[0]!.json()) as any;
    expect(body.error).toMatchObject({ code: 'key_limit_exceeded', type: 'rate_limit_error', rule: 'key_limit' });
    expect(body.error.message).toMatch(/^This API key's limit of 1000 credits per UTC day \[plan.rule:key_limit\] leaves \d+, less than this request can cost \(22\)\. It resets at 2026-12-06T00:00:00.000Z\./);
    expect(refused[0]!.headers.get('x-should-retry')).toBe('false');
    expect(refused[0]!.headers.get('x-ratelimit-limit-tokens')).toBe('1000');
    // Nothing charged past the limit; the counter is the ledger's sum.
    const spent = (await ledgerCredits(accountId))(limited.id);
    expect(spent).toBe(ok * 12);
    expect(spent).toBeLessThanOrEqual(1000);
    const rule = (await usage(limited.key)).rules.find((r: { id: string }) => r.id === 'key_limit');
    expect(rule).toMatchObject({ measure: 'credits', limit: 1000, window: 'day', scope: 'key', surfaces: ['api'], used: spent, remaining: 1000 - spent, reset: '2026-12-06T00:00:00.000Z' });
    // The parallel refusals came while others' reservations (22 each) were in flight; once they
    // settled (12 each), requests one at a time fill the limit to the last whole worst case.
    while ((await chat(limited.key)).status === 200);
    const left = 1000 - (await ledgerCredits(accountId))(limited.id);
    expect(left).toBeGreaterThanOrEqual(0);
    expect(left).toBeLessThan(22);
  });

  it("binds only its key: the account's other keys spend on, under the plan's rules alone", async () => {
    const { accountId, secret: other } = await t.newAccount({ plan: 'open' });
    const limited = await keyOf(accountId, { credits: 30, window: 'month' });
    expect((await chat(limited.key)).status).toBe(200);
    expect((await chat(limited.key)).status).toBe(403);
    expect((await chat(other)).status).toBe(200);
    expect((await usage(other)).rules.some((r: { id: string }) => r.id === 'key_limit')).toBe(false);
  });

  it('is raised, lowered and lifted with PATCH /admin/v1/keys/:id, at once for the next request', async () => {
    const { accountId } = await t.newAccount({ plan: 'open' });
    const limited = await keyOf(accountId, { credits: 20, window: 'day' });
    // A worst case (22) above the whole limit passes in no window: refused for good, no reset.
    const never = await chat(limited.key);
    expect(never.status).toBe(403);
    expect(((await never.json()) as any).error.message).toContain('No reset makes room for it.');
    const raised = await t.admin('PATCH', `/keys/${limited.id}`, { limit: { credits: 40, window: 'lifetime' } });
    expect(raised.status).toBe(200);
    expect(raised.body.limit).toEqual({ credits: 40, window: 'lifetime' });
    expect((await chat(limited.key)).status).toBe(200); // 12 spent
    expect((await chat(limited.key)).status).toBe(200); // 24: 16 left, less than a worst case
    expect((await chat(limited.key)).status).toBe(403);
    const lowered = await t.admin('PATCH', `/keys/${limited.id}`, { limit: { credits: 10, window: 'lifetime' } });
    expect(lowered.body).toMatchObject({ limit: { credits: 10, window: 'lifetime' } });
    const listed = (await t.admin('GET', `/accounts/${accountId}/keys`)).body.data as Array<{ id: string; limitUsed?: number }>;
    expect(listed.find((k) => k.id === limited.id)!.limitUsed).toBe(24);
    // The account's other key has no limit, so no limitUsed.
    expect(listed.find((k) => k.id !== limited.id)!.limitUsed).toBeUndefined();
  });

  it('a lifetime limit does not reset at midnight; removing it frees the key; bad limits are 400 naming the field', async () => {
    const { accountId } = await t.newAccount({ plan: 'open' });
    const limited = await keyOf(accountId, { credits: 30, window: 'lifetime' });
    expect((await chat(limited.key)).status).toBe(200);
    clock.advance(86_400_000);
    expect((await chat(limited.key)).status).toBe(403);
    const listed = await t.admin('GET', `/accounts/${accountId}/keys`);
    expect(listed.body.data.find((k: { id: string }) => k.id === limited.id)).toMatchObject({ id: limited.id, limit: { credits: 30, window: 'lifetime' }, limitUsed: 12 });
    expect((await t.admin('PATCH', `/keys/${limited.id}`, { limit: null })).body.limit).toBeNull();
    expect((await chat(limited.key)).status).toBe(200);
    for (const bad of [{ credits: 0, window: 'day' }, { credits: 10, window: 'week' }, { credits: 1.5, window: 'day' }, { credits: 10 }]) {
      const res = await t.admin('PATCH', `/keys/${limited.id}`, { limit: bad });
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(res.body.error.param).toMatch(/^limit/);
    }
    expect((await t.admin('PATCH', '/keys/key_nope', { limit: null })).status).toBe(404);
  });
});
