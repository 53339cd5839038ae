// The engine against the reference (memory) counter store: the failure policy when the store is
// unreachable, and lapsed reservations. The HTTP-level behaviour is in test/e2e and test/scenarios.
import { describe, expect, it } from 'vitest';
import { resolvePlans } from '../config/plans.js';
import type { ModelConfig } from '../config/schema.js';
import { ManualClock } from '../lib/clock.js';
import { CounterStoreUnavailableError, type CounterStore, type Receipts } from '../storage/counters.js';
import type { OwedCharge } from '../storage/ports.js';
import { MemoryCounterStore } from '../storage/memory/counters.js';
import { renderMessage } from '../errors/http.js';
import { PlanMeter } from './plan-meter.js';
import type { Principal } from './metering.js';

const model: ModelConfig = { id: 'm', kind: 'chat', provider: 'p', pro: false, vision: false, maxOutputTokens: 1000, imageInputTokens: 1445, outputLimitField: 'max_tokens', serviceTiers: [], mediaUrls: 'any', promptTokenFactor: 1, promptOverheadTokens: 0, price: { input: 1, output: 1 } };
const principal: Principal = {
  account: { id: 'acct_1', email: null, plan: 'free', hasPaymentMethod: false, createdAt: '2026-11-25T00:00:00.000Z', suspendedAt: null, suspendedReason: null },
  key: null,
  surface: 'api',
};

/** A memory store that can be switched off like a Redis that went away. */
function flakyStore(): { store: CounterStore; down: (d: boolean) => void } {
  const inner = new MemoryCounterStore();
  let isDown = false;
  const guard =
    <A extends unknown[], R>(fn: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      if (isDown) throw new CounterStoreUnavailableError('store down');
      return fn(...a);
    };
  const store: CounterStore = {
    reserve: guard(inner.reserve.bind(inner)),
    settle: guard(inner.settle.bind(inner)),
    release: guard(inner.release.bind(inner)),
    renew: guard(inner.renew.bind(inner)),
    get: guard(inner.get.bind(inner)),
    add: guard(inner.add.bind(inner)),
    sweep: guard(inner.sweep.bind(inner)),
    ping: guard(inner.ping.bind(inner)),
    close: () => inner.close(),
  };
  return { store, down: (d) => (isDown = d) };
}

/** flakyStore with Receipts, as a store shared by processes has (charge once per id; receipts unused here). */
function sharedFlakyStore(): { store: CounterStore; down: (d: boolean) => void } {
  const { store, down } = flakyStore();
  const charged = new Set<string>();
  const receipts: Receipts = {
    settle: (id, actual) => store.settle(id, actual),
    charge: async (id, charges) => {
      await store.ping();
      if (charged.has(id)) return false;
      charged.add(id);
      for (const c of charges) if (c.amount !== 0) await store.add(c.key, c.amount, c.expiresAt);
      return true;
    },
    pending: async () => [],
    acknowledge: async () => {},
  };
  return { store: { ...store, receipts }, down };
}

const logs: string[] = [];
/** A meter on `store` for the free tier, or for a plan of `rules` alone. */
function meter(store: CounterStore, onUnavailable: 'closed' | 'open', clock = new ManualClock(), rules?: unknown[]) {
  return meterOn(store, rules ? { rules } : { preset: 'free-tier', rules: [] }, clock, { onUnavailable });
}

/** A meter on `store` whose default plan is `plan` (a plan's config: a preset and/or rules). */
function meterOn(store: CounterStore, plan: unknown, clock: ManualClock, opts: { onUnavailable?: 'closed' | 'open'; renewEveryMs?: number } = {}) {
  return new PlanMeter({
    plans: resolvePlans({ free: plan as never }).plans,
    defaultPlan: 'free',
    publicUrl: 'https://gw.example',
    store,
    clock,
    reservationTtlMs: 30_000,
    renewEveryMs: opts.renewEveryMs ?? 60_000,
    maxHoldMs: 120_000,
    onUnavailable: opts.onUnavailable ?? 'closed',
    logger: { warn: (_o, m) => logs.push(m), error: (_o, m) => logs.push(m) },
  });
}

async function used(m: PlanMeter): Promise<number> {
  const { rules } = await m.status(principal, [model]);
  return rules.find((r) => r.id === 'api_token')!.used;
}

