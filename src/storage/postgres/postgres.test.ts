import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type PostgresServer, startPostgres } from '../../../test/helpers/postgres.js';
import { GatewayError } from '../../errors/gateway-error.js';
import { storageContract } from '../contract/storage.contract.js';
import { StorageUnavailableError, type UsageRecord } from '../ports.js';
import { isOutage, reportOutages } from './outage.js';
import { openPostgresStorage, type PostgresStorage } from './index.js';
import { DatabaseOpenError } from '../open-error.js';
import { latestVersion, migrate, migrations, SchemaTooNewError } from './migrations.js';

let server: PostgresServer;

beforeAll(async () => {
  server = await startPostgres();
}, 30_000);

afterAll(async () => {
  await server?.stop();
});

storageContract('postgres', async () => openPostgresStorage(await freshDatabase(server.url)));

function usage(i: number, over: Partial<UsageRecord> = {}): UsageRecord {
  return {
    requestId: `r${i}`,
    accountId: 'acc_a',
    keyId: 'key_a',
    model: 'gpt-4o',
    surface: 'api',
    promptTokens: 10,
    outputTokens: 5,
    credits: 15,
    status: 'ok',
    httpStatus: 200,
    createdAt: new Date(Date.parse('2026-11-25T12:00:00.000Z') + i).toISOString(),
    provider: 'openai',
    ...over,
  };
}

