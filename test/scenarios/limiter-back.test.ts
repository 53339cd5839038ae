// Scenario: work the shared limiter (Redis) could not take while it was down — a charge of a
// request served unmetered (onUnavailable: open), a reservation to give back after an upstream
// failure — waits in the meter's backlog. It must land as soon as Redis answers again: waiting for
// the next renewal tick (metering.renewEveryMs, 10 s by default) left the counters short of the
// charge, so a request that does not fit the limit was admitted past it, and left a concurrency
// slot held with nothing in flight.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { redisCommand, startRedis, type RedisServer } from '../helpers/redis.js';

let redis: RedisServer;
let open: TestGateway;
let closed: TestGateway;

// A renewal tick far away, so nothing but the limiter's answer can drain the backlog in the test.
const metering = { reservationTtlMs: 120_000, renewEveryMs: 60_000 };
const plans = {
  free: { preset: 'free-tier' as const },
  tight: { rules: [{ id: 'daily', measure: 'credits' as const, limit: 1000, window: 'day' as const }, { id: 'one_at_a_time', measure: 'concurrent' as const, limit: 1 }] },
};

beforeAll(async () => {
  redis = await startRedis({ persistent: true });
  open = await startTestGateway({ config: { limiter: { url: redis.url, onUnavailable: 'open' }, metering, plans } });
  closed = await startTestGateway({ config: { limiter: { url: redis.url, onUnavailable: 'closed' }, metering, plans } });
}, 20_000);
afterAll(async () => {
  await open?.close();
  await closed?.close();
  await redis?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Until the gateway's own connection to Redis answers again. */
async function reconnected(t: TestGateway): Promise<void> {
  const end = Date.now() + 5000;
  for (;;) {
    try {
      await t.gw.counters.ping();
      return;
    } catch (err) {
      if (Date.now() > end) throw err;
      await sleep(20);
    }
  }
}

function chat(t: TestGateway, secret: string, maxTokens: number) {
  return fetch(`${t.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: maxTokens }),
  });
}

async function rule(t: TestGateway, secret: string, id: string): Promise<number> {
  const res = await fetch(`${t.url}/v1/usage`, { headers: { authorization: `Bearer ${secret}` } });
  return ((await res.json()) as { rules: Array<{ id: string; used: number }> }).rules.find((r) => r.id === id)!.used;
}

describe('the limiter answers again', () => {
  it('a charge owed from the outage lands before the next request is admitted: the limit holds', async () => {
    const { accountId, secret } = await open.newAccount({ plan: 'tight' });
    await redis.stop();
    // Served unmetered: 'hi' as the fake answers it, 12 credits, owed to the daily counter.
    expect((await chat(open, secret, 16)).status).toBe(200);
    expect(open.gw.meter.pendingCharges).toBe(1);
    await redis.restart();
    await reconnected(open);
    // Worst case 999 credits (8 prompt tokens, 830 output), all of it spent by the upstream: it fits
    // the 1,000 only if the 12 owed are not counted.
    open.openai.enqueue({
      kind: 'json',
      body: {
        id: 'chatcmpl-big', object: 'chat.completion', created: 1, model: 'gpt-4o-mini',
        choices: [{ index: 0, message: { role: 'assistant', content: 'long' }, finish_reason: 'length' }],
        usage: { prompt_tokens: 8, completion_tokens: 830, total_tokens: 838 },
      },
    });
    const big = await chat(open, secret, 830);
    expect(big.headers.get('x-tollgate-request-cost') ?? '999').toBe('999');
    expect(big.status).toBe(403);
    const rows = (await open.admin('GET', `/usage?account=${accountId}`)).body.data as Array<{ credits: number }>;
    const spent = rows.reduce((a, r) => a + r.credits, 0);
    expect(spent).toBeLessThanOrEqual(1000);
    expect(await rule(open, secret, 'daily')).toBe(spent);
  }, 20_000);

  it('a reservation to give back from the outage is given back at once: its concurrency slot is free', async () => {
    const { secret } = await closed.newAccount({ plan: 'tight' });
    // The upstream takes the request and never answers: released when the answer times out (2 s),
    // by which time Redis is down.
    closed.openai.enqueue({ kind: 'hang' });
    const timedOut = chat(closed, secret, 16);
    await sleep(300);
    expect(await rule(closed, secret, 'one_at_a_time')).toBe(1);
    await redis.stop();
    expect((await timedOut).status).toBe(504);
    expect(closed.gw.meter.pendingCharges).toBe(1);
    await redis.restart();
    await reconnected(closed);
    await sleep(100);
    expect(closed.gw.meter.pendingCharges).toBe(0);
    expect(await rule(closed, secret, 'one_at_a_time')).toBe(0);
    expect((await chat(closed, secret, 16)).status).toBe(200);
  }, 20_000);

  it('after a stall (no reconnect to notice), the next admission applies what is owed first', async () => {
    const { accountId, secret } = await open.newAccount({ plan: 'tight' });
    // Longer than the 2 s command timeout: admitted unmetered, its reservation run when the stall
    // ends — holding the one slot until the charge owed for the request gives it back.
    expect(await redisCommand(redis.port, 'CLIENT PAUSE 2500 ALL')).toMatch(/^\+OK/);
    expect((await chat(open, secret, 16)).status).toBe(200);
    expect(open.gw.meter.pendingCharges).toBe(1);
    await sleep(800); // the stall is over
    const next = await chat(open, secret, 16);
    expect(((await next.clone().json()) as { error?: { code: string } }).error?.code).toBeUndefined();
    expect(next.status).toBe(200);
    const rows = (await open.admin('GET', `/usage?account=${accountId}`)).body.data as Array<{ credits: number }>;
    expect(rows).toHaveLength(2);
    expect(await rule(open, secret, 'daily')).toBe(rows.reduce((a, r) => a + r.credits, 0));
    expect(await rule(open, secret, 'one_at_a_time')).toBe(0);
  }, 20_000);
});