describe('limiter.onUnavailable', () => {
  it('closed: refuses with 503 limiter_unavailable and admits again once the store is back', async () => {
    const { store, down } = flakyStore();
    const m = meter(store, 'closed');
    down(true);
    await expect(m.admit({ requestId: 'r1', principal, model, worstCaseCredits: 100 })).rejects.toMatchObject({ code: 'limiter_unavailable', status: 503 });
    down(false);
    const a = await m.admit({ requestId: 'r2', principal, model, worstCaseCredits: 100 });
    await a.settle(40);
    expect(await used(m)).toBe(40);
    await m.close();
  });

  it('open: admits unmetered while down and charges the counters when the store returns', async () => {
    const { store, down } = flakyStore();
    const m = meter(store, 'open');
    down(true);
    const a = await m.admit({ requestId: 'r1', principal, model, worstCaseCredits: 100 });
    await a.settle(70);
    expect(m.pendingCharges).toBe(1);
    expect(logs).toContain('limiter unavailable: admitting unmetered (limiter.onUnavailable: open)');
    await m.drainBacklog(); // still down: stays queued
    expect(m.pendingCharges).toBe(1);
    down(false);
    await m.drainBacklog();
    expect(m.pendingCharges).toBe(0);
    expect(await used(m)).toBe(70);
    await m.close();
  });

  it('open: says so once per outage, not once per request, and how many were admitted once the store answers', async () => {
    const { store, down } = flakyStore();
    const m = meter(store, 'open');
    logs.length = 0;
    down(true);
    for (const id of ['r1', 'r2', 'r3']) await (await m.admit({ requestId: id, principal, model, worstCaseCredits: 100 })).settle(10);
    down(false);
    await m.drainBacklog();
    const count = (msg: string) => logs.filter((l) => l === msg).length;
    // A flood of requests through an outage was two warnings each (thousands a second), beside the
    // one line that says the limiter is unreachable.
    expect(count('limiter unavailable: admitting unmetered (limiter.onUnavailable: open)')).toBe(1);
    expect(count('charging without a live reservation')).toBe(0);
    expect(await used(m)).toBe(30);
    await (await m.admit({ requestId: 'r4', principal, model, worstCaseCredits: 100 })).settle(10);
    expect(count('requests were admitted unmetered while the limiter was unavailable')).toBe(1);
    // The next outage is said again.
    down(true);
    await (await m.admit({ requestId: 'r5', principal, model, worstCaseCredits: 100 })).settle(10);
    expect(count('limiter unavailable: admitting unmetered (limiter.onUnavailable: open)')).toBe(2);
    down(false);
    await m.close();
  });

  it('close() makes a last attempt at queued charges, and logs how many it could not land', async () => {
    const { store, down } = flakyStore();
    const m = meter(store, 'open');
    down(true);
    await (await m.admit({ requestId: 'r1', principal, model, worstCaseCredits: 100 })).settle(70);
    down(false);
    await m.close();
    expect(m.pendingCharges).toBe(0);
    expect(await used(m)).toBe(70);

    const m2 = meter(store, 'open');
    down(true);
    await (await m2.admit({ requestId: 'r2', principal, model, worstCaseCredits: 100 })).settle(30);
    logs.length = 0;
    await m2.close();
    expect(m2.pendingCharges).toBe(1);
    expect(logs).toContain('shutting down with charges the limiter never took; the ledger has their records');
  });

  it('a charge the store cannot take is handed to the ledger with its record, not held in memory', async () => {
    const { store, down } = sharedFlakyStore();
    const clock = new ManualClock(Date.parse('2026-11-25T12:00:00.000Z'));
    const m = meter(store, 'closed', clock);
    const kept: OwedCharge[] = [];
    const keep = async (owed: OwedCharge) => (kept.push(owed), true);
    // The store answers: nothing is handed over.
    await (await m.admit({ requestId: 'r0', principal, model, worstCaseCredits: 500 })).settle(50, '{}', keep);
    expect(kept).toEqual([]);
    const a = await m.admit({ requestId: 'r1', principal, model, worstCaseCredits: 500 });
    down(true);
    await a.settle(120, '{}', keep);
    expect(m.pendingCharges).toBe(0);
    expect(kept).toEqual([
      {
        requestId: 'r1',
        accountId: 'acct_1',
        charges: [{ key: 'tg:{acct_1}:api_token:d2026-11-25', amount: 120, expiresAt: Date.parse('2026-11-26T01:00:00.000Z') }],
        createdAt: '2026-11-25T12:00:00.000Z',
      },
    ]);
    // Not this process's to apply any more: the store comes back and the backlog has nothing.
    down(false);
    await m.drainBacklog();
    expect(await used(m)).toBe(50 + 500);
    // Whoever drains the ledger applies it (core/receipt-drain.ts); the reservation lapsed meanwhile.
    clock.advance(31_000);
    await store.receipts!.charge(kept[0]!.requestId, kept[0]!.charges, '');
    expect(await used(m)).toBe(50 + 120);

    // A ledger that could not store it (false, or a throw): held in memory as before.
    const b = await m.admit({ requestId: 'r2', principal, model, worstCaseCredits: 500 });
    const c = await m.admit({ requestId: 'r3', principal, model, worstCaseCredits: 500 });
    down(true);
    await b.settle(10, '{}', async () => false);
    await c.settle(20, '{}', async () => Promise.reject(new Error('database down')));
    expect(m.pendingCharges).toBe(2);
    down(false);
    await m.drainBacklog();
    expect(await used(m)).toBe(50 + 120 + 10 + 20);
    await m.close();
  });

  /** A fail-open meter over a store that can be taken down, with a 1,000-credit day and a reader of its use. */
  function openDailyMeter() {
    const { store, down } = flakyStore();
    const m = meter(store, 'open', new ManualClock(Date.parse('2026-11-25T12:00:00.000Z')), [{ id: 'daily', measure: 'credits', limit: 1000, window: 'day' }]);
    const daily = async () => (await m.status(principal, [model])).rules.find((r) => r.id === 'daily')!.used;
    return { store, down, m, daily };
  }

  it('every charge owed from an outage lands before the next reservation is checked, not the first alone', async () => {
    const { store, down, m, daily } = openDailyMeter();
    down(true);
    // Served unmetered: 300 + 300 owed to the daily counter.
    await (await m.admit({ requestId: 'r1', principal, model, worstCaseCredits: 400 })).settle(300);
    await (await m.admit({ requestId: 'r2', principal, model, worstCaseCredits: 400 })).settle(300);
    expect(m.pendingCharges).toBe(2);
    down(false);
    // 600 spent: a worst case of 500 does not fit the 1,000. Reserved after the first owed charge
    // only, it was admitted against 300.
    await expect(m.admit({ requestId: 'r3', principal, model, worstCaseCredits: 500 })).rejects.toMatchObject({ code: 'resource_exhausted' });
    expect(m.pendingCharges).toBe(0);
    expect(await daily()).toBe(600);
    await m.close();
  });

  it('a queued charge that fails for good is dropped and the charges behind it still land', async () => {
    const { store, down, m, daily } = openDailyMeter();
    down(true);
    await (await m.admit({ requestId: 'r1', principal, model, worstCaseCredits: 400 })).settle(100);
    await (await m.admit({ requestId: 'r2', principal, model, worstCaseCredits: 400 })).settle(200);
    await (await m.admit({ requestId: 'r3', principal, model, worstCaseCredits: 400 })).settle(300);
    down(false);
    // The store refuses the first (a bug, not an outage): it alone is dropped.
    const { add } = store;
    let refused = false;
    store.add = async (...a) => {
      if (!refused) {
        refused = true;
        throw new Error('WRONGTYPE');
      }
      return add(...a);
    };
    logs.length = 0;
    await m.drainBacklog();
    expect(logs).toContain('applying a queued charge failed; dropped');
    expect(m.pendingCharges).toBe(0);
    expect(await daily()).toBe(500);
    await m.close();
  });

  it('a settlement that fails because the store went away mid-request is applied later', async () => {
    const { store, down } = flakyStore();
    const clock = new ManualClock();
    const m = meter(store, 'closed', clock);
    const a = await m.admit({ requestId: 'r1', principal, model, worstCaseCredits: 500 });
    down(true);
    await a.settle(120);
    expect(m.pendingCharges).toBe(1);
    // The store comes back after the reservation's TTL: it was given back by expiry, so the
    // queued settlement charges the actual cost without it.
    clock.advance(31_000);
    down(false);
    await m.drainBacklog();
    expect(await used(m)).toBe(120);
    await m.close();
  });
});

