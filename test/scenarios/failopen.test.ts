// Scenario: the shared limiter (Redis) goes away under `limiter.onUnavailable: open`. Requests
// keep being served, unmetered and logged, and the instance stays ready (a load balancer that
// follows /readyz keeps sending it requests); when Redis is back, the charges owed are applied so
// the counters equal the ledger again. Under `closed` the same outage makes it unready.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis } from '../helpers/redis.js';

let redis: Awaited<ReturnType<typeof startRedis>>;
let t: TestGateway;
/** The same Redis under the default `closed` policy. */
let closed: TestGateway;

beforeAll(async () => {
  redis = await startRedis({ persistent: true });
  t = await startTestGateway({
    config: {
      limiter: { url: redis.url, onUnavailable: 'open' },
      metering: { reservationTtlMs: 5000, renewEveryMs: 200 },
    },
  });
  closed = await startTestGateway({ config: { limiter: { url: redis.url, onUnavailable: 'closed' } } });
});
afterAll(async () => {
  await t?.close();
  await closed?.close();
  await redis?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The limiter's gauges at /metrics. */
async function gauges(gw: TestGateway): Promise<{ up: number; backlog: number }> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const value = (name: string) => Number(/^(\S+) (\S+)$/.exec(text.split('\n').find((l) => l.startsWith(`${name} `)) ?? '')?.[2]);
  return { up: value('tollgate_limiter_up'), backlog: value('tollgate_limiter_backlog_charges') };
}

describe('fail-open', () => {
  it('serves through an outage and reconciles the counters with the ledger afterwards', async () => {
    const { accountId, secret } = await t.newAccount();
    const client = t.client(secret);
    const ask = () => client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    await ask();
    const used = async () =>
      ((await (await fetch(`${t.url}/v1/usage`, { headers: { authorization: `Bearer ${secret}` } })).json()) as any).rules.find(
        (r: { id: string }) => r.id === 'api_token',
      ).used as number;
    expect(await used()).toBe(12);

    await redis.stop();
    for (let i = 0; i < 3; i++) expect((await ask()).choices[0]?.message.content).toBeTruthy();
    // It serves: ready. (Every instance shares the one Redis: unready, a load balancer following
    // /readyz took them all out, and nothing was served at all.)
    const ready = await fetch(`${t.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
    // Under closed it refuses every metered request: unready.
    const refusing = await fetch(`${closed.url}/readyz`);
    expect(refusing.status).toBe(503);
    expect(((await refusing.json()) as any).message).toMatch(/limiter does not answer/);
    expect(t.gw.meter.pendingCharges).toBe(3);
    // And /metrics says so, under either policy: under open nothing is refused, so no error count shows the outage.
    expect(await gauges(t)).toEqual({ up: 0, backlog: 3 });
    expect((await gauges(closed)).up).toBe(0);

    await redis.restart();
    const deadline = Date.now() + 5000;
    while (t.gw.meter.pendingCharges > 0 && Date.now() < deadline) await sleep(50);
    expect(t.gw.meter.pendingCharges).toBe(0);
    const rows = (await t.admin('GET', `/usage?account=${accountId}`)).body.data as Array<{ credits: number }>;
    expect(rows).toHaveLength(4);
    expect(await used()).toBe(rows.reduce((a, r) => a + r.credits, 0));
    expect((await fetch(`${t.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${closed.url}/readyz`)).status).toBe(200);
    expect(await gauges(t)).toEqual({ up: 1, backlog: 0 });
    expect((await gauges(closed)).up).toBe(1);
  });
});
