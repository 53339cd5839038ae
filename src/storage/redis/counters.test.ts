import { createRequire } from 'node:module';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisCommand, startRedis, type RedisServer } from '../../../test/helpers/redis.js';
import { counterStoreContract } from '../contract/counters.contract.js';
import type { CounterOp } from '../counters.js';
import { CounterStoreUnavailableError } from '../counters.js';
import { RedisCounterStore, SETTLED_MEMORY_MS, openRedisCounterStore, redisVersionProblem, scriptHashes } from './counters.js';
import { resolvePlans } from '../../config/plans.js';
import { modelSchema } from '../../config/schema.js';
import { PlanMeter } from '../../core/plan-meter.js';
import { ManualClock } from '../../lib/clock.js';
import { scripts } from './scripts.js';

let server: RedisServer;
let admin: Redis;

beforeAll(async () => {
  server = await startRedis();
  admin = new Redis(server.url);
});

afterAll(async () => {
  await admin?.quit();
  await server?.stop();
});

/** A store on a flushed database: the contract gives each test a fresh, empty store. */
async function fresh(): Promise<RedisCounterStore> {
  await admin.flushall();
  return openRedisCounterStore(server.url);
}

counterStoreContract('redis', fresh);

const T0 = Date.UTC(2026, 10, 25, 12);
const TTL = 60_000;
const END_OF_DAY = Date.UTC(2026, 10, 26);
const DAY = 86_400_000;
const acct = (id: string) => `tg:{${id}}`;
const credits = (account: string, amount: number, max: number): CounterOp => ({
  key: `${acct(account)}:credits:2026-11-25`,
  amount,
  max,
  settle: 'actual',
  expiresAt: END_OF_DAY,
});

