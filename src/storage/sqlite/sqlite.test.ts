import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { storageContract } from '../contract/storage.contract.js';
import { openDatabase, openSqliteStorage, sqliteDatabaseOf, sqlitePath } from './index.js';
import { dailySql, recordsSql } from './ledger.js';
import type { UsageQuery } from '../ports.js';
import { accountPageSql } from './accounts.js';
import { latestVersion, migrate, migrations, SchemaTooNewError } from './migrations.js';
import { allCheckpointersStopped } from './checkpointer.js';
import { writerFor } from './writer.js';

const dir = mkdtempSync(join(tmpdir(), 'tollgate-sqlite-'));
let n = 0;
/** A fresh file in a not-yet-existing subdirectory, so directory creation is exercised too. */
const freshUrl = () => `sqlite:${join(dir, `sub${++n}`, 'tollgate.db')}`;

// The workers of closed databases remove their -wal and -shm files as they exit: wait for them,
// or the removal races them (ENOTEMPTY).
afterAll(async () => {
  await allCheckpointersStopped();
  rmSync(dir, { recursive: true, force: true });
});

storageContract('sqlite (memory)', () => openSqliteStorage('sqlite::memory:'));
storageContract('sqlite (file)', () => openSqliteStorage(freshUrl()));
// Every ledger query of the suite then reads records on both sides of indexed_up_to (migration 9).
storageContract('sqlite (file, account index caught up every 3 records)', () => openSqliteStorage(freshUrl(), { ledger: { indexEvery: 3 } }));

