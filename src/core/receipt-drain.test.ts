// The receipts outbox end to end on a real Redis and a real (SQLite) ledger: what a process left
// behind between settling and the ledger's commit reaches the ledger through another process.
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../../test/helpers/redis.js';
import { ManualClock } from '../lib/clock.js';
import type { CounterOp } from '../storage/counters.js';
import type { Ledger, OwedCharge, OwedCharges, Storage, UsageRecord } from '../storage/ports.js';
import { openRedisCounterStore, type RedisCounterStore } from '../storage/redis/counters.js';
import { openSqliteStorage } from '../storage/sqlite/index.js';
import { ReceiptDrain, receiptOf } from './receipt-drain.js';

const GRACE = 1000;
let server: RedisServer;
let admin: Redis;
let clock: ManualClock;
let storage: Storage;
let stores: RedisCounterStore[];
let drains: ReceiptDrain[];
let logged: Array<{ obj: object; msg: string }>;

beforeAll(async () => {
  server = await startRedis();
  admin = new Redis(server.url);
});

afterAll(async () => {
  await admin?.quit();
  await server?.stop();
});

beforeEach(async () => {
  await admin.flushall();
  clock = new ManualClock();
  storage = openSqliteStorage('sqlite::memory:');
  stores = [];
  drains = [];
  logged = [];
});

afterEach(async () => {
  for (const d of drains) await d.close();
  for (const s of stores) await s.close();
  await storage.close();
});

const log = (obj: object, msg: string) => void logged.push({ obj, msg });

/** One gateway process's view: its own store connection and drain, sharing Redis and the ledger. */
function process(): { store: RedisCounterStore; drain: ReceiptDrain } {
  const store = openRedisCounterStore(server.url);
  const drain = new ReceiptDrain({ receipts: store.receipts, ledger: storage.ledger, clock, everyMs: 3_600_000, graceMs: GRACE, logger: { warn: log, error: log } });
  stores.push(store);
  drains.push(drain);
  return { store, drain };
}

const op = (account: string): CounterOp => ({ key: `tg:{${account}}:credits`, amount: 100, max: 1000, settle: 'actual', expiresAt: null });

function record(requestId: string, account: string, credits: number): UsageRecord {
  return {
    requestId, accountId: account, keyId: null, model: 'gpt-4o-mini', surface: 'api',
    promptTokens: 3, outputTokens: 4, credits, status: 'ok', httpStatus: 200, createdAt: new Date(clock.now()).toISOString(), provider: 'openai',
  };
}

/** Reserves and settles with a receipt, as the gateway does, and stops there (the process dies). */
async function settleAndDie(store: RedisCounterStore, r: UsageRecord): Promise<void> {
  const now = clock.now();
  expect(await store.reserve(r.requestId, [op(r.accountId)], now + 30_000, now)).toMatchObject({ ok: true });
  expect(await store.receipts.settle(r.requestId, r.credits, JSON.stringify(r))).toBe(true);
}

const ledgerRows = async () => (await storage.ledger.query({})).map((r) => [r.requestId, r.credits]).sort();