/** Redis Cluster's key slot (CRC16/XMODEM of the hash tag, mod 16384), written out to check the library. */
function crc16Slot(key: string): number {
  const open = key.indexOf('{');
  const close = open === -1 ? -1 : key.indexOf('}', open + 1);
  const hashed = close > open + 1 ? key.slice(open + 1, close) : key;
  let crc = 0;
  for (const byte of Buffer.from(hashed)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

/** Counts every command the store's connection sends (one each: ioredis writes one command per call). */
function countCommands(store: RedisCounterStore): { names: string[]; reset(): void } {
  const names: string[] = [];
  const redis = store.redis as unknown as { sendCommand(cmd: { name: string }, ...rest: unknown[]): unknown };
  const original = redis.sendCommand.bind(redis);
  redis.sendCommand = (cmd, ...rest) => {
    names.push(cmd.name);
    return original(cmd, ...rest);
  };
  return { names, reset: () => void names.splice(0) };
}

describe('redis counter store specifics', () => {
  it('knows a Redis too old for its scripts (PEXPIRETIME: 7.0)', async () => {
    expect(redisVersionProblem('# Server\r\nredis_version:6.2.14\r\nredis_mode:standalone\r\n')).toMatch(/Redis 6\.2 is too old/);
    expect(redisVersionProblem('redis_version:7.0.0\r\n')).toBeNull();
    expect(redisVersionProblem('redis_version:8.2.1\r\n')).toBeNull();
    expect(redisVersionProblem('no version here')).toBeNull();
    // The server the tests start is new enough.
    const store = await fresh();
    expect(await store.versionProblem()).toBeNull();
    await store.close();
  });

  it('pins every script by its SHA1, as Redis computes it', async () => {
    expect(scriptHashes).toEqual({
      tgReserve: '8bd44097108e4624663237092b7043b4099fd4e7',
      tgSettle: '5bdd0626a9120a891c45cfd05a3c184149e22624',
      tgRelease: 'fa7a350afac7c6c6b0cebeeef8fcce9fb226cfd5',
      tgRenew: '5d9873c5ad845ccac871c4f991ed8a60d61e1a13',
      tgGet: '3d2e331026238404433853f967c3fbd30fd9c63b',
      tgAdd: 'e652069d9bfc4bae28d82beb8b6427b1eaa8e396',
      tgCharge: '5100f7f8063d385dbf85254ae0e531a3f52344ba',
      tgSweep: '7a89b0eb4e90f48cdf6b575286f650292731bb7e',
    });
    for (const [name, lua] of Object.entries(scripts)) {
      expect(await admin.script('LOAD', lua), name).toBe(scriptHashes[name as keyof typeof scripts]);
    }
  });

  it('falls back to EVAL when Redis has forgotten its scripts (SCRIPT FLUSH, restart, failover)', async () => {
    const store = await fresh();
    expect(await store.add(`${acct('a')}:balance`, 5, null)).toBe(5);
    await store.reserve('r1', [credits('a', 10, 100)], T0 + TTL, T0);
    await admin.script('FLUSH');
    expect(await admin.script('EXISTS', scriptHashes.tgAdd, scriptHashes.tgSettle)).toEqual([0, 0]);
    expect(await store.add(`${acct('a')}:balance`, 5, null)).toBe(10);
    expect(await store.settle('r1', 3)).toBe(true);
    expect(await store.get([`${acct('a')}:balance`, credits('a', 0, 0).key], T0)).toEqual([10, 3]);
    expect(await admin.script('EXISTS', scriptHashes.tgAdd, scriptHashes.tgSettle)).toEqual([1, 1]);
    await store.close();
  });

  it('never over-admits across two connections (two gateway processes) interleaving 1,000 reserves', async () => {
    const one = await fresh();
    const two = openRedisCounterStore(server.url);
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => (i % 2 === 0 ? one : two).reserve(`r${i}`, [credits('a', 37, 10_000)], T0 + TTL, T0)),
    );
    const admitted = results.filter((r) => r.ok).length;
    expect(admitted).toBe(Math.floor(10_000 / 37));
    expect(await one.get([credits('a', 0, 0).key], T0)).toEqual([37 * admitted]);
    // Each settles its own reservations; both see the result.
    await Promise.all(results.map((r, i) => (r.ok ? (i % 2 === 0 ? one : two).settle(`r${i}`, 1) : undefined)));
    expect(await two.get([credits('a', 0, 0).key], T0)).toEqual([admitted]);
    await one.close();
    await two.close();
  });

  it('takes exactly one round trip per reserve, settle, release and one-account get', async () => {
    const store = await fresh();
    await store.ready(); // the connection handshake (CLIENT SETNAME, INFO) is not the operation's
    const sent = countCommands(store);
    const ops: CounterOp[] = [
      credits('a', 500, 10_000),
      { key: `${acct('a')}:requests:2026-11-25`, amount: 1, max: 100, settle: 'keep', expiresAt: END_OF_DAY },
      { key: `${acct('a')}:lease`, amount: 1, max: 5, settle: 'return', expiresAt: null },
    ];
    for (let i = 0; i < 3; i++) {
      sent.reset();
      expect(await store.reserve(`r${i}`, ops, T0 + TTL, T0)).toMatchObject({ ok: true });
      expect(sent.names).toHaveLength(1);
      sent.reset();
      expect(await store.settle(`r${i}`, 100)).toBe(true);
      expect(sent.names).toHaveLength(1);
    }
    await store.reserve('x', ops, T0 + TTL, T0);
    sent.reset();
    expect(await store.release('x')).toBe(true);
    expect(await store.get(ops.map((o) => o.key), T0)).toEqual([300, 3, 0]);
    expect(sent.names).toHaveLength(2);
    expect(new Set(sent.names)).toEqual(new Set(['evalsha']));
    await store.close();
  });

  it("keeps all of an account's keys in the account's one Cluster slot", async () => {
    const store = await fresh();
    const require = createRequire(import.meta.url);
    const clusterKeySlot = require('cluster-key-slot') as (key: string) => number;
    await store.add(`${acct('acc_7')}:balance`, 1000, null);
    const ops: CounterOp[] = [
      credits('acc_7', 500, 10_000),
      { key: `${acct('acc_7')}:rpm:k:key_1:2026-11-25T12:00`, amount: 1, max: 100, settle: 'keep', expiresAt: END_OF_DAY },
      { key: `${acct('acc_7')}:balance`, amount: -500, min: 0, settle: 'actual', expiresAt: null },
    ];
    await store.reserve('req_1', ops, T0 + TTL, T0);
    const keys = (await admin.keys('*')).sort();
    expect(keys).toEqual(
      [
        'tg:{acc_7}:balance',
        'tg:{acc_7}:cexp',
        'tg:{acc_7}:credits:2026-11-25',
        'tg:{acc_7}:res:req_1',
        'tg:{acc_7}:resexp',
        'tg:{acc_7}:rpm:k:key_1:2026-11-25T12:00',
      ].sort(),
    );
    const slot = clusterKeySlot('acc_7');
    for (const key of keys) {
      expect(clusterKeySlot(key), key).toBe(slot);
      expect(crc16Slot(key), key).toBe(slot);
    }
    // Mixing accounts in one reservation is a bug, not something a Cluster could run.
    await expect(store.reserve('req_2', [credits('acc_7', 1, 10), credits('acc_8', 1, 10)], T0 + TTL, T0)).rejects.toThrow(
      RangeError,
    );
    await store.close();
  });

  it('gives real TTLs to expiring counters only, a day past their expiry', async () => {
    const store = await fresh();
    const day = credits('a', 0, 0).key;
    await store.add(day, 1, END_OF_DAY);
    await store.add(`${acct('a')}:balance`, 1, null);
    await store.reserve('r1', [{ ...credits('a', 1, 10), key: `${acct('a')}:lifetime`, expiresAt: null }], T0 + TTL, T0);
    const clamp = (e: number) => Math.max(e, Date.now()) + DAY;
    expect(await admin.pexpiretime(day)).toBeGreaterThanOrEqual(clamp(END_OF_DAY) - 5_000);
    expect(await admin.pexpiretime(day)).toBeLessThanOrEqual(clamp(END_OF_DAY));
    for (const key of [`${acct('a')}:balance`, `${acct('a')}:lifetime`, `${acct('a')}:res:r1`, `${acct('a')}:resexp`]) {
      expect(await admin.pexpiretime(key), key).toBe(-1);
    }
    // An expiry in the past (by Redis's clock) still leaves the key a day.
    await store.add(`${acct('a')}:old`, 1, 1_000);
    expect(await admin.pexpiretime(`${acct('a')}:old`)).toBeGreaterThan(Date.now() + DAY - 5_000);
    // Becoming a never-expiring counter drops the TTL.
    await store.add(day, 1, null);
    expect(await admin.pexpiretime(day)).toBe(-1);
    expect(await store.get([day], T0)).toEqual([2]);
    await store.close();
  });

  it('sweep deletes a counter past its expiry, and giving back to it later does not bring it back (a key with no TTL)', async () => {
    const store = await fresh();
    const op = { ...credits('a', 5, 100), expiresAt: T0 + 1_000 };
    await store.reserve('r1', [op], T0 + TTL, T0);
    await store.sweep(T0 + 2_000);
    expect(await admin.exists(op.key)).toBe(0);
    expect(await store.release('r1')).toBe(true);
    expect(await admin.exists(op.key)).toBe(0);
    await store.close();
  });

  it("gives back a dead process's reservation on the account's next reserve, and sweep finds every account", async () => {
    const dead = await fresh();
    await dead.reserve('r1', [credits('a', 600, 1000)], T0 + TTL, T0);
    await dead.reserve('r2', [credits('b', 600, 1000)], T0 + TTL, T0);
    await dead.reserve('r3', [credits('c', 600, 1000)], T0 + TTL, T0);
    await dead.close();
    const alive = openRedisCounterStore(server.url);
    expect(await alive.reserve('r4', [credits('a', 600, 1000)], T0 + 2 * TTL, T0 + TTL)).toEqual({ ok: true, values: [600] });
    expect(await alive.sweep(T0 + TTL)).toBe(2);
    expect(await alive.get([credits('b', 0, 0).key, credits('c', 0, 0).key], T0 + TTL)).toEqual([0, 0]);
    expect(await alive.settle('r4', 5)).toBe(true);
    await alive.close();
  });

  it('sweeps 500 accounts, each found once though it has both index keys, each reservation given back', async () => {
    const dead = await fresh();
    for (let i = 0; i < 500; i++) {
      await dead.reserve(`r${i}`, [credits(`s${i}`, 10, 1000)], T0 + TTL, T0);
      // A counter too, so the account has both index keys: it is still swept once.
      await dead.add(`${acct(`s${i}`)}:old`, 1, T0 + 1_000);
    }
    await dead.close();
    const alive = openRedisCounterStore(server.url);
    expect(await alive.sweep(T0 + TTL)).toBe(500);
    expect(await alive.get([credits('s0', 0, 0).key, credits('s499', 0, 0).key], T0 + TTL)).toEqual([0, 0]);
    expect(await admin.exists(`${acct('s250')}:old`)).toBe(0);
    expect(await alive.sweep(T0 + TTL)).toBe(0);
    await alive.close();
  });

  it('a sweep whose script fails on one account rejects (the meter logs it), and the next sweep does the rest', async () => {
    const store = await fresh();
    for (let i = 0; i < 100; i++) await store.add(`${acct(`f${i}`)}:old`, 1, T0 + 1_000);
    // One account's counter index of the wrong type: its script errors.
    await admin.set(`tg:{broken}:cexp`, 'not a sorted set');
    await expect(store.sweep(T0 + 2_000)).rejects.toThrow();
    await admin.del(`tg:{broken}:cexp`);
    await store.sweep(T0 + 2_000);
    expect(await admin.exists(`${acct('f99')}:old`)).toBe(0);
    await store.close();
  });

  it('with onceEveryMs, one of three instances sweeps per turn; the turn passes on when it lapses', async () => {
    const first = await fresh();
    const [second, third] = [openRedisCounterStore(server.url), openRedisCounterStore(server.url)];
    const lapsed = async (n: number) => {
      for (let i = 0; i < n; i++) await first.reserve(`t${i}-${Date.now()}`, [credits(`t${i}`, 10, 1000)], T0 + 1, T0);
    };
    await lapsed(3);
    const swept = await Promise.all([first, second, third].map((s) => s.sweep(T0 + TTL, { onceEveryMs: 300 })));
    expect(swept.sort()).toEqual([0, 0, 3]);
    // Within the turn nobody sweeps, however many ask; a sweep without the option still runs.
    await lapsed(2);
    expect(await Promise.all([first, second, third].map((s) => s.sweep(T0 + TTL, { onceEveryMs: 300 })))).toEqual([0, 0, 0]);
    expect(await admin.pttl('tg:sweep-turn')).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 350));
    expect(await third.sweep(T0 + TTL, { onceEveryMs: 300 })).toBe(2);
    await lapsed(1);
    expect(await second.sweep(T0 + TTL)).toBe(1);
    await expect(first.sweep(T0, { onceEveryMs: 0 })).rejects.toThrow(RangeError);
    await Promise.all([first.close(), second.close(), third.close()]);
  });

  it("an instance that does not get the sweep's turn still forgets its own lapsed reservations", async () => {
    const other = await fresh();
    const store = openRedisCounterStore(server.url);
    const mine = (store as unknown as { mine: Map<string, unknown> }).mine;
    // Reservations this process never settled (a request whose settlement was lost for good):
    // only its own sweep lets go of them, and every other instance holds the turn in its minutes.
    for (let i = 0; i < 3; i++) await store.reserve(`own${i}`, [credits(`own${i}`, 10, 1000)], T0 + 1, T0);
    expect(mine.size).toBe(3);
    expect(await other.sweep(T0 + TTL, { onceEveryMs: 60_000 })).toBe(3);
    expect(await store.sweep(T0 + TTL, { onceEveryMs: 60_000 })).toBe(0);
    expect(mine.size).toBe(0);
    await Promise.all([other.close(), store.close()]);
  });

  it('a settlement whose reply was lost, sent again, answers settled and charges once', async () => {
    await admin.flushall();
    // A 150 ms command timeout, and Redis holding writes for 400 ms: the settle runs, its reply is too late.
    const store = openRedisCounterStore(server.url, { commandTimeoutMs: 150 });
    await store.reserve('r1', [credits('a', 1000, 50_000)], T0 + TTL, T0);
    await admin.client('PAUSE', 400, 'WRITE');
    await expect(store.receipts.settle('r1', 400, '{"requestId":"r1"}')).rejects.toBeInstanceOf(CounterStoreUnavailableError);
    await new Promise((r) => setTimeout(r, 600));
    expect(await store.get([credits('a', 0, 0).key], T0)).toEqual([400]);
    // The meter's backlog sends it again: settled already, nothing moves.
    expect(await store.receipts.settle('r1', 400, '{"requestId":"r1"}')).toBe(true);
    expect(await store.get([credits('a', 0, 0).key], T0)).toEqual([400]);
    // Nor does a lapsed-charge of the same id.
    expect(await store.receipts.charge('r1', [{ key: credits('a', 0, 0).key, amount: 400, expiresAt: END_OF_DAY }], '{"requestId":"r1"}')).toBe(false);
    expect(await store.get([credits('a', 0, 0).key], T0)).toEqual([400]);
    // The marker expires on its own (SETTLED_MEMORY_MS).
    expect(await admin.pttl('tg:{a}:done:r1')).toBeGreaterThan(SETTLED_MEMORY_MS - 5000);
    await store.close();
  });

  it('warns at start of a Redis that would drop its data: no append-only file, or keys evicted at maxmemory', async () => {
    const store = await fresh();
    // The test server runs without its append-only file.
    expect(await store.persistenceWarning()).toMatch(/without appendonly/);
    await admin.config('SET', 'appendonly', 'yes');
    try {
      expect(await store.persistenceWarning()).toBeNull();
      // A Redis set up as a cache evicts keys at its maxmemory: prepaid balances and today's
      // counters vanish (a balance of 5,000,000 credits read 0), and nothing said so.
      await admin.config('SET', 'maxmemory', '64mb');
      await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
      expect(await store.persistenceWarning()).toMatch(/maxmemory-policy allkeys-lru.*noeviction/);
      await admin.config('SET', 'maxmemory-policy', 'volatile-lru');
      expect(await store.persistenceWarning()).toMatch(/maxmemory-policy volatile-lru/);
      // No maxmemory: nothing is ever evicted, whatever the policy says.
      await admin.config('SET', 'maxmemory', '0');
      expect(await store.persistenceWarning()).toBeNull();
    } finally {
      await admin.config('SET', 'maxmemory', '0');
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      await admin.config('SET', 'appendonly', 'no');
    }
    await store.close();
  });

  it('a Redis at its maxmemory (OOM) is unavailable, so limiter.onUnavailable decides, not a 500', async () => {
    const store = await fresh();
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    await admin.config('SET', 'maxmemory', '1');
    try {
      await expect(store.reserve('r1', [credits('a', 1, 10)], T0 + TTL, T0)).rejects.toBeInstanceOf(CounterStoreUnavailableError);
    } finally {
      await admin.config('SET', 'maxmemory', '0');
    }
    expect((await store.reserve('r1', [credits('a', 1, 10)], T0 + TTL, T0)).ok).toBe(true);
    await store.close();
  });

  it('charges an id without a reservation once: every counter and the receipt at once', async () => {
    const store = await fresh();
    const day = credits('a', 0, 0).key;
    const balance = `${acct('a')}:balance`;
    const charges = [
      { key: day, amount: 300, expiresAt: END_OF_DAY },
      { key: balance, amount: -300, expiresAt: null },
      { key: `${acct('a')}:one_at_a_time`, amount: 0, expiresAt: null },
    ];
    expect(await store.receipts.charge('r9', charges, '{"requestId":"r9"}')).toBe(true);
    expect(await store.get([day, balance, `${acct('a')}:one_at_a_time`], T0)).toEqual([300, -300, 0]);
    expect(await admin.hgetall('tg:{a}:receipts')).toEqual({ r9: '{"requestId":"r9"}' });
    // Sent again (its reply lost): nothing changes.
    expect(await store.receipts.charge('r9', charges, '{"requestId":"r9"}')).toBe(false);
    expect(await store.get([day, balance], T0)).toEqual([300, -300]);
    // A counter with an expiry gets it, as add() gives it.
    expect(Number(await admin.hget(day, 'e'))).toBe(END_OF_DAY);
    await expect(store.receipts.charge('r10', [{ key: day, amount: 1, expiresAt: null }, { key: credits('b', 0, 0).key, amount: 1, expiresAt: null }], 'x')).rejects.toThrow(RangeError);
    await store.close();
  });

  it('a charge replaces a reservation still recorded under its id: the owner settling after it changes nothing', async () => {
    // An owed charge applied by another process (core/receipt-drain.ts) while the owner's settlement
    // of the same id was still on its way (sent into the outage, run when Redis resumed).
    const owner = await fresh();
    const other = openRedisCounterStore(server.url);
    const day = credits('a', 0, 0).key;
    const balance = `${acct('a')}:balance`;
    await owner.add(balance, 5000, null);
    const ops: CounterOp[] = [credits('a', 1000, 50_000), { key: balance, amount: -1000, min: 0, settle: 'actual', expiresAt: null }];
    await owner.reserve('r1', ops, T0 + TTL, T0);
    expect(await owner.get([day, balance], T0)).toEqual([1000, 4000]);
    const charges = [
      { key: day, amount: 400, expiresAt: END_OF_DAY },
      { key: balance, amount: -400, expiresAt: null },
    ];
    expect(await other.receipts.charge('r1', charges, '')).toBe(true);
    // The reservation is gone with its worst case: the counters hold the actual cost once.
    expect(await other.get([day, balance], T0)).toEqual([400, 4600]);
    expect(await admin.exists('tg:{a}:res:r1')).toBe(0);
    expect(await admin.zscore('tg:{a}:resexp', 'r1')).toBeNull();
    // The owner's settlement lands afterwards: already charged, nothing moves.
    expect(await owner.receipts.settle('r1', 400, '{"requestId":"r1"}')).toBe(true);
    expect(await owner.get([day, balance], T0 + 2 * TTL)).toEqual([400, 4600]);
    expect(await admin.hgetall('tg:{a}:receipts')).toEqual({});
    await other.close();
    await owner.close();
  });

  it('the meter: a settlement whose reply was lost is charged once after the backlog retries it', async () => {
    await admin.flushall();
    const store = openRedisCounterStore(server.url, { commandTimeoutMs: 150 });
    const clock = new ManualClock(T0);
    const m = new PlanMeter({
      plans: resolvePlans({ free: { preset: 'free-tier', rules: [] } }).plans,
      defaultPlan: 'free',
      publicUrl: 'https://gw.example',
      store,
      clock,
      reservationTtlMs: 30_000,
      renewEveryMs: 600_000,
      maxHoldMs: 600_000,
      onUnavailable: 'closed',
      logger: { warn: () => {}, error: () => {} },
    });
    const principal = { account: { id: 'acc1', plan: 'free', email: null, hasPaymentMethod: false, createdAt: '2026-11-25T00:00:00.000Z', suspendedAt: null, suspendedReason: null }, key: null, surface: 'api' as const };
    const model = modelSchema.parse({ id: 'm', kind: 'chat', provider: 'p', price: { input: 1, output: 1 } });
    const admission = await m.admit({ requestId: 'req1', principal, model, worstCaseCredits: 1000 });
    await admin.client('PAUSE', 400, 'WRITE');
    await admission.settle(400, '{"requestId":"req1"}');
    expect(m.pendingCharges).toBe(1);
    await new Promise((r) => setTimeout(r, 600));
    await m.drainBacklog();
    expect(m.pendingCharges).toBe(0);
    const { rules } = await m.status(principal, [model]);
    expect(rules.find((r) => r.id === 'api_token')!.used).toBe(400);
    await m.close();
    await store.close();
  });

  it('the meter: a reservation refused before it was sent (Redis down) leaves nothing to give back', async () => {
    // Only a reservation Redis may still run needs giving back (a stall past the command timeout).
    // One never written to the connection (down: no offline queue) queued a release per refused
    // request — during an outage, a backlog entry and a remembered reservation for every 503, the
    // backlog full ("dropping a charge" logged per request) and the memory growing till Redis returned.
    const own = await startRedis();
    const store = openRedisCounterStore(own.url, { commandTimeoutMs: 150, reconnectEveryMs: 60_000 });
    const errors: string[] = [];
    const m = new PlanMeter({
      plans: resolvePlans({ free: { preset: 'free-tier', rules: [] } }).plans,
      defaultPlan: 'free',
      publicUrl: 'https://gw.example',
      store,
      clock: new ManualClock(T0),
      reservationTtlMs: 30_000,
      renewEveryMs: 600_000,
      maxHoldMs: 600_000,
      onUnavailable: 'closed',
      logger: { warn: () => {}, error: (_o, msg) => errors.push(msg) },
    });
    try {
      const principal = { account: { id: 'acc1', plan: 'free', email: null, hasPaymentMethod: false, createdAt: '2026-11-25T00:00:00.000Z', suspendedAt: null, suspendedReason: null }, key: null, surface: 'api' as const };
      const model = modelSchema.parse({ id: 'm', kind: 'chat', provider: 'p', price: { input: 1, output: 1 } });
      await (await m.admit({ requestId: 'req0', principal, model, worstCaseCredits: 100 })).release();
      await own.stop();
      for (let i = 1; i <= 50; i++) {
        await expect(m.admit({ requestId: `req${i}`, principal, model, worstCaseCredits: 100 })).rejects.toMatchObject({ code: 'limiter_unavailable' });
      }
      // Nothing to give back: the count goes to 0 (polled: a fixed 20 ms wait failed once in a
      // loaded CI run), where a refusal taken for a sent reservation kept it at 50 for good.
      await expect.poll(() => m.pendingCharges, { timeout: 2_000, interval: 10 }).toBe(0);
      expect(errors).toEqual([]);
    } finally {
      await m.close();
      await store.close();
      await own.stop();
    }
  });

  it('charges nothing for an id whose settlement kept a receipt, once its marker lapsed; a drain acknowledging it remembers the id as long as it asks', async () => {
    const store = await fresh();
    await store.reserve('r1', [credits('a', 600, 1000)], T0 + TTL, T0);
    expect(await store.receipts.settle('r1', 5, '{"requestId":"r1"}')).toBe(true);
    // SETTLED_MEMORY_MS went by (the limiter out of reach): the marker lapsed, the receipt stays.
    expect(await admin.del('tg:{a}:done:r1')).toBe(1);
    const owed = [{ key: credits('a', 0, 0).key, amount: 5, expiresAt: null }];
    expect(await store.receipts.charge('r1', owed, '', DAY)).toBe(false);
    expect(await store.get([credits('a', 0, 0).key], T0)).toEqual([5]);
    await store.receipts.pending(100);
    await store.receipts.acknowledge(['r1'], DAY);
    expect(await admin.pttl('tg:{a}:done:r1')).toBeGreaterThan(DAY - 60_000);
    expect(await store.receipts.charge('r1', owed, '', DAY)).toBe(false);
    expect(await store.get([credits('a', 0, 0).key], T0)).toEqual([5]);
    // Its own process's acknowledgement leaves the settlement's marker as it was.
    await store.reserve('r2', [credits('a', 600, 1000)], T0 + TTL, T0);
    expect(await store.receipts.settle('r2', 5, '{"requestId":"r2"}')).toBe(true);
    await store.receipts.acknowledge(['r2']);
    expect(await admin.pttl('tg:{a}:done:r2')).toBeLessThanOrEqual(SETTLED_MEMORY_MS);
    await store.close();
  });

  it('keeps a receipt with its settlement, lists it to any process, and forgets it once acknowledged', async () => {
    const store = await fresh();
    await store.reserve('r1', [credits('a', 600, 1000)], T0 + TTL, T0);
    await store.reserve('r2', [credits('b', 600, 10_000)], T0 + TTL, T0);
    await store.reserve('r3', [credits('b', 600, 10_000)], T0 + TTL, T0);
    expect(await store.receipts.settle('r1', 5, '{"requestId":"r1"}')).toBe(true);
    expect(await store.receipts.settle('r2', 7, '{"requestId":"r2"}')).toBe(true);
    expect(await store.release('r3')).toBe(true);
    // Settled as settle() settles; an unknown (here: released) reservation keeps nothing.
    expect(await store.get([credits('a', 0, 0).key, credits('b', 0, 0).key], T0)).toEqual([5, 7]);
    expect(await store.receipts.settle('r3', 1, '{"requestId":"r3"}')).toBe(false);
    expect(await store.receipts.settle('nope', 1, '{"requestId":"nope"}')).toBe(false);
    expect(await admin.hgetall(`tg:{b}:receipts`)).toEqual({ r2: '{"requestId":"r2"}' });

    // Another process (as after this one died) lists both and acknowledges one.
    const other = openRedisCounterStore(server.url);
    const listed = await other.receipts.pending(100);
    expect(listed.sort((x, y) => x.id.localeCompare(y.id))).toEqual([
      { id: 'r1', receipt: '{"requestId":"r1"}' },
      { id: 'r2', receipt: '{"requestId":"r2"}' },
    ]);
    expect(await other.receipts.pending(1)).toHaveLength(1);
    await other.receipts.acknowledge(['r2', 'unknown']);
    expect(await store.receipts.pending(100)).toEqual([{ id: 'r1', receipt: '{"requestId":"r1"}' }]);
    // What a process remembers of receipts it listed but another acknowledged (r2 here) is gone
    // after two more listings, not kept for ever.
    const remembered = (s: unknown) => {
      const { receiptTags, olderReceiptTags } = s as { receiptTags: Map<string, string>; olderReceiptTags: Map<string, string> };
      return new Set([...receiptTags.keys(), ...olderReceiptTags.keys()]);
    };
    expect(remembered(store).has('r2')).toBe(true);
    await store.receipts.pending(100);
    expect(remembered(store).has('r2')).toBe(false);
    expect(remembered(store).has('r1')).toBe(true);
    // The settling process acknowledges its own without listing first.
    await store.receipts.acknowledge(['r1']);
    expect(await other.receipts.pending(100)).toEqual([]);
    expect(await admin.keys('tg:*:receipts')).toEqual([]);
    // Plain settle() keeps none.
    await store.reserve('r4', [credits('a', 1, 1000)], T0 + TTL, T0);
    expect(await store.settle('r4', 1)).toBe(true);
    expect(await store.receipts.pending(100)).toEqual([]);
    await expect(store.receipts.settle('r5', 1, '')).rejects.toThrow(RangeError);
    await other.close();
    await store.close();
  });

  it("lists a few receipts without reading an account's whole backlog (a ledger outage's aftermath)", async () => {
    // A PostgreSQL outage leaves one receipt per request served meanwhile, most of them in the
    // busiest accounts' hashes, and every instance's drain then lists them 500 at a time. Read
    // whole (HGETALL) for each listing, 30,000 receipts in one account took 60 listings of all
    // that were left: ~1 GB out of Redis, and each listing held Redis and the event loop.
    const store = await fresh();
    const receipt = 'r'.repeat(300);
    for (let i = 0; i < 20_000; i += 1000) {
      const fields: string[] = [];
      for (let j = i; j < i + 1000; j++) fields.push(`req${j}`, receipt);
      await admin.hset('tg:{busy}:receipts', ...fields);
    }
    await admin.hset('tg:{quiet}:receipts', 'lone', receipt);
    const sent = async () => Number(/total_net_output_bytes:(\d+)/.exec(await admin.info('stats'))![1]);
    const before = await sent();
    const listed = await store.receipts.pending(10);
    const bytes = (await sent()) - before;
    expect(listed).toHaveLength(10);
    expect(new Set(listed.map((r) => r.id)).size).toBe(10);
    expect(bytes).toBeLessThan(100_000);
    // All of them still come out, each once, listing after listing, and are forgotten once acknowledged.
    const seen = new Set<string>();
    for (;;) {
      const batch = await store.receipts.pending(500);
      if (batch.length === 0) break;
      for (const r of batch) {
        expect(r.receipt).toBe(receipt);
        seen.add(r.id);
      }
      await store.receipts.acknowledge(batch.map((r) => r.id));
    }
    expect(seen.size).toBe(20_001);
    expect(await admin.keys('tg:*:receipts')).toEqual([]);
    await store.close();
  });

  it('refuses every operation after close', async () => {
    const store = await fresh();
    await store.close();
    await store.close();
    await expect(store.get(['a'], 0)).rejects.toThrow(/closed/);
    await expect(store.add('a', 1, null)).rejects.toThrow(/closed/);
  });

  it('fails fast with CounterStoreUnavailableError while Redis is down, and recovers by itself', async () => {
    const own = await startRedis();
    try {
      const store = openRedisCounterStore(own.url);
      const seen: string[] = [];
      store.watchConnection(
        () => seen.push('lost'),
        () => seen.push('back'),
      );
      expect(await store.add(`${acct('a')}:balance`, 100, null)).toBe(100);
      await own.stop();
      const started = Date.now();
      const err = await store.reserve('r1', [credits('a', 1, 10)], T0 + TTL, T0).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CounterStoreUnavailableError);
      expect(Date.now() - started).toBeLessThan(1500);
      await expect(store.get([`${acct('a')}:balance`], T0)).rejects.toBeInstanceOf(CounterStoreUnavailableError);

      await own.restart();
      // The same store reconnects on its own (every ~200 ms); nothing survived the restart (--save '').
      const deadline = Date.now() + 5_000;
      let result = await store.add(`${acct('a')}:balance`, 1, null).catch((e: unknown) => e);
      while (result instanceof CounterStoreUnavailableError && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        result = await store.add(`${acct('a')}:balance`, 1, null).catch((e: unknown) => e);
      }
      expect(result).toBe(1);
      expect(await store.reserve('r1', [credits('a', 1, 10)], T0 + TTL, T0)).toEqual({ ok: true, values: [1] });
      // The operator's log hears of the outage once, however many reconnects failed, and of its end.
      expect(seen).toEqual(['lost', 'back']);
      await store.close();
    } finally {
      await own.stop();
    }
  });

  /** A store that gives up on a command after 200 ms, and what its watchers heard. */
  function watched(url: string) {
    const store = openRedisCounterStore(url, { commandTimeoutMs: 200 });
    const seen: string[] = [];
    store.watchConnection(
      () => seen.push('lost'),
      () => seen.push('back'),
    );
    return { store, seen };
  }

  it('tells its watchers of a Redis that stalls without dropping the connection, and of its first answer after', async () => {
    // SIGSTOP, a long script or CLIENT PAUSE: the connection stays up, so no close and no ready
    // come — and what waits for "back" (the charges owed from the outage) waited for a renewal.
    const own = await startRedis();
    try {
      const { store, seen } = watched(own.url);
      expect(await store.add(`${acct('a')}:balance`, 100, null)).toBe(100);
      expect(await redisCommand(own.port, 'CLIENT PAUSE 800 ALL')).toMatch(/^\+OK/);
      await expect(store.add(`${acct('a')}:balance`, 1, null)).rejects.toBeInstanceOf(CounterStoreUnavailableError);
      await expect(store.get([`${acct('a')}:balance`], T0)).rejects.toBeInstanceOf(CounterStoreUnavailableError);
      expect(seen).toEqual(['lost']);
      await new Promise((r) => setTimeout(r, 800));
      // The paused commands ran when the pause ended: 100 + 1, then this one.
      expect(await store.add(`${acct('a')}:balance`, 1, null)).toBe(102);
      expect(seen).toEqual(['lost', 'back']);
      expect(await store.add(`${acct('a')}:balance`, 1, null)).toBe(103);
      expect(seen).toEqual(['lost', 'back']);
      await store.close();
    } finally {
      await own.stop();
    }
  });

  it('tells its watchers nothing of a Redis that refuses a write by its answer (OOM): it answers, and each refused write was a lost and each read after it a back', async () => {
    const own = await startRedis();
    try {
      const { store, seen } = watched(own.url);
      expect(await store.add(`${acct('a')}:balance`, 100, null)).toBe(100);
      const admin = new Redis(own.url);
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      await admin.config('SET', 'maxmemory', '1');
      try {
        for (let i = 0; i < 3; i++) {
          await expect(store.add(`${acct('a')}:balance`, 1, null)).rejects.toBeInstanceOf(CounterStoreUnavailableError);
          await store.ping(); // a readiness probe, every few seconds
        }
      } finally {
        await admin.config('SET', 'maxmemory', '0');
        admin.disconnect();
      }
      expect(await store.add(`${acct('a')}:balance`, 1, null)).toBe(101);
      expect(seen).toEqual([]);
      await store.close();
    } finally {
      await own.stop();
    }
  });

  it('reports a Redis that was never reachable as unavailable after the connect timeout', async () => {
    const own = await startRedis();
    await own.stop();
    const store = openRedisCounterStore(own.url);
    const started = Date.now();
    await expect(store.ready()).rejects.toBeInstanceOf(CounterStoreUnavailableError);
    await expect(store.add('a', 1, null)).rejects.toBeInstanceOf(CounterStoreUnavailableError);
    expect(Date.now() - started).toBeLessThan(3_000);
    await store.close();
  });
});