describe('lapsed reservations', () => {
  it('a settlement after the TTL still charges the actual cost exactly once', async () => {
    const { store } = flakyStore();
    const clock = new ManualClock();
    const m = meter(store, 'closed', clock);
    const a = await m.admit({ requestId: 'r1', principal, model, worstCaseCredits: 500 });
    clock.advance(31_000);
    expect(await used(m)).toBe(0); // expired and given back
    await a.settle(200);
    expect(await used(m)).toBe(200);
    await expect(a.settle(200)).rejects.toThrow(/settled twice/);
    await m.close();
  });

  it('a settlement after the TTL debits a prepaid balance (never credits it) and still counts the request', async () => {
    const store = new MemoryCounterStore();
    const clock = new ManualClock(Date.parse('2026-11-25T12:00:00.000Z'));
    const m = meterOn(store, { preset: 'pay-as-you-go', rules: [{ id: 'daily_requests', measure: 'requests', limit: 5, window: 'day' }] }, clock);
    const keys = ['tg:{acct_1}:balance', 'tg:{acct_1}:daily_requests:d2026-11-25'];
    await store.add(keys[0]!, 1000, null);
    const a = await m.admit({ requestId: 'r1', principal, model, worstCaseCredits: 500 });
    expect(await store.get(keys, clock.now())).toEqual([500, 1]);
    clock.advance(31_000);
    expect(await store.get(keys, clock.now())).toEqual([1000, 0]); // expired and given back
    await a.settle(200);
    expect(await store.get(keys, clock.now())).toEqual([800, 1]);
    await m.close();
  });

  it('a live request is renewed past the TTL, but not past maxHoldMs: a request path that never settles cannot pin a counter', async () => {
    const store = new MemoryCounterStore();
    const clock = new ManualClock(Date.parse('2026-11-25T12:00:00.000Z'));
    const m = meterOn(store, { rules: [{ id: 'daily', measure: 'credits', limit: 500, window: 'day' }] }, clock, { renewEveryMs: 2 });
    const renewed = () => new Promise((resolve) => setTimeout(resolve, 30));
    const fits = async (id: string) => {
      const admitted = await m.admit({ requestId: id, principal, model, worstCaseCredits: 500 }).catch(() => undefined);
      await admitted?.release();
      return admitted !== undefined;
    };
    await m.admit({ requestId: 'stuck', principal, model, worstCaseCredits: 500 });
    for (let s = 10; s <= 120; s += 10) {
      clock.advance(10_000);
      await renewed();
    }
    // Two minutes in, four TTLs: still held, because this process is alive and renews it.
    expect(await fits('r1')).toBe(false);
    for (let s = 130; s <= 160; s += 10) {
      clock.advance(10_000);
      await renewed();
    }
    // Past maxHoldMs it was no longer renewed, and lapsed within a TTL.
    expect(await fits('r2')).toBe(true);
    await m.close();
  });
});