describe('receipt drain', () => {
  it('writes what a dead process settled but never recorded, once it is older than the grace', async () => {
    const dead = process();
    const alive = process();
    await settleAndDie(dead.store, record('r1', 'a', 40));
    await settleAndDie(dead.store, record('r2', 'b', 60));
    clock.advance(GRACE - 1);
    expect(await alive.drain.drain()).toBe(0);
    expect(await ledgerRows()).toEqual([]);
    clock.advance(1);
    expect(await alive.drain.drain()).toBe(2);
    expect(await ledgerRows()).toEqual([['r1', 40], ['r2', 60]]);
    // The counters were charged by the settlement itself; the ledger now explains them.
    expect(await alive.store.get(['tg:{a}:credits', 'tg:{b}:credits'], clock.now())).toEqual([40, 60]);
    expect(await alive.store.receipts.pending(10)).toEqual([]);
    expect(await alive.drain.drain()).toBe(0);
  });

  it('counts the grace from when the receipt was kept, not from the admission its record is dated by', async () => {
    // A 30 s stream: admitted (createdAt) at T, settled with its receipt at T + 30 s. Its own
    // process is writing it now; the drain must not write it too.
    const dead = process();
    const alive = process();
    const r = record('long', 'a', 40);
    clock.advance(30_000);
    const now = clock.now();
    expect(await dead.store.reserve(r.requestId, [op('a')], now + 30_000, now)).toMatchObject({ ok: true });
    expect(await dead.store.receipts.settle(r.requestId, r.credits, receiptOf(r, now))).toBe(true);
    expect(await alive.drain.drain()).toBe(0);
    clock.advance(GRACE);
    expect(await alive.drain.drain()).toBe(1);
    // Written as the record it holds, without the time it was kept.
    expect((await storage.ledger.query({}))[0]).toEqual(r);
  });

  it('writes a receipt kept before records named their provider as a record with none (null, not absent)', async () => {
    const dead = process();
    const { provider: _, ...before } = record('old', 'a', 40);
    const served = record('new', 'b', 60);
    await settleAndDie(dead.store, before as UsageRecord);
    await settleAndDie(dead.store, served);
    clock.advance(GRACE);
    // What the ledger is handed (SQLite would store an absent provider as NULL anyway; another store need not).
    const handed: UsageRecord[] = [];
    const appendMissing = (rs: readonly UsageRecord[]) => (handed.push(...rs), storage.ledger.appendMissing(rs));
    const ledger: Ledger = Object.create(storage.ledger, { appendMissing: { value: appendMissing } });
    const drain = new ReceiptDrain({ receipts: dead.store.receipts, ledger, clock, everyMs: 3_600_000, graceMs: GRACE, logger: { warn: log, error: log } });
    drains.push(drain);
    expect(await drain.drain()).toBe(2);
    expect(handed.map((r) => [r.requestId, r.provider]).sort()).toEqual([['new', 'openai'], ['old', null]]);
    expect((await storage.ledger.query({})).map((r) => [r.requestId, r.provider]).sort()).toEqual([['new', 'openai'], ['old', null]]);
  });

  it('forgets a receipt once its own process recorded it', async () => {
    const { store, drain } = process();
    const records = [record('r1', 'a', 10), record('r2', 'a', 20), record('r3', 'b', 30)];
    for (const r of records) await settleAndDie(store, r);
    await Promise.all(records.map((r) => storage.ledger.append(r)));
    expect(await store.receipts.pending(10)).toHaveLength(3);
    for (const r of records) drain.recorded(r.requestId);
    await drain.close();
    expect(await store.receipts.pending(10)).toEqual([]);
    expect(await ledgerRows()).toEqual([['r1', 10], ['r2', 20], ['r3', 30]]);
  });

  it('counts a record once when its process died after the ledger commit but before forgetting the receipt', async () => {
    const dead = process();
    const r = record('r1', 'a', 40);
    await settleAndDie(dead.store, r);
    await storage.ledger.append(r);
    clock.advance(GRACE);
    expect(await process().drain.drain()).toBe(0);
    expect(await ledgerRows()).toEqual([['r1', 40]]);
    expect(await dead.store.receipts.pending(10)).toEqual([]);
  });

  it('keeps receipts while the ledger refuses them and writes them on a later round', async () => {
    const { store, drain } = process();
    await settleAndDie(store, record('r1', 'a', 40));
    clock.advance(GRACE);
    const ledger = storage.ledger;
    const down = async () => Promise.reject(new Error('ledger down'));
    const refusing = { append: down, appendMissing: down, query: ledger.query.bind(ledger), page: ledger.page.bind(ledger), daily: ledger.daily.bind(ledger) };
    const blocked = new ReceiptDrain({ receipts: store.receipts, ledger: refusing, clock, everyMs: 3_600_000, graceMs: GRACE, logger: { warn: log, error: log } });
    drains.push(blocked);
    expect(await blocked.drain()).toBe(0);
    expect(logged.map((l) => l.msg)).toContain('writing left-behind receipts to the ledger failed; the next drain retries');
    expect(await store.receipts.pending(10)).toHaveLength(1);
    expect(await drain.drain()).toBe(1);
    expect(await ledgerRows()).toEqual([['r1', 40]]);
  });

  it('drops an unreadable receipt with an error that carries it, and still writes the others', async () => {
    const { store, drain } = process();
    await settleAndDie(store, record('r1', 'a', 40));
    await admin.hset('tg:{a}:receipts', 'junk', 'not json');
    clock.advance(GRACE);
    expect(await drain.drain()).toBe(1);
    expect(logged).toContainEqual({ obj: { id: 'junk', receipt: 'not json' }, msg: 'unreadable receipt dropped' });
    expect(await store.receipts.pending(10)).toEqual([]);
    expect(await ledgerRows()).toEqual([['r1', 40]]);
  });

  it('drains a backlog longer than one round', async () => {
    const dead = process();
    for (let i = 0; i < 1200; i++) await settleAndDie(dead.store, record(`r${i}`, `acct${i % 7}`, 1));
    clock.advance(GRACE);
    expect(await process().drain.drain()).toBe(1200);
    expect(await storage.ledger.query({ limit: 10_000 })).toHaveLength(1200);
  });

  /** A drain whose ledger owes `owed` (the ledger's side of OwedCharges, PostgreSQL's in production: a list taken oldest first). */
  function drainOwing(store: RedisCounterStore, owed: OwedCharge[]): ReceiptDrain {
    const owedCharges: OwedCharges = {
      append: async () => {},
      settle: async (limit, apply) => {
        const done = new Set(await apply(owed.slice(0, limit)));
        const before = owed.length;
        owed.splice(0, owed.length, ...owed.filter((o) => !done.has(o.requestId)));
        return before - owed.length;
      },
    };
    const drain = new ReceiptDrain({ receipts: store.receipts, ledger: { ...storage.ledger, owed: owedCharges }, clock, everyMs: 3_600_000, graceMs: GRACE, logger: { warn: log, error: log } });
    drains.push(drain);
    return drain;
  }

  it('applies every owed charge in one round, past one batch: the counters do not miss the rest for a period each', async () => {
    const store = openRedisCounterStore(server.url);
    stores.push(store);
    const owed: OwedCharge[] = Array.from({ length: 250 }, (_, i) => ({
      requestId: `r${i}`,
      accountId: 'acct1',
      charges: [{ key: 'tg:{acct1}:credits', amount: 2, expiresAt: null }],
      createdAt: new Date(clock.now()).toISOString(),
    }));
    const drain = drainOwing(store, owed);
    expect(await drain.applyOwed()).toBe(250);
    expect(owed).toEqual([]);
    expect(await store.get(['tg:{acct1}:credits'], clock.now())).toEqual([500]);
  });

  describe('a charge owed for a settlement that landed, its reply lost', () => {
    // The gateway's settlement ran in Redis but its reply was lost (a command timeout as the network
    // went): the meter handed the charge to the ledger, owed, with the record. Redis remembers the
    // settlement for SETTLED_MEMORY_MS (its done marker); out of reach for longer, the marker lapsed
    // — deleted here, as its PX does — before any drain could apply the owed charge.
    async function landedAndOwed(): Promise<{ store: RedisCounterStore; drain: ReceiptDrain; owed: OwedCharge[] }> {
      const store = openRedisCounterStore(server.url);
      stores.push(store);
      const r = record('r1', 'a', 40);
      const now = clock.now();
      expect(await store.reserve('r1', [op('a')], now + 30_000, now)).toMatchObject({ ok: true });
      expect(await store.receipts.settle('r1', 40, receiptOf(r, now))).toBe(true);
      const owed: OwedCharge[] = [{ requestId: 'r1', accountId: 'a', charges: [{ key: 'tg:{a}:credits', amount: 40, expiresAt: null }], createdAt: new Date(now).toISOString() }];
      await storage.ledger.append(r);
      expect(await admin.del('tg:{a}:done:r1')).toBe(1);
      clock.advance(GRACE + 1);
      return { store, drain: drainOwing(store, owed), owed };
    }

    it('counts once when a drain writes its receipt and then applies the charge', async () => {
      const { store, drain, owed } = await landedAndOwed();
      await drain.drain();
      expect(owed).toEqual([]);
      expect(await ledgerRows()).toEqual([['r1', 40]]);
      expect(await store.get(['tg:{a}:credits'], clock.now())).toEqual([40]);
    });

    it('counts once when the charge is applied before any drain wrote its receipt', async () => {
      const { store, drain, owed } = await landedAndOwed();
      expect(await drain.applyOwed()).toBe(1);
      await drain.drain();
      expect(owed).toEqual([]);
      expect(await store.get(['tg:{a}:credits'], clock.now())).toEqual([40]);
    });
  });
});
