// Scenario: the shared limiter (Redis) stalls past the command timeout while a reservation is in
// its queue (CLIENT PAUSE). The gateway answers 503 limiter_unavailable, but Redis runs the
// reservation once the stall ends: a reservation nobody owns. Nobody renews it, so the TTL would
// give it back — until then it holds the account's concurrency slot and its worst case, and the
// client's retry (Retry-After: 1) was refused with capacity free (SPEC §7).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { redisCommand, startRedis, type RedisServer } from '../helpers/redis.js';

let redis: RedisServer;
let t: TestGateway;
/** The same, with limiter.onUnavailable: open (a request whose reply was lost is admitted unmetered). */
let open: TestGateway;

const gateway = (onUnavailable: 'closed' | 'open') =>
  startTestGateway({
    config: {
      limiter: { url: redis.url, onUnavailable },
      // The default TTL (30 s): what the abandoned reservation would otherwise hold the slot for.
      plans: {
        free: { preset: 'free-tier' },
        solo: { rules: [{ id: 'one_at_a_time', measure: 'concurrent', limit: 1 }, { id: 'daily', measure: 'credits', limit: 5000, window: 'day' }] },
      },
    },
  });

beforeAll(async () => {
  redis = await startRedis();
  t = await gateway('closed');
  open = await gateway('open');
});
afterAll(async () => {
  await t?.close();
  await open?.close();
  await redis?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const used = async (g: TestGateway, secret: string) => {
  const usage = (await (await fetch(`${g.url}/v1/usage`, { headers: { authorization: `Bearer ${secret}` } })).json()) as {
    rules: Array<{ id: string; used: number }>;
    today: { credits: number };
  };
  return { concurrent: usage.rules.find((r) => r.id === 'one_at_a_time')!.used, daily: usage.rules.find((r) => r.id === 'daily')!.used, ledger: usage.today.credits };
};

/** One chat request of `secret` to `g`, as the client sends and retries it. */
const asker = (g: TestGateway, secret: string) => () =>
  fetch(`${g.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 512 }),
  });

/** The retry after the stall: served, not refused. */
const servedAgain = async (ask: () => Promise<Response>) => {
  const retry = await ask();
  expect(((await retry.clone().json()) as { error?: { code: string } }).error?.code).toBeUndefined();
  expect(retry.status).toBe(200);
};

describe('a reservation whose reply was lost', () => {
  it('is given back once the limiter answers again, not held until its TTL', async () => {
    const { secret } = await t.newAccount({ plan: 'solo' });
    const ask = asker(t, secret);
    expect((await ask()).status).toBe(200);
    // Longer than the 2 s command timeout: the reserve is answered 503, then runs when the pause ends.
    expect(await redisCommand(redis.port, 'CLIENT PAUSE 2500 ALL')).toMatch(/^\+OK/);
    const lost = await ask();
    expect(lost.status).toBe(503);
    expect(((await lost.json()) as { error: { code: string } }).error.code).toBe('limiter_unavailable');
    await sleep(1000); // the pause is over; the client retries after its Retry-After
    await servedAgain(ask);
    // Nothing is left held: the day's counter is what the two served requests cost.
    const u = await used(t, secret);
    expect(u.concurrent).toBe(0);
    expect(u.daily).toBe(u.ledger);
  });

  it('admitted unmetered (onUnavailable: open) and then failed upstream, is given back too', async () => {
    const { secret } = await open.newAccount({ plan: 'solo' });
    const ask = asker(open, secret);
    expect((await ask()).status).toBe(200);
    expect(await redisCommand(redis.port, 'CLIENT PAUSE 2500 ALL')).toMatch(/^\+OK/);
    // Admitted without a reservation after the 2 s timeout; the upstream then fails, so nothing is
    // charged — and no charge gives the lost reservation back either.
    open.openai.enqueue({ kind: 'json', status: 500, body: { error: { message: 'boom', type: 'server_error' } } });
    expect((await ask()).status).toBe(500);
    await sleep(1000);
    await servedAgain(ask);
    const u = await used(open, secret);
    expect(u.concurrent).toBe(0);
    expect(u.daily).toBe(u.ledger);
  });
});