describe('sweep', () => {
  it("forgets yesterday's counters once their window and grace are over, and survives a store that is down", async () => {
    const { store, down } = flakyStore();
    const clock = new ManualClock(Date.UTC(2026, 10, 25, 12));
    const m = meter(store, 'closed', clock);
    const a = await m.admit({ requestId: 'r1', principal, model, worstCaseCredits: 500 });
    await a.settle(200);
    const key = 'tg:{acct_1}:api_token:d2026-11-25';
    expect(await store.get([key], clock.now())).toEqual([200]);
    clock.set(Date.UTC(2026, 10, 26, 0, 30)); // inside the hour of grace: still there
    await m.sweep();
    expect(await store.get([key], clock.now())).toEqual([200]);
    down(true);
    clock.set(Date.UTC(2026, 10, 26, 1, 0));
    await m.sweep(); // logged, not thrown
    expect(logs).toContain('counter sweep failed');
    down(false);
    await m.sweep();
    expect(await store.get([key], clock.now())).toEqual([0]);
    await m.close();
  });

  it('starts no sweep while one still runs', async () => {
    // The shared store sweeps account by account (one round trip each): with a few hundred
    // thousand accounts over a network a sweep outlasts its minute, and the timer started another
    // beside it, each slowing the others and the store the requests wait on, without end.
    const { store } = flakyStore();
    let running = 0;
    let most = 0;
    let finish = () => {};
    store.sweep = async () => {
      most = Math.max(most, ++running);
      await new Promise<void>((resolve) => (finish = resolve));
      running--;
      return 0;
    };
    const m = meter(store, 'closed', new ManualClock());
    const first = m.sweep();
    const second = m.sweep();
    expect(running).toBe(1);
    finish();
    await Promise.all([first, second]);
    const third = m.sweep();
    expect(running).toBe(1);
    finish();
    await third;
    expect(most).toBe(1);
    await m.close();
  });

  it('asks a shared store to sweep once a minute across its instances, not once per instance', async () => {
    const { store } = flakyStore();
    const asked: unknown[] = [];
    store.sweep = async (_now, opts) => {
      asked.push(opts);
      return 0;
    };
    const m = meter(store, 'closed', new ManualClock());
    await m.sweep();
    expect(asked).toEqual([{ onceEveryMs: 55_000 }]);
    await m.close();
  });
});

