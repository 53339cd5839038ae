import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { storageContract } from '../contract/storage.contract.js';
import { openDatabase, openSqliteStorage, sqlitePath } from './index.js';
import { dailySql, recordsSql } from './ledger.js';
import { latestVersion, migrate, migrations, SchemaTooNewError } from './migrations.js';
import { allCheckpointersStopped } from './checkpointer.js';

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
    });
    await a.close();
    await a.close(); // idempotent

    const b = openSqliteStorage(url);
    expect((await b.accounts.get('acc_1'))?.plan).toBe('paid');
    expect((await b.keys.findByHash('h1'))?.id).toBe('key_1');
    expect(await b.ledger.daily({ accountId: 'acc_1' })).toMatchObject([{ day: '2026-11-25', credits: 3 }]);
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

  it('answers ledger queries from an index, not by scanning the table', () => {
    const db = track(openDatabase(freshUrl()));
    migrate(db);
    const plan = (sql: string, params: Record<string, unknown>) =>
      (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all({ limit: 10, ...params }) as Array<{ detail: string }>).map((r) => r.detail).join('; ');
    const day = { from: '2026-11-25T00:00:00.000Z', to: '2026-11-26T00:00:00.000Z' };
    for (const build of [recordsSql, dailySql]) {
      // An account, with or without a range: a seek on (account_id, created_at).
      expect(plan(build({ accountId: 'a' }), { accountId: 'a' })).toMatch(/SEARCH usage_records USING INDEX usage_records_account_created \(account_id=\?\)/);
      expect(plan(build({ accountId: 'a', ...day }), { accountId: 'a', ...day })).toMatch(
        /SEARCH usage_records USING INDEX usage_records_account_created \(account_id=\? AND created_at>\? AND created_at<\?\)/,
      );
      // All accounts over a range (the admin API): the created_at index.
      expect(plan(build(day), day)).toMatch(/SEARCH usage_records USING INDEX usage_records_created \(created_at>\? AND created_at<\?\)/);
    }
  });

  it('rejects a timestamp bound without a zone rather than guessing', async () => {
    const s = openSqliteStorage('sqlite::memory:');
    await expect(s.ledger.query({ from: '2026-11-25T10:00:00' })).rejects.toThrow(RangeError);
    await s.close();
  });
});
