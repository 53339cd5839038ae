// Scenario: an instance draining owed charges (core/receipt-drain.ts applyOwed) dies mid-batch in a
// way its PostgreSQL connection does not see — the host loses power or drops off the network, so no
// FIN or RST reaches the database. Its transaction keeps the row locks until PostgreSQL gives up on
// the connection (TCP keepalive: about 2 h 11 min with the defaults), and every other instance's
// drain skips those rows meanwhile (SKIP LOCKED). Then they are applied again: the charges the dead
// instance had already applied must not count twice (SPEC §7: counters = ledger).
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReceiptDrain } from '../../src/core/receipt-drain.js';
import { ManualClock } from '../../src/lib/clock.js';
import type { Receipts } from '../../src/storage/counters.js';
import type { OwedCharge, UsageRecord } from '../../src/storage/ports.js';
import { openPostgresStorage } from '../../src/storage/postgres/index.js';
import { PostgresLedger } from '../../src/storage/postgres/ledger.js';
import { openRedisCounterStore, type RedisCounterStore } from '../../src/storage/redis/counters.js';
import { freshDatabase, startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';

let postgres: PostgresServer;
let redis: RedisServer;
let admin: Redis;

beforeAll(async () => {
  [postgres, redis] = await Promise.all([startPostgres(), startRedis()]);
  admin = new Redis(redis.url);
}, 60_000);

afterAll(async () => {
  await admin?.quit();
  await Promise.allSettled([redis?.stop(), postgres?.stop()]);
});

const DAY = 'tg:{acc_a}:api_token:d2026-11-25';
const END_OF_DAY = Date.parse('2026-11-26T01:00:00.000Z');

function record(i: number): UsageRecord {
  return {
    requestId: `r${i}`,
    accountId: 'acc_a',
    keyId: 'key_a',
    model: 'gpt-4o-mini',
    surface: 'api',
    promptTokens: 10,
    outputTokens: 100,
    credits: 100 + i,
    status: 'ok',
    httpStatus: 200,
    createdAt: new Date(Date.parse('2026-11-25T12:00:00.000Z') + i).toISOString(),
    provider: 'openai',
  };
}

const owed = (i: number): OwedCharge => ({
  requestId: `r${i}`,
  accountId: 'acc_a',
  charges: [{ key: DAY, amount: 100 + i, expiresAt: END_OF_DAY }],
  createdAt: record(i).createdAt,
});

/** Redis as it is `ms` later: every key whose TTL runs out by then is gone. */
async function later(ms: number): Promise<void> {
  for (const key of await admin.keys('*')) {
    const ttl = await admin.pttl(key);
    if (ttl >= 0 && ttl <= ms) await admin.del(key);
  }
}

describe('owed charges: a drain that dies without its connection closing', () => {
  it('the charges it applied before dying count once when another instance takes its rows', async () => {
    const url = await freshDatabase(postgres.url);
    const storage = await openPostgresStorage(url);
    // A's own pool: its connection will be cut from the server side, which its client reports.
    const poolA = new pg.Pool({ connectionString: url, max: 2 });
    poolA.on('error', () => {});
    poolA.on('connect', (client) => client.on('error', () => {}));
    const ledgerA = new PostgresLedger(poolA);
    const counters: RedisCounterStore[] = [openRedisCounterStore(redis.url), openRedisCounterStore(redis.url)];
    const logger = { warn: () => {}, error: () => {} };
    const clock = new ManualClock();
    // Three requests settled during an outage: their charges are owed.
    await Promise.all([0, 1, 2].map((i) => storage.ledger.owed.append(record(i), owed(i))));

    // Instance A applies the first charge, then its host dies before it applies the second.
    let calls = 0;
    const dying: Receipts = {
      ...counters[0]!.receipts,
      charge: (...args) => (calls++ === 0 ? counters[0]!.receipts.charge(...args) : new Promise<boolean>(() => {})),
    };
    const a = new ReceiptDrain({ receipts: dying, ledger: ledgerA, clock, everyMs: 3_600_000, graceMs: 1000, logger });
    void a.applyOwed();
    for (let i = 0; i < 100 && calls < 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(calls).toBe(2);
    expect(await admin.hget(DAY, 'v')).toBe('100');

    const b = new ReceiptDrain({ receipts: counters[1]!.receipts, ledger: storage.ledger, clock, everyMs: 3_600_000, graceMs: 1000, logger });
    // Meanwhile the rows are A's: B applies none of them.
    expect(await b.applyOwed()).toBe(0);

    // About 2 h 11 min later PostgreSQL's keepalive gives up on A's connection and rolls back its
    // transaction (here: at once, as an administrator would); Redis has moved on as far.
    await later(2 * 3_600_000 + 11 * 60_000);
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    // With a timeout it waits until the session has ended (and released its row locks); without
    // one it returns once the signal is sent, and under load B's drain ran first and found the
    // rows still locked (applyOwed() = 0, once in a full run). PostgreSQL 14+.
    await db.query(`SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE state = 'idle in transaction' AND datname = current_database()`);
    await db.end();

    expect(await b.applyOwed()).toBe(3);
    // Once each: 100 + 101 + 102.
    expect(Number(await admin.hget(DAY, 'v'))).toBe(303);

    await b.close();
    await Promise.all(counters.map((c) => c.close()));
    await storage.close();
    // A never comes back: its pool keeps the client it checked out (the server ended its session).
    void poolA.end().catch(() => {});
  }, 60_000);
});