describe('refusals', () => {
  function planMeter(rules: unknown[], clock: ManualClock) {
    return meterOn(new MemoryCounterStore(), { rules }, clock);
  }
  const refusal = (m: PlanMeter, requestId: string, worstCaseCredits = 10) =>
    m.admit({ requestId, principal, model, worstCaseCredits }).then(
      () => undefined,
      (err: { code: string; status: number; vars: { rule: string }; headers: Record<string, string> }) => ({ code: err.code, status: err.status, rule: err.vars.rule, headers: err.headers }),
    );

  it('where several rules are spent, the one whose window ends last answers, so Retry-After is when the request can pass', async () => {
    const clock = new ManualClock(Date.parse('2027-03-10T10:30:00Z'));
    // Listed shortest window first: the order of the plan must not decide which refusal is sent.
    const m = planMeter(
      [
        { id: 'rpm', measure: 'requests', limit: 1, window: 'minute' },
        { id: 'hourly', measure: 'credits', limit: 30, window: 'hour' },
        { id: 'daily', measure: 'credits', limit: 40, window: 'day' },
      ],
      clock,
    );
    await (await m.admit({ requestId: 'r1', principal, model, worstCaseCredits: 25 })).settle(25);
    // All three are spent: only the next UTC day lets it pass.
    expect(await refusal(m, 'r2', 20)).toMatchObject({ code: 'resource_exhausted', status: 403, rule: 'daily', headers: { 'x-tollgate-reset-at': '2027-03-11T00:00:00.000Z' } });
    clock.set(Date.parse('2027-03-11T00:00:30Z'));
    await (await m.admit({ requestId: 'r3', principal, model, worstCaseCredits: 5 })).settle(5);
    // The minute's one request and the hour's credits are spent, the day's are not: the hour answers.
    expect(await refusal(m, 'r4', 26)).toMatchObject({ code: 'rate_limit_exceeded', status: 429, rule: 'hourly', headers: { 'retry-after': '3570' } });
    await m.close();
  });

  it('a spent lifetime request count is a 403 with no Retry-After: it never frees up', async () => {
    const clock = new ManualClock(Date.parse('2027-03-10T10:30:00Z'));
    const m = planMeter([{ id: 'trial', measure: 'requests', limit: 1, window: 'lifetime' }], clock);
    await (await m.admit({ requestId: 'r1', principal, model, worstCaseCredits: 10 })).settle(10);
    const refused = await refusal(m, 'r2');
    expect(refused).toMatchObject({ code: 'resource_exhausted', status: 403, rule: 'trial', headers: { 'x-ratelimit-remaining-requests': '0', 'x-tollgate-reset-at': 'never' } });
    expect(refused?.headers['retry-after']).toBeUndefined();
    await m.close();
  });

  it("a spent day count names whose requests it counted: the model's only for a per-model rule", async () => {
    const clock = new ManualClock(Date.parse('2027-03-10T10:30:00Z'));
    const m = planMeter(
      [
        { id: 'per_model', measure: 'requests', limit: 1, window: 'day', scope: 'account+model', models: { ids: ['m'] } },
        { id: 'per_key', measure: 'requests', limit: 2, window: 'day', scope: 'key' },
        { id: 'daily', measure: 'requests', limit: 3, window: 'day' },
      ],
      clock,
    );
    const other: ModelConfig = { ...model, id: 'other' } as ModelConfig;
    const keyed: Principal = { ...principal, key: { id: 'key_1' } as Principal['key'] };
    const message = (err: unknown) => {
      const e = err as { code: 'requests_per_day_exceeded'; vars: Record<string, string | number> };
      return renderMessage(e.code, e.vars, { publicUrl: 'http://gateway.test', requestId: 'r' });
    };
    await (await m.admit({ requestId: 'r1', principal: keyed, model, worstCaseCredits: 1 })).settle(1);
    expect(message(await m.admit({ requestId: 'r2', principal: keyed, model, worstCaseCredits: 1 }).catch((e: unknown) => e))).toMatch(/^You have used all 1 requests per day for m \[plan\.rule:per_model\]/);
    await (await m.admit({ requestId: 'r3', principal: keyed, model: other, worstCaseCredits: 1 })).settle(1);
    expect(message(await m.admit({ requestId: 'r4', principal: keyed, model: other, worstCaseCredits: 1 }).catch((e: unknown) => e))).toMatch(/^You have used all 2 requests per day for this API key \[plan\.rule:per_key\]/);
    await (await m.admit({ requestId: 'r5', principal, model: other, worstCaseCredits: 1 })).settle(1);
    // Three requests made, one with `other`: the count spent is the account's, not other's.
    expect(message(await m.admit({ requestId: 'r6', principal, model: other, worstCaseCredits: 1 }).catch((e: unknown) => e))).toMatch(/^You have used all 3 requests per day for this account \[plan\.rule:daily\]/);
    await m.close();
  });

  it('a spent day count points at Billing only where a payment method lifts the plan (the default plan, a paid one configured)', async () => {
    const clock = new ManualClock(Date.parse('2027-03-10T10:30:00Z'));
    const daily = { rules: [{ id: 'daily', measure: 'requests', limit: 1, window: 'day' }] };
    const m = new PlanMeter({
      plans: resolvePlans({ free: daily as never, team: daily as never, paid: { rules: [] } as never }).plans,
      defaultPlan: 'free',
      publicUrl: 'https://gw.example/',
      store: new MemoryCounterStore(),
      clock,
      reservationTtlMs: 30_000,
      renewEveryMs: 60_000,
      maxHoldMs: 120_000,
      onUnavailable: 'closed',
      logger: { warn: () => {}, error: () => {} },
    });
    const spent = async (plan: string) => {
      const p: Principal = { ...principal, account: { ...principal.account, id: `acct_${plan}`, plan } };
      await (await m.admit({ requestId: `${plan}1`, principal: p, model, worstCaseCredits: 1 })).settle(1);
      const err = (await m.admit({ requestId: `${plan}2`, principal: p, model, worstCaseCredits: 1 }).catch((e: unknown) => e)) as { code: 'requests_per_day_exceeded'; vars: Record<string, string | number> };
      return renderMessage(err.code, err.vars, { publicUrl: 'https://gw.example', requestId: 'r' });
    };
    expect(await spent('free')).toBe('You have used all 1 requests per day for this account [plan.rule:daily]. The limit resets at 2027-03-11T00:00:00.000Z; update your payment method to lift it: https://gw.example/app/billing');
    // An operator's team plan: a card on file changes nothing, so the refusal does not send them to pay.
    expect(await spent('team')).toBe('You have used all 1 requests per day for this account [plan.rule:daily]. The limit resets at 2027-03-11T00:00:00.000Z. Only the operator of this service can raise it.');
    await m.close();
  });

  it('a request that alone is more than a limit is refused for good, with no Retry-After to wait out', async () => {
    const clock = new ManualClock(Date.parse('2027-03-10T10:30:30Z'));
    const m = planMeter(
      [
        { id: 'tpm', measure: 'credits', limit: 500, window: 'minute' },
        { id: 'no_images', measure: 'requests', limit: 0, window: 'hour', models: { kinds: ['image'] } },
        { id: 'no_embeddings', measure: 'concurrent', limit: 0, models: { kinds: ['embedding'] } },
      ],
      clock,
    );
    // 617 credits of worst case against 500 a minute: no minute ever has room for it, so the
    // 429 "try again in 30 s" it got was a promise the next minute broke, for ever.
    const tooBig = await refusal(m, 'r1', 617);
    expect(tooBig).toMatchObject({ code: 'resource_exhausted', status: 403, rule: 'tpm', headers: { 'x-ratelimit-limit-tokens': '500', 'x-tollgate-reset-at': 'never' } });
    expect(tooBig?.headers['retry-after']).toBeUndefined();
    clock.advance(60_000);
    expect(await refusal(m, 'r2', 617)).toMatchObject({ code: 'resource_exhausted', rule: 'tpm' });
    // One that fits is admitted as ever.
    expect(await refusal(m, 'r3', 500)).toBeUndefined();

    const image: ModelConfig = { id: 'img', kind: 'image', provider: 'p', pro: false, sizes: [], defaultSize: '1024x1024', imageToImage: false, price: { perImage: 0.001 } };
    const zero = await m.admit({ requestId: 'r4', principal, model: image, worstCaseCredits: 1 }).catch((err: { code: string; headers: Record<string, string> }) => err);
    expect(zero).toMatchObject({ code: 'resource_exhausted', headers: { 'x-ratelimit-limit-requests': '0', 'x-tollgate-reset-at': 'never' } });
    expect((zero as { headers: Record<string, string> }).headers['retry-after']).toBeUndefined();

    const embedding: ModelConfig = { id: 'emb', kind: 'embedding', provider: 'p', pro: false, promptTokenFactor: 1, promptOverheadTokens: 0, price: { input: 1 } };
    const none = await m.admit({ requestId: 'r5', principal, model: embedding, worstCaseCredits: 1 }).catch((err: { code: string; headers: Record<string, string> }) => err);
    // Exhaustion for good says so like every other (SPEC §5: 403 exhaustion carries its reset time).
    expect(none).toMatchObject({ code: 'resource_exhausted', status: 403, headers: { 'x-tollgate-reset-at': 'never' } });
    expect((none as { headers: Record<string, string> }).headers['retry-after']).toBeUndefined();
    await m.close();
  });

  it('a request costing exactly the image_cost ceiling is processed; one credit more is not (SPEC §3: "above 512 credits")', async () => {
    const clock = new ManualClock(Date.parse('2027-03-10T10:30:00Z'));
    const m = planMeter([{ id: 'image_cost', shape: 'max_request_cost', limit: 512, onExceed: 'reject' }], clock);
    expect(await refusal(m, 'r1', 512)).toBeUndefined();
    expect(await refusal(m, 'r2', 513)).toMatchObject({ code: 'request_cost_exceeded', status: 403, rule: 'image_cost' });
    await m.close();
  });

  it('Retry-After rounds a part second up: waiting it out is never refused again for being early', async () => {
    // Half a second into a minute: 59.5 s are left, and a client waiting 59 s would be refused again.
    const clock = new ManualClock(Date.parse('2027-03-10T10:30:00.500Z'));
    const m = planMeter([{ id: 'rpm', measure: 'requests', limit: 1, window: 'minute' }], clock);
    await (await m.admit({ requestId: 'r1', principal, model, worstCaseCredits: 1 })).settle(1);
    expect(await refusal(m, 'r2', 1)).toMatchObject({ code: 'rate_limit_exceeded', status: 429, headers: { 'retry-after': '60', 'x-ratelimit-reset-requests': '1m0s' } });
    await m.close();
  });

  it('a request refused for good reports what the window has left, not its whole limit', async () => {
    const clock = new ManualClock(Date.parse('2027-03-10T10:30:30Z'));
    const m = planMeter([{ id: 'daily', measure: 'credits', limit: 500, window: 'day' }], clock);
    await (await m.admit({ requestId: 'r1', principal, model, worstCaseCredits: 400 })).settle(120);
    // 120 of 500 spent: 380 left, whatever the refused request asked for (it said 500 left).
    expect(await refusal(m, 'r2', 617)).toMatchObject({
      code: 'resource_exhausted',
      headers: { 'x-ratelimit-limit-tokens': '500', 'x-ratelimit-remaining-tokens': '380', 'x-tollgate-reset-at': 'never' },
    });
    await m.close();
    // A store that does not answer: still refused for good, without a figure for what is left.
    const { store, down } = flakyStore();
    const off = meter(store, 'open', clock, [{ id: 'daily', measure: 'credits', limit: 500, window: 'day' }]);
    down(true);
    const refused = await refusal(off, 'r3', 617);
    expect(refused).toMatchObject({ code: 'resource_exhausted', headers: { 'x-ratelimit-limit-tokens': '500', 'x-tollgate-reset-at': 'never' } });
    expect(refused?.headers['x-ratelimit-remaining-tokens']).toBeUndefined();
    down(false);
    await off.close();
  });
});