describe('postgres specifics', () => {
  it('a database that refuses at start is one line naming storage.url, its password hidden; a bug in a migration is not', async () => {
    const missing = new URL(server.url);
    missing.pathname = '/no_such_db';
    missing.password = 'hunter2';
    const err = await openPostgresStorage(missing.toString()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatabaseOpenError);
    expect((err as Error).message).toBe(`cannot open the PostgreSQL database postgres://postgres:***@127.0.0.1:${server.port}/no_such_db (storage.url): database "no_such_db" does not exist`);
    const closed = await openPostgresStorage(`postgres://u:secret@127.0.0.1:1/db`).catch((e: unknown) => e);
    expect(closed).toBeInstanceOf(DatabaseOpenError);
    expect((closed as Error).message).toMatch(/^cannot open the PostgreSQL database postgres:\/\/u:\*\*\*@127\.0\.0\.1:1\/db \(storage\.url\): connect ECONNREFUSED/);
  });

  const toClose: { close(): Promise<void> }[] = [];
  const track = <T extends { close(): Promise<void> }>(x: T): T => (toClose.push(x), x);
  afterEach(async () => {
    await Promise.all(toClose.splice(0).map((x) => x.close()));
  });

  /** A raw pool on `url`, closed after the test. */
  const rawPool = (url: string) => {
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    // pool.end() resolves before its clients' sockets close: a server stopped right after (the
    // suite's last test) ends them mid-way, and the 57P01 that client then emits went unheard.
    pool.on('connect', (client) => client.on('error', () => {}));
    track({ close: () => pool.end() });
    return pool;
  };
  const count = async (pool: pg.Pool, sql: string) => Number((await pool.query<{ n: string }>(sql)).rows[0]?.n);

  it('tells an outage from a bug: connection failures and timeouts are StorageUnavailableError, SQL errors are not', async () => {
    expect(isOutage(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isOutage(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }))).toBe(true);
    expect(isOutage(Object.assign(new Error('sorry, too many clients already'), { code: '53300' }))).toBe(true);
    expect(isOutage(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isOutage(new Error('timeout exceeded when trying to connect'))).toBe(true);
    expect(isOutage(Object.assign(new Error('duplicate key value violates unique constraint'), { code: '23505' }))).toBe(false);
    expect(isOutage(Object.assign(new Error('syntax error at or near "SELEC"'), { code: '42601' }))).toBe(false);
    // Against a server nothing listens on: the pool's first query reports an outage.
    const dead = reportOutages(new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:1/x', connectionTimeoutMillis: 500 }));
    dead.on('error', () => {});
    await expect(dead.query('SELECT 1')).rejects.toBeInstanceOf(StorageUnavailableError);
    await dead.end();
  });

  it('fails a query the database does not answer instead of waiting for ever', async () => {
    const url = await freshDatabase(server.url);
    const storage = track(await openPostgresStorage(url, { queryTimeoutMs: 300 }));
    // Another session holds the table the credentials version lives in: reads of it block, as on a
    // frozen server.
    const blocker = rawPool(url);
    const held = await blocker.connect();
    try {
      await held.query('BEGIN');
      await held.query('LOCK TABLE credentials_version IN ACCESS EXCLUSIVE MODE');
      const started = Date.now();
      await expect(storage.credentialsVersion()).rejects.toBeInstanceOf(StorageUnavailableError);
      expect(Date.now() - started).toBeLessThan(5_000);
      // With the default limits the version read (each request's, once a second) gives up after 2 s.
      const defaults = track(await openPostgresStorage(url));
      const t0 = Date.now();
      await expect(defaults.credentialsVersion()).rejects.toBeInstanceOf(StorageUnavailableError);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1_900);
      expect(Date.now() - t0).toBeLessThan(5_000);
      // /readyz's ping reads the same row with the same limit: not ready, and said so within 2 s.
      const t1 = Date.now();
      await expect(defaults.ping()).rejects.toBeInstanceOf(StorageUnavailableError);
      expect(Date.now() - t1).toBeLessThan(5_000);
    } finally {
      await held.query('ROLLBACK');
      held.release();
    }
    expect(typeof (await storage.credentialsVersion())).toBe('number');
  });

  it('numbers migrations 1…n', () => {
    expect(migrations.map((m) => m.version)).toEqual(migrations.map((_, i) => i + 1));
    expect(latestVersion).toBe(migrations.length);
  });

  it('records migrations once and re-opens idempotently', async () => {
    const url = await freshDatabase(server.url);
    await (await openPostgresStorage(url)).close();
    const pool = rawPool(url);
    const rows = async () =>
      (await pool.query('SELECT version, name, applied_at FROM schema_migrations ORDER BY version')).rows;
    const first = await rows();
    expect(first.map((r) => r.version)).toEqual(migrations.map((m) => m.version));
    expect(first.map((r) => r.name)).toEqual(migrations.map((m) => m.name));

    await (await openPostgresStorage(url)).close();
    expect(await rows()).toEqual(first);
    expect(await migrate(pool)).toEqual([]);
  });

  it('applies only what a database lacks and rolls back a failing migration whole', async () => {
    const pool = rawPool(await freshDatabase(server.url));
    expect(await migrate(pool)).toEqual(migrations.map((m) => m.version));
    const extra = { version: migrations.length + 1, name: 'extra', sql: 'CREATE TABLE extra (x integer)' };
    expect(await migrate(pool, [...migrations, extra])).toEqual([extra.version]);
    expect(await migrate(pool, [...migrations, extra])).toEqual([]);

    const bad = { version: extra.version + 1, name: 'bad', sql: 'CREATE TABLE half (x integer); SELECT * FROM nope' };
    await expect(migrate(pool, [...migrations, extra, bad])).rejects.toThrow(/nope/);
    expect(await count(pool, "SELECT COUNT(*) AS n FROM pg_tables WHERE tablename = 'half'")).toBe(0);
    expect(await count(pool, 'SELECT MAX(version) AS n FROM schema_migrations')).toBe(extra.version);
  });

  it('refuses a database with a newer schema version', async () => {
    const url = await freshDatabase(server.url);
    await (await openPostgresStorage(url)).close();
    await rawPool(url).query(
      "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'from the future', now())",
      [latestVersion + 1],
    );
    const err = await openPostgresStorage(url).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SchemaTooNewError);
    expect((err as Error).message).toMatch(`schema version ${latestVersion + 1} is newer`);
  });

  it('lets several instances open one fresh database at once (advisory lock)', async () => {
    const url = await freshDatabase(server.url);
    const stores = await Promise.all(Array.from({ length: 4 }, () => openPostgresStorage(url)));
    stores.forEach(track);
    const pool = rawPool(url);
    expect(await count(pool, 'SELECT COUNT(*) AS n FROM schema_migrations')).toBe(migrations.length);
    for (const s of stores) await s.ping();
  });

  it('admits exactly one of many concurrent creates with one email', async () => {
    const store = track(await openPostgresStorage(await freshDatabase(server.url)));
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) =>
        store.accounts.create({ id: `acc_${i}`, email: i % 2 ? 'Same@X.io' : 'same@x.io', plan: 'free', createdAt: '2026-11-25T00:00:00.000Z' }),
      ),
    );
    const ok = results.filter((r) => r.status === 'fulfilled');
    expect(ok).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected') expect((r.reason as GatewayError).code).toBe('email_taken');
    }
  });

  describe('owed charges', () => {
    const owed = (i: number) => ({
      requestId: usage(i).requestId,
      accountId: 'acc_a',
      charges: [
        { key: 'tg:{acc_a}:api_token:2026-11-25', amount: 15, expiresAt: Date.parse('2026-11-26T01:00:00.000Z') },
        { key: 'tg:{acc_a}:balance', amount: -15, expiresAt: null },
      ],
      createdAt: usage(i).createdAt,
    });

    it('keeps an owed charge with its record, in the same statement: both or neither', async () => {
      const url = await freshDatabase(server.url);
      const store = track(await openPostgresStorage(url));
      await Promise.all([store.ledger.owed.append(usage(1), owed(1)), store.ledger.owed.append(usage(2, { provider: null }), owed(2)), store.ledger.append(usage(3))]);
      const pool = rawPool(url);
      expect(await count(pool, 'SELECT COUNT(*) AS n FROM usage_records')).toBe(3);
      expect((await store.ledger.query({})).map((r) => [r.requestId, r.provider])).toEqual([['r3', 'openai'], ['r2', null], ['r1', 'openai']]);
      expect((await pool.query('SELECT request_id, charges FROM owed_charges ORDER BY request_id')).rows).toEqual([
        { request_id: 'r1', charges: owed(1).charges },
        { request_id: 'r2', charges: owed(2).charges },
      ]);
      // A record the database refuses takes its owed charge down with it.
      const bad = { ...usage(4), accountId: null as unknown as string };
      await expect(store.ledger.owed.append(bad, owed(4))).rejects.toThrow();
      expect(await count(pool, "SELECT COUNT(*) AS n FROM owed_charges WHERE request_id = 'r4'")).toBe(0);
      expect(await count(pool, "SELECT COUNT(*) AS n FROM usage_records WHERE request_id = 'r4'")).toBe(0);
      // The records written with their charges count in the kept daily totals too (migration 6).
      expect(await store.ledger.daily({ from: '2026-11-25', to: '2026-11-26' })).toEqual([expect.objectContaining({ requests: 3, credits: 3 * usage(1).credits })]);
    });

    it('hands each owed charge to one taker at a time, and forgets only what it applied', async () => {
      const url = await freshDatabase(server.url);
      const one = track(await openPostgresStorage(url));
      const two = track(await openPostgresStorage(url));
      await Promise.all(Array.from({ length: 10 }, (_, i) => one.ledger.owed.append(usage(i), owed(i))));
      expect(await one.ledger.owed.settle(100, async () => [])).toBe(0);
      // Nothing forgotten when applying throws (the counter store went away mid-way).
      await expect(one.ledger.owed.settle(100, async () => Promise.reject(new Error('down')))).rejects.toThrow('down');
      // Two instances draining at once: while one holds its rows, the other takes the rest.
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      const seen: string[][] = [];
      const first = one.ledger.owed.settle(4, async (due) => {
        seen.push(due.map((o) => o.requestId));
        await held;
        return due.map((o) => o.requestId);
      });
      await new Promise((r) => setTimeout(r, 100));
      const second = await two.ledger.owed.settle(100, async (due) => {
        seen.push(due.map((o) => o.requestId));
        // Applied all but the last (the store stopped answering).
        return due.slice(0, -1).map((o) => o.requestId);
      });
      release();
      expect(await first).toBe(4);
      expect(second).toBe(5);
      expect(seen[0]).toEqual(['r0', 'r1', 'r2', 'r3']);
      expect(seen[1]).toEqual(['r4', 'r5', 'r6', 'r7', 'r8', 'r9']);
      const left: unknown[] = [];
      expect(await one.ledger.owed.settle(100, async (due) => (left.push(...due), []))).toBe(0);
      expect(left).toEqual([owed(9)]);
    });
    it('a session the server ends while a batch is applied fails that batch, not the process', async () => {
      const url = await freshDatabase(server.url);
      // As an operator (or a managed service) may set it: the drain's transaction waits on the
      // counter store between its statements, so the server ends it.
      const setup = rawPool(url);
      await setup.query(`DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET idle_in_transaction_session_timeout = 200', current_database()); END $$`);
      const store = track(await openPostgresStorage(url));
      await store.ledger.owed.append(usage(1), owed(1));
      const settling = store.ledger.owed.settle(100, async (due) => {
        await new Promise((r) => setTimeout(r, 600)); // a slow counter store
        return due.map((o) => o.requestId);
      });
      await expect(settling).rejects.toThrow();
      // Nothing forgotten: the next drain applies it again (once per id: Receipts.charge).
      expect(await count(setup, 'SELECT COUNT(*) AS n FROM owed_charges')).toBe(1);
      expect(await store.ledger.owed.settle(100, async (due) => due.map((o) => o.requestId))).toBe(1);
    });
  });

  describe('ledger pages', () => {
    it('pages through records whose stored times have digits past the millisecond (timestamptz keeps microseconds), once each', async () => {
      // The gateway writes whole milliseconds, but a row written by another tool (an import, psql)
      // may carry microseconds; a page that ends on one must not skip or repeat the rest of its millisecond.
      const url = await freshDatabase(server.url);
      const store = track(await openPostgresStorage(url));
      const pool = rawPool(url);
      const times = ['12:00:00.000900', '12:00:00.000500', '12:00:00.000500', '12:00:00.000100', '12:00:00.000', '11:59:59.999999', '11:59:59.999'];
      for (const [i, t] of times.entries()) {
        await pool.query(
          `INSERT INTO usage_records (request_id, account_id, key_id, model, surface, prompt_tokens, output_tokens, credits, status, http_status, created_at)
           VALUES ($1, 'acc_a', 'key_a', 'gpt-4o', 'api', 1, 1, 1, 'ok', 200, $2)`,
          [`m${i}`, `2026-11-25T${t}Z`],
        );
      }
      const all = (await store.ledger.query({ limit: 100 })).map((r) => r.requestId);
      expect(all).toHaveLength(times.length);
      for (const q of [{}, { accountId: 'acc_a' }]) {
        for (const limit of [1, 2, 3]) {
          const seen: string[] = [];
          let before: string | undefined;
          for (let pages = 0; pages < 20; pages++) {
            const page = await store.ledger.page({ ...q, limit, ...(before !== undefined && { before }) });
            seen.push(...page.records.map((r) => r.requestId));
            if (page.next === null) break;
            before = page.next;
          }
          expect(seen, `${JSON.stringify(q)} by ${limit}`).toEqual(all);
        }
      }
    });
  });

  describe('ledger batching', () => {
    it('writes 2,000 concurrent appends in far fewer INSERTs', async () => {
      const url = await freshDatabase(server.url);
      const store = track(await openPostgresStorage(url));
      await Promise.all(Array.from({ length: 2000 }, (_, i) => store.ledger.append(usage(i))));
      const stats = store.stats().ledger;
      expect(await count(rawPool(url), 'SELECT COUNT(*) AS n FROM usage_records')).toBe(2000);
      expect(stats).toMatchObject({ written: 2000, failed: 0, queued: 0, largestBatch: 200 });
      expect(stats.flushes).toBeLessThanOrEqual(20);
      console.info(`2,000 appends → ${stats.flushes} INSERTs, ${2000 / stats.flushes} records per INSERT`);
      const [day] = await store.ledger.daily({});
      expect(day).toMatchObject({ requests: 2000, promptTokens: 20_000, outputTokens: 10_000, credits: 30_000 });
    });

    it('ignores an append of a request id it holds, in a later batch or in the same one (one writer racing a receipt drain)', async () => {
      const url = await freshDatabase(server.url);
      const store = track(await openPostgresStorage(url));
      await store.ledger.append(usage(1));
      await Promise.all([store.ledger.append({ ...usage(1), credits: 99 }), store.ledger.append(usage(2)), store.ledger.append(usage(2))]);
      expect(store.stats().ledger).toMatchObject({ failed: 0 });
      const rows = await store.ledger.query({});
      expect(rows.map((r) => r.requestId).sort()).toEqual([usage(1).requestId, usage(2).requestId].sort());
      expect(rows.find((r) => r.requestId === usage(1).requestId)!.credits).toBe(usage(1).credits);
      // The kept daily totals count each stored record once.
      expect(await store.ledger.daily({ from: '2026-11-25', to: '2026-11-26' })).toEqual([
        expect.objectContaining({ requests: 2, credits: 2 * usage(1).credits }),
      ]);
    });

    it('flushes a lone append within the delay, and a full batch without waiting for it', async () => {
      const store = track(await openPostgresStorage(await freshDatabase(server.url), { ledgerBatch: { maxRecords: 3, maxDelayMs: 60_000 } }));
      // A full batch goes out at once, even though the delay alone would take a minute.
      await Promise.all([0, 1, 2].map((i) => store.ledger.append(usage(i))));
      expect(store.stats().ledger).toMatchObject({ flushes: 1, written: 3 });

      const quick = track(await openPostgresStorage(await freshDatabase(server.url), { ledgerBatch: { maxDelayMs: 5 } }));
      const t0 = performance.now();
      await quick.ledger.append(usage(0));
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(quick.stats().ledger).toMatchObject({ flushes: 1, written: 1 });
    });

    it('writes every queued record on close(), then refuses appends', async () => {
      const url = await freshDatabase(server.url);
      // A long delay: nothing would flush before close() but close() itself.
      const store = await openPostgresStorage(url, { ledgerBatch: { maxDelayMs: 60_000, maxRecords: 1000 } });
      const pending = Array.from({ length: 500 }, (_, i) => store.ledger.append(usage(i)));
      expect(store.stats().ledger.queued).toBe(500);
      await store.close();
      await expect(Promise.all(pending)).resolves.toHaveLength(500);
      await expect(store.ledger.append(usage(501))).rejects.toThrow(/closed/);
      await expect(store.ping()).rejects.toThrow();

      const again = track(await openPostgresStorage(url));
      expect(await again.ledger.query({ limit: 10_000 })).toHaveLength(500);
    });

    it('rejects every append of a failed batch, and recovers for the next', async () => {
      const url = await freshDatabase(server.url);
      const store = track(await openPostgresStorage(url));
      const admin = rawPool(url);
      await admin.query('ALTER TABLE usage_records RENAME TO usage_records_away');
      const failed = await Promise.allSettled([0, 1, 2].map((i) => store.ledger.append(usage(i))));
      expect(failed.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
      expect(store.stats().ledger).toMatchObject({ failed: 3, written: 0 });

      await admin.query('ALTER TABLE usage_records_away RENAME TO usage_records');
      await store.ledger.append(usage(3));
      expect((await store.ledger.query({})).map((r) => r.requestId)).toEqual(['r3']);
    });

    it('refuses a record the INSERT would fail on before it can spoil a batch', async () => {
      const store = track(await openPostgresStorage(await freshDatabase(server.url)));
      const bad = store.ledger.append(usage(1, { credits: 1.5 }));
      const good = store.ledger.append(usage(2));
      await expect(bad).rejects.toThrow(RangeError);
      await expect(good).resolves.toBeUndefined();
      await expect(store.ledger.append(usage(3, { createdAt: '2026-11-25T10:00:00' }))).rejects.toThrow(RangeError);
      expect((await store.ledger.query({})).map((r) => r.requestId)).toEqual(['r2']);
    });
  });

  it('keeps data across close and reopen, and derives the day in UTC whatever the session zone', async () => {
    const url = await freshDatabase(server.url);
    await rawPool(url).query(`ALTER DATABASE "${new URL(url).pathname.slice(1)}" SET TimeZone = 'Pacific/Kiritimati'`);
    const a = await openPostgresStorage(url);
    await a.accounts.create({ id: 'acc_1', email: 'a@b.c', plan: 'paid', createdAt: '2026-11-25T00:00:00.000Z' });
    await a.ledger.append(usage(0, { accountId: 'acc_1', createdAt: '2026-11-25T23:30:00.000Z', credits: 3 }));
    await a.close();
    await a.close(); // idempotent

    const b = track(await openPostgresStorage(url));
    expect(await b.accounts.get('acc_1')).toMatchObject({ plan: 'paid', createdAt: '2026-11-25T00:00:00.000Z' });
    expect(await b.ledger.daily({ accountId: 'acc_1' })).toMatchObject([{ day: '2026-11-25', credits: 3 }]);
    expect((await b.ledger.query({ from: '2026-11-25T23:30:00.000Z' }))[0]?.createdAt).toBe('2026-11-25T23:30:00.000Z');
  });

  describe('daily totals (migration 6)', () => {
    const GROUPED = `SELECT to_char(day, 'YYYY-MM-DD') AS day, account_id, model, surface, COUNT(*)::int AS requests,
        SUM(prompt_tokens)::int AS prompt_tokens, SUM(output_tokens)::int AS output_tokens, SUM(credits)::int AS credits
      FROM usage_records GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`;
    const KEPT = `SELECT to_char(day, 'YYYY-MM-DD') AS day, account_id, model, surface, SUM(requests)::int AS requests,
        SUM(prompt_tokens)::int AS prompt_tokens, SUM(output_tokens)::int AS output_tokens, SUM(credits)::int AS credits
      FROM usage_daily GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`;
    const spread = (i: number): UsageRecord =>
      usage(i, {
        accountId: `acc_${i % 7}`,
        model: i % 2 ? 'gpt-4o' : 'gpt-4o-mini',
        surface: i % 3 ? 'api' : 'playground',
        promptTokens: i % 11,
        outputTokens: i % 5,
        credits: i % 13,
        createdAt: new Date(Date.parse('2026-11-25T23:59:59.000Z') + (i % 4) * 600).toISOString(),
      });

    it('keeps them equal to the records, with instances appending the same accounts at once (no deadlock)', async () => {
      const url = await freshDatabase(server.url);
      const stores = await Promise.all(Array.from({ length: 3 }, () => openPostgresStorage(url, { ledgerBatch: { maxRecords: 25 } })));
      stores.forEach(track);
      // Each instance appends 600 records over the same 7 accounts, both days; every 10th request
      // id is appended by two instances (a receipt drain racing the writer), stored once.
      await Promise.all(
        stores.map((store, n) =>
          Promise.all(Array.from({ length: 600 }, (_, j) => store.ledger.append(spread(j % 10 === 0 && n > 0 ? j : n * 10_000 + j)))),
        ),
      );
      for (const store of stores) expect(store.stats().ledger.failed).toBe(0);
      const pool = rawPool(url);
      expect(await count(pool, 'SELECT COUNT(*) AS n FROM usage_records')).toBe(3 * 600 - 2 * 60);
      const grouped = (await pool.query(GROUPED)).rows;
      expect((await pool.query(KEPT)).rows).toEqual(grouped);
      expect(grouped.length).toBeGreaterThan(50);
      const days = await stores[0]!.ledger.daily({ accountId: 'acc_3', from: '2026-11-25', to: '2026-11-27' });
      expect(days.map((d) => [d.day, d.model, d.surface, d.requests, d.credits])).toEqual(
        grouped
          .filter((r) => r.account_id === 'acc_3')
          .map((r) => [r.day, r.model, r.surface, r.requests, r.credits])
          .sort((a, b) => (a[0] === b[0] ? (a[1] === b[1] ? String(a[2]).localeCompare(String(b[2])) : String(a[1]).localeCompare(String(b[1]))) : String(b[0]).localeCompare(String(a[0])))),
      );
    });

    it("never makes one session's insert wait for another's commit (no shared row)", async () => {
      // A row shared by every session is a lock a batch holds to its commit: instances' batches over
      // the same accounts would queue behind each other's fsync.
      const url = await freshDatabase(server.url);
      track(await openPostgresStorage(url));
      const pool = new pg.Pool({ connectionString: url, max: 2 });
      pool.on('connect', (client) => client.on('error', () => {}));
      track({ close: () => pool.end() });
      const insert = (c: pg.PoolClient, id: string) =>
        c.query(
          `INSERT INTO usage_records (request_id, account_id, key_id, model, surface, prompt_tokens, output_tokens, credits, status, http_status, created_at)
           VALUES ($1, 'acc_a', 'key_a', 'gpt-4o', 'api', 1, 1, 1, 'ok', 200, '2026-11-25T12:00:00Z')`,
          [id],
        );
      const a = await pool.connect();
      const b = await pool.connect();
      try {
        await insert(a, 'first');
        await insert(b, 'second'); // both sessions have a row of their own now
        await a.query('BEGIN');
        await insert(a, 'held');
        await b.query("SET statement_timeout = '2s'");
        await insert(b, 'beside'); // used to wait for a's commit, here for ever: statement timeout
        await a.query('COMMIT');
      } finally {
        a.release();
        b.release();
      }
      expect((await pool.query('SELECT SUM(requests)::int AS n FROM usage_daily')).rows[0].n).toBe(4);
    });

    it('answers whole days from the kept totals and part of a day from the records', async () => {
      const url = await freshDatabase(server.url);
      const store = track(await openPostgresStorage(url));
      await Promise.all(Array.from({ length: 10 }, (_, i) => store.ledger.append(usage(i))));
      // A mark only the kept row carries, to see which one a query read.
      const pool = rawPool(url);
      await pool.query('UPDATE usage_daily SET credits = 0');
      await pool.query('UPDATE usage_daily SET credits = 12345 WHERE ctid = (SELECT MIN(ctid) FROM usage_daily)');
      expect((await store.ledger.daily({ accountId: 'acc_a', from: '2026-11-25', to: '2026-11-26' }))[0]?.credits).toBe(12345);
      expect((await store.ledger.daily({}))[0]?.credits).toBe(12345);
      expect((await store.ledger.daily({ from: '2026-11-25T00:00:00+00:00' }))[0]?.credits).toBe(12345);
      expect((await store.ledger.daily({ accountId: 'acc_a', from: '2026-11-25T06:00:00.000Z' }))[0]).toMatchObject({ requests: 10, credits: 150 });
    });

    it('totals the records a database already holds when it migrates, once', async () => {
      const url = await freshDatabase(server.url);
      const pool = rawPool(url);
      await migrate(pool, migrations.slice(0, 5));
      for (let i = 0; i < 40; i++) {
        const r = spread(i);
        await pool.query(
          `INSERT INTO usage_records (request_id, account_id, key_id, model, surface, prompt_tokens, output_tokens, credits, status, http_status, created_at)
           VALUES ($1, $2, 'key_a', $3, $4, $5, $6, $7, 'ok', 200, $8)`,
          [r.requestId, r.accountId, r.model, r.surface, r.promptTokens, r.outputTokens, r.credits, r.createdAt],
        );
      }
      // 7 finds the per-session form in place and changes nothing.
      expect(await migrate(pool)).toEqual([6, 7, 8, 9, 10, 11, 12, 13]);
      expect((await pool.query(KEPT)).rows).toEqual((await pool.query(GROUPED)).rows);
      const store = track(await openPostgresStorage(url));
      await Promise.all(Array.from({ length: 40 }, (_, i) => store.ledger.append(spread(40 + i))));
      expect((await pool.query(KEPT)).rows).toEqual((await pool.query(GROUPED)).rows);
      // Records from before migration 11 name no provider; those after it name theirs.
      const providers = (await store.ledger.query({ limit: 100 })).map((r) => r.provider);
      expect(providers.filter((p) => p === null)).toHaveLength(40);
      expect(providers.filter((p) => p === 'openai')).toHaveLength(40);
    });

    it("gives a database that took migration 6's first form (rows shared by every session) rows per session, totals kept (migration 7)", async () => {
      const url = await freshDatabase(server.url);
      const pool = rawPool(url);
      const firstForm = { ...migrations[5]!, sql: readFileSync(new URL('./migration-6-first-form.test.sql', import.meta.url), 'utf8') };
      await migrate(pool, [...migrations.slice(0, 5), firstForm]);
      // The first form's trigger keeps these (two statements: one shared row is added to twice).
      for (const part of [0, 1]) {
        const rows = Array.from({ length: 20 }, (_, i) => spread(part * 20 + i));
        await pool.query(
          `INSERT INTO usage_records (request_id, account_id, key_id, model, surface, prompt_tokens, output_tokens, credits, status, http_status, created_at)
           SELECT * FROM json_to_recordset($1) AS r(request_id text, account_id text, key_id text, model text, surface text, prompt_tokens bigint, output_tokens bigint, credits bigint, status text, http_status integer, created_at timestamptz)`,
          [JSON.stringify(rows.map((r) => ({ request_id: r.requestId, account_id: r.accountId, key_id: 'key_a', model: r.model, surface: r.surface, prompt_tokens: r.promptTokens, output_tokens: r.outputTokens, credits: r.credits, status: 'ok', http_status: 200, created_at: r.createdAt })))],
        );
      }
      expect((await pool.query(KEPT)).rows).toEqual((await pool.query(GROUPED)).rows);
      expect(await migrate(pool)).toEqual([7, 8, 9, 10, 11, 12, 13]);
      const key = (await pool.query(`SELECT string_agg(a.attname, ',' ORDER BY k.ord) AS cols
        FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = 'usage_daily'::regclass AND i.indisprimary`)).rows[0].cols;
      expect(key).toBe('account_id,day,model,surface,backend');
      expect((await pool.query(KEPT)).rows).toEqual((await pool.query(GROUPED)).rows);
      // Two instances append the same accounts at once: each session adds to rows of its own.
      const stores = [track(await openPostgresStorage(url)), track(await openPostgresStorage(url))];
      await Promise.all(Array.from({ length: 80 }, (_, i) => stores[i % 2]!.ledger.append(spread(40 + i))));
      expect((await pool.query(KEPT)).rows).toEqual((await pool.query(GROUPED)).rows);
      expect(Number((await pool.query('SELECT COUNT(DISTINCT backend) AS n FROM usage_daily WHERE backend <> 0')).rows[0].n)).toBeGreaterThanOrEqual(2);
    });
  });

  it('round-trips credits past the 32-bit range', async () => {
    const store = track(await openPostgresStorage(await freshDatabase(server.url)));
    const big = 2 ** 40 + 7;
    await store.ledger.append(usage(0, { credits: big }));
    await store.ledger.append(usage(1, { credits: big }));
    expect((await store.ledger.query({}))[0]?.credits).toBe(big);
    expect((await store.ledger.daily({}))[0]?.credits).toBe(2 * big);
  });

  it('refuses a url that is not postgres://', async () => {
    await expect(openPostgresStorage('sqlite::memory:')).rejects.toThrow(/not a postgres/);
  });
});