describe('sqlite specifics', () => {
  const opened: Database.Database[] = [];
  afterEach(() => {
    for (const db of opened.splice(0)) if (db.open) db.close();
  });
  const track = (db: Database.Database) => (opened.push(db), db);

  it('parses storage urls', () => {
    expect(sqlitePath('sqlite::memory:')).toBe(':memory:');
    expect(sqlitePath('sqlite:./data/tollgate.db')).toBe('./data/tollgate.db');
    expect(() => sqlitePath('sqlite:')).toThrow(/names no file/);
    expect(() => sqlitePath('postgres://x')).toThrow(/not a sqlite/);
  });

  it('numbers migrations 1…n', () => {
    expect(migrations.map((m) => m.version)).toEqual(migrations.map((_, i) => i + 1));
    expect(latestVersion).toBe(migrations.length);
  });

  it('records migrations once and re-opens idempotently', () => {
    const url = freshUrl();
    const db = track(openDatabase(url));
    const rows = () =>
      db.prepare('SELECT version, name, applied_at FROM schema_migrations ORDER BY version').all() as {
        version: number;
        name: string;
        applied_at: string;
      }[];
    const first = rows();
    expect(first.map((r) => r.version)).toEqual(migrations.map((m) => m.version));
    for (const r of first) expect(r.applied_at).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    db.close();

    const again = track(openDatabase(url));
    expect(migrate(again)).toEqual([]);
    expect(again.prepare('SELECT version, name, applied_at FROM schema_migrations ORDER BY version').all()).toEqual(
      first,
    );
  });

  it('applies only the migrations a database lacks', () => {
    const db = track(new Database(':memory:'));
    const extra = { version: migrations.length + 1, name: 'test extra', sql: 'CREATE TABLE extra (x INTEGER)' };
    expect(migrate(db, migrations)).toEqual(migrations.map((m) => m.version));
    expect(migrate(db, [...migrations, extra])).toEqual([extra.version]);
    expect(migrate(db, [...migrations, extra])).toEqual([]);
  });

  it('rolls back a failing migration as a whole', () => {
    const db = track(new Database(':memory:'));
    migrate(db);
    const bad = { version: migrations.length + 1, name: 'bad', sql: 'CREATE TABLE half (x); SELECT * FROM missing_table;' };
    expect(() => migrate(db, [...migrations, bad])).toThrow(/missing_table/);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'half'").get()).toBeUndefined();
    expect(db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get()).toEqual({ v: latestVersion });
  });

  it('refuses a database with a newer schema version', () => {
    const url = freshUrl();
    const db = openDatabase(url);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
      latestVersion + 1,
      'from the future',
      new Date().toISOString(),
    );
    db.close();
    expect(() => openSqliteStorage(url)).toThrow(SchemaTooNewError);
    expect(() => openSqliteStorage(url)).toThrow(
      new RegExp(`schema version ${latestVersion + 1} is newer than this Tollgate knows \\(${latestVersion}\\)`),
    );
  });

  it('keeps data across close and reopen of a file', async () => {
    const url = freshUrl();
    const a = openSqliteStorage(url);
    await a.accounts.create({ id: 'acc_1', email: 'a@b.c', plan: 'paid', createdAt: '2026-11-25T00:00:00.000Z' });
    await a.keys.create({
      id: 'key_1',
      accountId: 'acc_1',
      name: 'k',
      prefix: 'tg-ab',
      hash: 'h1',
      createdAt: '2026-11-25T00:00:00.000Z',
    });
    await a.ledger.append({
      requestId: 'r1',
      accountId: 'acc_1',
      keyId: 'key_1',
      model: 'm',
      surface: 'api',
      promptTokens: 1,
      outputTokens: 2,
      credits: 3,
      status: 'ok',
      httpStatus: 200,
      createdAt: '2026-11-25T10:00:00.000Z',
      provider: 'openai',
    });
    expect(await a.sharedSecret('web.sessionSecret', () => 'made at the first start')).toBe('made at the first start');
    await a.close();
    await a.close(); // idempotent

    const b = openSqliteStorage(url);
    expect((await b.accounts.get('acc_1'))?.plan).toBe('paid');
    expect((await b.keys.findByHash('h1'))?.id).toBe('key_1');
    expect(await b.ledger.daily({ accountId: 'acc_1' })).toMatchObject([{ day: '2026-11-25', credits: 3 }]);
    expect(await b.sharedSecret('web.sessionSecret', () => 'made at the second')).toBe('made at the first start');
    await b.close();
  });

  it('runs in WAL mode with the gateway pragmas', () => {
    const db = track(openDatabase(freshUrl()));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(1); // NORMAL
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.pragma('busy_timeout', { simple: true })).toBe(5000);
  });

  it('fails ping after close', async () => {
    const s = openSqliteStorage('sqlite::memory:');
    await s.ping();
    await s.close();
    await expect(s.ping()).rejects.toThrow();
  });

  it('answers ledger and account-listing queries from an index, not by scanning the table', () => {
    const db = track(openDatabase(freshUrl()));
    migrate(db);
    const plan = (sql: string, params: Record<string, unknown>) =>
      (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all({ limit: 10, ...params }) as Array<{ detail: string }>).map((r) => r.detail).join('; ');
    // The admin listing of accounts: every shape walks an index in its order, none sorts the table.
    for (const suspended of [false, true]) {
      for (const before of [false, true]) {
        const p = plan(accountPageSql(suspended, before), before ? { beforeAt: '2026-11-25T00:00:00.000Z', beforeId: 'acct_x' } : {});
        expect(p).toMatch(suspended ? /accounts USING INDEX accounts_suspended/ : /accounts USING INDEX accounts_created/);
        if (before) expect(p).toMatch(/SEARCH accounts USING INDEX \w+ \(\(created_at,id\)<\(\?,\?\)\)/);
        expect(p).not.toMatch(/TEMP B-TREE/);
      }
    }
    const day = { from: '2026-11-25T00:00:00.000Z', to: '2026-11-26T00:00:00.000Z' };
    // Whole days: dailySql reads the totals kept per day (migration 11), not one row per record.
    for (const q of [{ accountId: 'a' }, { accountId: 'a', ...day }]) {
      const p = plan(dailySql(q), q);
      expect(p).toMatch(/SEARCH usage_daily USING PRIMARY KEY \(account_id=\?/);
      expect(p).toMatch(/SEARCH usage_records USING INTEGER PRIMARY KEY \(rowid>\?\)/);
      expect(p).not.toMatch(/usage_records_by_account|SCAN usage_records\b|SCAN usage_daily\b|usage_records USING INTEGER PRIMARY KEY \(rowid=\?\)/);
    }
    expect(plan(dailySql({ accountId: 'a', ...day }), { accountId: 'a', ...day })).toMatch(/SEARCH usage_daily USING PRIMARY KEY \(account_id=\? AND day>\? AND day<\?\)/);
    expect(plan(dailySql(day), day)).toMatch(/SEARCH usage_daily USING INDEX usage_daily_day \(day>\? AND day<\?\)/);
    expect(plan(dailySql(day), day)).not.toMatch(/SCAN usage_records\b/);
    // Records, and daily totals over a range that cuts a day: an account's are a seek on
    // usage_records_by_account, each record by its rowid, and the unindexed tail as a rowid range;
    // every account's, the created_at index. Never a scan.
    const hours = { from: '2026-11-25T06:00:00.000Z', to: '2026-11-25T18:00:00.000Z' };
    const cases: Array<[(q: UsageQuery) => string, Record<string, string>]> = [[recordsSql, {}], [recordsSql, day], [dailySql, hours]];
    for (const [build, range] of cases) {
      const q = { accountId: 'a', ...range };
      const p = plan(build(q), q);
      // (dailySql names the two tables a and r.)
      expect(p).toMatch(/SEARCH (usage_records_by_account|a) USING PRIMARY KEY \(account_id=\?/);
      expect(p).toMatch(/SEARCH (usage_records|r) USING INTEGER PRIMARY KEY \(rowid=\?\)/);
      expect(p).toMatch(/SEARCH usage_records USING INTEGER PRIMARY KEY \(rowid>\?\)/);
      expect(p).not.toMatch(/SCAN (usage_records|a|r)\b/);
      if (range.from === undefined) continue;
      expect(p).toMatch(/SEARCH (usage_records_by_account|a) USING PRIMARY KEY \(account_id=\? AND created_at>\? AND created_at<\?\)/);
      expect(plan(build(range), range)).toMatch(/SEARCH usage_records USING INDEX usage_records_created \(created_at>\? AND created_at<\?\)/);
    }
  });

  it('indexes the records of a file by account when it migrates it, and every indexEvery records after', async () => {
    const url = freshUrl();
    const old = track(openDatabase(url));
    // A file at version 8: the migrations after it undone.
    old.prepare('DELETE FROM schema_migrations WHERE version >= 9').run();
    old.exec(`DROP TRIGGER usage_index_catch_up; DROP TABLE usage_index_state; DROP TABLE usage_records_by_account; DROP TABLE usage_daily;
      CREATE INDEX usage_records_account_created ON usage_records(account_id, created_at); DROP TABLE late_counter_writes;
      DROP INDEX accounts_created; DROP INDEX accounts_suspended; ALTER TABLE accounts DROP COLUMN suspended_at; ALTER TABLE accounts DROP COLUMN suspended_reason;
      DROP TRIGGER api_keys_changed; ALTER TABLE api_keys DROP COLUMN limit_credits; ALTER TABLE api_keys DROP COLUMN limit_window;
      ALTER TABLE api_keys DROP COLUMN expires_at; ALTER TABLE api_keys DROP COLUMN models;
      CREATE TRIGGER api_keys_changed AFTER UPDATE OF account_id, hash, revoked_at ON api_keys BEGIN UPDATE credentials_version SET v = v + 1; END;
      ALTER TABLE usage_records DROP COLUMN provider; DROP TABLE top_ups; DROP TABLE shared_secrets;`);
    const insert = old.prepare(`INSERT INTO usage_records (request_id, account_id, key_id, model, surface, prompt_tokens,
      output_tokens, credits, status, http_status, created_at, day) VALUES (?, ?, NULL, 'm', 'api', 1, 1, ?, 'ok', 200, ?, '2026-11-25')`);
    for (let i = 0; i < 5; i++) insert.run(`r${i}`, i % 2 ? 'acc_b' : 'acc_a', i, `2026-11-25T10:00:0${i}.000Z`);
    old.close();

    const s = openSqliteStorage(url, { ledger: { indexEvery: 2 } });
    const { db } = sqliteDatabaseOf(s)!;
    const indexed = () => db.prepare('SELECT indexed_up_to FROM usage_index_state').pluck().get();
    const entries = () => db.prepare('SELECT COUNT(*) FROM usage_records_by_account').pluck().get();
    expect([indexed(), entries()]).toEqual([5, 5]);
    expect(db.prepare("SELECT COUNT(*) FROM sqlite_master WHERE name = 'usage_records_account_created'").pluck().get()).toBe(0);
    // Migration 11 totalled the records the catch-up had indexed, per account and day.
    const totals = () => db.prepare('SELECT account_id, requests, credits FROM usage_daily ORDER BY account_id').all();
    expect(totals()).toEqual([{ account_id: 'acc_a', requests: 3, credits: 6 }, { account_id: 'acc_b', requests: 2, credits: 4 }]);

    const record = (i: number) => ({
      requestId: `n${i}`, accountId: 'acc_a', keyId: null, model: 'm', surface: 'api' as const, promptTokens: 1,
      outputTokens: 1, credits: 10, status: 'ok' as const, httpStatus: 200, createdAt: `2026-11-25T11:00:0${i}.000Z`, provider: 'openai',
    });
    await s.ledger.append(record(0));
    expect([indexed(), entries()]).toEqual([5, 5]); // one record past the last catch-up
    await s.ledger.append(record(1));
    expect([indexed(), entries()]).toEqual([7, 7]); // the second: caught up, both indexed
    expect(totals()).toEqual([{ account_id: 'acc_a', requests: 5, credits: 26 }, { account_id: 'acc_b', requests: 2, credits: 4 }]);
    await s.ledger.append(record(2));
    expect((await s.ledger.query({ accountId: 'acc_a' })).map((r) => r.requestId)).toEqual(['n2', 'n1', 'n0', 'r4', 'r2', 'r0']);
    expect((await s.ledger.query({ accountId: 'acc_a', limit: 2 })).map((r) => r.requestId)).toEqual(['n2', 'n1']);
    expect(await s.ledger.daily({ accountId: 'acc_a' })).toMatchObject([{ requests: 6, credits: 36 }]);
    await s.close();
  });

  // A start of this version before the fix failed on migration 11 after recording 10.
  it.each([['as that build left it', 9], ['after a start that failed on it', 10]])('opens a file that recorded the withdrawn migration 9 (unique request ids, shipped by e2f3b87), %s', async (_, upTo) => {
    const url = freshUrl();
    mkdirSync(dirname(sqlitePath(url)), { recursive: true });
    const old = track(new Database(sqlitePath(url)));
    // The schema of the builds that shipped it: migrations 1-8, then that 9, nothing after.
    const withdrawn9 = { version: 9, name: 'one ledger record per request', sql: 'CREATE UNIQUE INDEX usage_records_request ON usage_records(request_id);' };
    migrate(old, [...migrations.slice(0, 8), withdrawn9, ...migrations.slice(9, upTo)]);
    old.prepare(`INSERT INTO usage_records (request_id, account_id, key_id, model, surface, prompt_tokens,
      output_tokens, credits, status, http_status, created_at, day) VALUES ('r1', 'acc_a', NULL, 'm', 'api', 1, 1, 7, 'ok', 200,
      '2026-11-25T10:00:00.000Z', '2026-11-25')`).run();
    old.close();

    const s = openSqliteStorage(url);
    const { db } = sqliteDatabaseOf(s)!;
    expect(db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all()).toEqual(
      migrations.map((m) => ({ version: m.version, name: m.name })),
    );
    // Its index is gone, as on a file that never had it; today's migrations 9-11 indexed and totalled the record.
    expect(db.prepare("SELECT COUNT(*) FROM sqlite_master WHERE name = 'usage_records_request'").pluck().get()).toBe(0);
    expect(db.prepare('SELECT indexed_up_to FROM usage_index_state').pluck().get()).toBe(1);
    expect(await s.ledger.daily({ accountId: 'acc_a' })).toMatchObject([{ requests: 1, credits: 7 }]);
    await s.close();
  });

  it('a record a server logged before the provider column, left in the pending log by its crash, replays with no provider', async () => {
    const url = freshUrl();
    const path = sqlitePath(url);
    const before = openSqliteStorage(url);
    const { db } = sqliteDatabaseOf(before)!;
    // The file as a server before migration 15 kept it…
    db.exec('ALTER TABLE usage_records DROP COLUMN provider; DROP TABLE top_ups; DROP TABLE shared_secrets; DELETE FROM schema_migrations WHERE version >= 15;');
    const writer = writerFor(db);
    await writer.useLog(path, { applyEveryMs: 60_000 });
    // …and a record as that server logged it: the `ledger` write, twelve arguments, no provider.
    await writer.write(['ledger', ['r-old', 'acc_1', 'key_1', 'm', 'api', 1, 2, 3, 'ok', 200, '2026-11-25T10:00:00.000Z', '2026-11-25']]);
    db.close(); // the crash: nothing applied, the log stays

    const after = openSqliteStorage(url);
    const reopened = sqliteDatabaseOf(after)!.db;
    await writerFor(reopened).useLog(path, { applyEveryMs: 60_000 }); // as the server claiming the file: replays the log
    expect(reopened.prepare('SELECT request_id, provider FROM usage_records').all()).toEqual([{ request_id: 'r-old', provider: null }]);
    // A record of this version logged and left by a crash too replays with its provider.
    await after.ledger.append({
      requestId: 'r-new', accountId: 'acc_1', keyId: 'key_1', model: 'm', surface: 'api', promptTokens: 1, outputTokens: 2,
      credits: 3, status: 'ok', httpStatus: 200, createdAt: '2026-11-25T10:00:01.000Z', provider: 'backup',
    });
    reopened.close();

    const third = openSqliteStorage(url);
    await writerFor(sqliteDatabaseOf(third)!.db).useLog(path, { applyEveryMs: 60_000 });
    expect((await third.ledger.query({ accountId: 'acc_1' })).map((r) => [r.requestId, r.provider])).toEqual([
      ['r-new', 'backup'],
      ['r-old', null],
    ]);
    await writerFor(sqliteDatabaseOf(third)!.db).closeLog();
    await third.close();
  });

  it("takes a PostgreSQL cursor with microseconds as a time after every record of its millisecond", async () => {
    const store = await openSqliteStorage('sqlite::memory:');
    try {
      const rec = (requestId: string, createdAt: string) => ({
        requestId, accountId: 'acc_a', keyId: null, model: 'm', surface: 'api' as const, promptTokens: 1, outputTokens: 1,
        credits: 1, status: 'ok' as const, httpStatus: 200, createdAt, provider: null,
      });
      for (const [id, at] of [['a', '2026-11-25T12:00:00.001Z'], ['b', '2026-11-25T12:00:00.000Z'], ['c', '2026-11-25T12:00:00.000Z'], ['d', '2026-11-25T11:59:59.999Z']] as const) {
        await store.ledger.append(rec(id, at));
      }
      const before = Buffer.from('2026-11-25T12:00:00.000500Z|1').toString('base64url');
      for (const q of [{}, { accountId: 'acc_a' }]) {
        expect((await store.ledger.page({ ...q, before })).records.map((r) => r.requestId)).toEqual(['c', 'b', 'd']);
      }
    } finally {
      await store.close();
    }
  });

  it('rejects a timestamp bound without a zone rather than guessing', async () => {
    const s = openSqliteStorage('sqlite::memory:');
    await expect(s.ledger.query({ from: '2026-11-25T10:00:00' })).rejects.toThrow(RangeError);
    await s.close();
  });
});