describe('limit headers', () => {
  function planMeter(rules: unknown[]) {
    return meterOn(new MemoryCounterStore(), { rules }, new ManualClock(Date.parse('2027-03-10T10:30:00Z')));
  }

  it('name the binding credit budget: the one with the least left, whatever the order of the plan (SPEC §6)', async () => {
    const m = planMeter([
      { id: 'daily', measure: 'credits', limit: 100, window: 'day' },
      { id: 'hourly', measure: 'credits', limit: 30, window: 'hour' },
    ]);
    const a = await m.admit({ requestId: 'r1', principal, model, worstCaseCredits: 10 });
    expect(a.headers()).toMatchObject({ 'x-ratelimit-limit-tokens': '30', 'x-ratelimit-remaining-tokens': '20' });
    await a.settle(4);
    expect(a.headers()).toMatchObject({ 'x-ratelimit-limit-tokens': '30', 'x-ratelimit-remaining-tokens': '26' });
    await m.close();
  });

  it('count the time to reset from when they are sent, not from the admission', async () => {
    const clock = new ManualClock(Date.parse('2027-03-10T10:30:40Z'));
    const m = meterOn(new MemoryCounterStore(), { rules: [{ id: 'rpm', measure: 'requests', limit: 1, window: 'minute' }, { id: 'daily', measure: 'credits', limit: 100, window: 'day' }] }, clock);
    const a = await m.admit({ requestId: 'r1', principal, model, worstCaseCredits: 10 });
    expect(a.headers()).toMatchObject({ 'x-ratelimit-reset-requests': '20s', 'x-ratelimit-reset-tokens': '13h29m20s' });
    // A 15 s call: the answer's minute resets 5 s after it is sent, not 20.
    clock.advance(15_000);
    await a.settle(4);
    expect(a.headers()).toMatchObject({ 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '5s', 'x-ratelimit-reset-tokens': '13h29m5s' });
    // Answered after its minute ended: that minute's count resets now, not 20 s from now.
    clock.advance(30_000);
    expect(a.headers()).toMatchObject({ 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '0ms' });
    await m.close();
  });

  it('a released request gives its request back in the headers too, as it does on the counter', async () => {
    const m = planMeter([{ id: 'rpm', measure: 'requests', limit: 3, window: 'minute' }]);
    const a = await m.admit({ requestId: 'r1', principal, model, worstCaseCredits: 10 });
    expect(a.headers()).toMatchObject({ 'x-ratelimit-limit-requests': '3', 'x-ratelimit-remaining-requests': '2' });
    await a.release();
    expect(a.headers()).toMatchObject({ 'x-ratelimit-remaining-requests': '3' });
    await m.close();
  });

  it('a prepaid balance an actual cost overran reads 0 remaining, as the refusal that follows says it', async () => {
    const store = new MemoryCounterStore();
    const m = meterOn(store, { preset: 'pay-as-you-go', rules: [] }, new ManualClock(Date.parse('2027-03-10T10:30:00Z')));
    await store.add('tg:{acct_1}:balance', 100, null);
    const a = await m.admit({ requestId: 'r1', principal, model, worstCaseCredits: 100 });
    // The upstream counted more prompt than the estimate: charged, and the balance is below 0.
    await a.settle(150);
    expect(a.headers()).toEqual({ 'x-ratelimit-remaining-tokens': '0', 'x-ratelimit-reset-tokens': 'never' });
    const refused = await m.admit({ requestId: 'r2', principal, model, worstCaseCredits: 1 }).catch((err: { code: string; headers: Record<string, string> }) => err);
    expect(refused).toMatchObject({ code: 'insufficient_balance', headers: { 'x-ratelimit-remaining-tokens': '0' } });
    await m.close();
  });
});
