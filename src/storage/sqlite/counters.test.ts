import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { counterStoreContract } from '../contract/counters.contract.js';
import type { CounterOp } from '../counters.js';
import { SqliteCounterStore, openSqliteCounterStore } from './counters.js';
import { openDatabase } from './index.js';
import { migrate, migrations } from './migrations.js';

const dir = mkdtempSync(join(tmpdir(), 'tollgate-counters-'));
let n = 0;
const freshUrl = () => `sqlite:${join(dir, `c${++n}.db`)}`;

afterAll(() => rmSync(dir, { recursive: true, force: true }));

counterStoreContract('sqlite (memory)', () => openSqliteCounterStore('sqlite::memory:'));
counterStoreContract('sqlite (file)', () => openSqliteCounterStore(freshUrl()));

const T0 = Date.UTC(2026, 10, 25, 12);
const END_OF_DAY = Date.UTC(2026, 10, 26);
const credits = (amount: number, max: number): CounterOp => ({
  key: 'day:acc_1:2026-11-25:credits',
  amount,
  max,
  settle: 'actual',
  expiresAt: END_OF_DAY,
});

describe('sqlite counter store specifics', () => {
  it("keeps values and live reservations across close and reopen (a restart keeps today's usage and the balance)", async () => {
    const url = freshUrl();
    const a = openSqliteCounterStore(url);
    await a.add('balance:acc_1', 1000, null);
    const ops: CounterOp[] = [
      credits(300, 10_000),
      { key: 'balance:acc_1', amount: -300, min: 0, settle: 'actual', expiresAt: null },
    ];
    expect(await a.reserve('done', ops, T0 + 60_000, T0)).toMatchObject({ ok: true });
    expect(await a.settle('done', 120)).toBe(true);
    expect(await a.reserve('in-flight', ops, T0 + 60_000, T0)).toMatchObject({ ok: true, values: [420, 580] });
    await a.close();
    await a.close(); // idempotent

    const b = openSqliteCounterStore(url);
    expect(await b.get(['day:acc_1:2026-11-25:credits', 'balance:acc_1'], T0)).toEqual([420, 580]);
    expect(await b.settle('in-flight', 50)).toBe(true);
    expect(await b.get(['day:acc_1:2026-11-25:credits', 'balance:acc_1'], T0)).toEqual([170, 830]);
    await b.close();
  });

  it('gives back, after a restart, a reservation whose process died (TTL)', async () => {
    const url = freshUrl();
    const a = openSqliteCounterStore(url);
    await a.reserve('orphan', [credits(500, 1000)], T0 + 60_000, T0);
    await a.close();
    const b = openSqliteCounterStore(url);
    expect(await b.sweep(T0 + 60_000)).toBe(1);
    expect(await b.get(['day:acc_1:2026-11-25:credits'], T0 + 60_000)).toEqual([0]);
    await b.close();
  });

  it('never over-admits across two connections to one file (like two processes)', async () => {
    const url = freshUrl();
    const one = openSqliteCounterStore(url);
    const two = openSqliteCounterStore(url);
    const results = [];
    for (let i = 0; i < 500; i++) {
      const store = i % 2 === 0 ? one : two;
      results.push(await store.reserve(`r${i}`, [credits(37, 10_000)], T0 + 60_000, T0));
      // Settle some through the other connection, so each sees the other's writes both ways.
      if (i % 5 === 0 && results[i]?.ok) expect(await (store === one ? two : one).settle(`r${i}`, 37)).toBe(true);
    }
    const admitted = results.filter((r) => r.ok).length;
    expect(admitted).toBe(Math.floor(10_000 / 37));
    expect(await one.get(['day:acc_1:2026-11-25:credits'], T0)).toEqual([37 * admitted]);
    expect(await two.get(['day:acc_1:2026-11-25:credits'], T0)).toEqual([37 * admitted]);
    await one.close();
    await two.close();
  });

  it('shares a handle without closing it unless it owns it', async () => {
    const db = openDatabase('sqlite::memory:');
    const store = new SqliteCounterStore(db);
    expect(await store.add('a', 1, null)).toBe(1);
    await store.close();
    expect(db.open).toBe(true);
    await expect(store.add('a', 1, null)).rejects.toThrow(/closed/);
    expect(db.prepare('SELECT value FROM counters WHERE key = ?').pluck().get('a')).toBe(1);
    db.close();
  });

  it('migration 2 carries prepaid balances into counters and drops the column', () => {
    const db = new Database(':memory:');
    migrate(db, migrations.slice(0, 1));
    const insert = db.prepare(
      "INSERT INTO accounts (id, email, plan, balance, created_at) VALUES (?, NULL, 'paid', ?, '2026-11-25T00:00:00.000Z')",
    );
    insert.run('acc_rich', 1234);
    insert.run('acc_zero', 0);
    insert.run('acc_owing', -5);
    expect(migrate(db, migrations.slice(0, 2))).toEqual([2]);
    expect(db.prepare('SELECT key, value, expires_at FROM counters ORDER BY key').all()).toEqual([
      { key: 'tg:{acc_owing}:balance', value: -5, expires_at: null },
      { key: 'tg:{acc_rich}:balance', value: 1234, expires_at: null },
    ]);
    const columns = (db.prepare('PRAGMA table_info(accounts)').all() as { name: string }[]).map((c) => c.name);
    expect(columns).not.toContain('balance');
    expect(db.prepare('SELECT COUNT(*) FROM accounts').pluck().get()).toBe(3);
    db.close();
  });

  it('reserves through the expiry index, not a scan', () => {
    const db = openDatabase('sqlite::memory:');
    const plan = (sql: string) =>
      (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(0) as { detail: string }[]).map((r) => r.detail).join('; ');
    expect(plan('SELECT id, ops FROM reservations WHERE expires_at <= ?')).toMatch(/USING.*INDEX reservations_expires_at/);
    expect(plan('DELETE FROM counters WHERE expires_at <= ?')).toMatch(/USING.*INDEX counters_expires_at/);
    db.close();
  });
});
