import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { counterStoreContract } from '../contract/counters.contract.js';
import type { CounterOp } from '../counters.js';
import { SqliteCounterStore, openSqliteCounterStore } from './counters.js';
import { openDatabase, openSqliteStorage, sqliteDatabaseOf, sqlitePath } from './index.js';
import { writerFor } from './writer.js';
import { StorageUnavailableError } from '../ports.js';
import { migrate, migrations } from './migrations.js';
import { allCheckpointersStopped } from './checkpointer.js';

const dir = mkdtempSync(join(tmpdir(), 'tollgate-counters-'));
let n = 0;
const freshUrl = () => `sqlite:${join(dir, `c${++n}.db`)}`;

// The workers of closed databases remove their -wal and -shm files as they exit: wait for them,
// or the removal races them (ENOTEMPTY).
afterAll(async () => {
  await allCheckpointersStopped();
  rmSync(dir, { recursive: true, force: true });
});

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
  const read = (url: string, key: string) => {
    const db = new Database(sqlitePath(url), { readonly: true });
    try {
      return db.prepare('SELECT value FROM counters WHERE key = ?').pluck().get(key) as number | undefined;
    } finally {
      db.close();
    }
  };

  it("keeps settled values across close and reopen (a restart keeps today's usage and the balance)", async () => {
    const url = freshUrl();
    const a = openSqliteCounterStore(url);
    await a.add('balance:acc_1', 1000, null);
    const ops: CounterOp[] = [
      credits(300, 10_000),
      { key: 'balance:acc_1', amount: -300, min: 0, settle: 'actual', expiresAt: null },
    ];
    expect(await a.reserve('done', ops, T0 + 60_000, T0)).toMatchObject({ ok: true, values: [300, 700] });
    expect(await a.settle('done', 120)).toBe(true);
    expect(await a.reserve('in-flight', ops, T0 + 60_000, T0)).toMatchObject({ ok: true, values: [420, 580] });
    await a.close();
    await a.close(); // idempotent

    // The in-flight hold died with its process: only settled amounts are on file.
    const b = openSqliteCounterStore(url);
    expect(await b.get(['day:acc_1:2026-11-25:credits', 'balance:acc_1'], T0)).toEqual([120, 880]);
    expect(await b.settle('in-flight', 50)).toBe(false);
    await b.close();
  });

  it('keeps a settled request count across a restart, as it keeps credits (a restart does not hand out another day of requests)', async () => {
    const url = freshUrl();
    const a = openSqliteCounterStore(url);
    const ops: CounterOp[] = [
      { key: 'day:acc_1:2026-11-25:m:requests', amount: 1, max: 10, settle: 'keep', expiresAt: END_OF_DAY },
      { key: 'acc_1:concurrent', amount: 1, max: 1, settle: 'return', expiresAt: null },
      credits(300, 10_000),
    ];
    for (const id of ['r1', 'r2']) {
      expect(await a.reserve(id, ops, T0 + 60_000, T0)).toMatchObject({ ok: true });
      expect(await a.settle(id, 20)).toBe(true);
    }
    await a.close();
    const b = openSqliteCounterStore(url);
    expect(await b.get(['day:acc_1:2026-11-25:m:requests', 'acc_1:concurrent', 'day:acc_1:2026-11-25:credits'], T0)).toEqual([2, 0, 40]);
    await b.close();
  });

  it('has a settlement and a top-up on file by the time they resolve, and a reservation never', async () => {
    const url = freshUrl();
    const store = openSqliteCounterStore(url);
    await store.add('balance:acc_1', 500, null);
    expect(read(url, 'balance:acc_1')).toBe(500);
    await store.reserve('r1', [credits(300, 10_000)], T0 + 60_000, T0);
    expect(read(url, 'day:acc_1:2026-11-25:credits')).toBeUndefined();
    await store.settle('r1', 42);
    expect(read(url, 'day:acc_1:2026-11-25:credits')).toBe(42);
    await store.reserve('r2', [credits(300, 10_000)], T0 + 60_000, T0);
    await store.release('r2');
    expect(read(url, 'day:acc_1:2026-11-25:credits')).toBe(42);
    await store.close();
  });

  it('group-commits settlements that arrive together', async () => {
    const url = freshUrl();
    const store = openSqliteCounterStore(url);
    const n = 200;
    for (let i = 0; i < n; i++) expect(await store.reserve(`r${i}`, [credits(10, 100_000)], T0 + 60_000, T0)).toMatchObject({ ok: true });
    const before = store.writeStats().flushes;
    await Promise.all(Array.from({ length: n }, (_, i) => store.settle(`r${i}`, 7)));
    const stats = store.writeStats();
    expect(stats.written).toBe(n);
    expect(stats.flushes - before).toBeLessThan(5);
    expect(read(url, 'day:acc_1:2026-11-25:credits')).toBe(7 * n);
    await store.close();
  });

  it("shares the storage's connection: a settlement and its ledger row commit in one transaction", async () => {
    const url = freshUrl();
    const storage = openSqliteStorage(url);
    const store = openSqliteCounterStore(url, storage);
    expect(await store.reserve('r1', [credits(10, 100)], T0 + 60_000, T0)).toMatchObject({ ok: true });
    const before = store.writeStats();
    await Promise.all([
      store.settle('r1', 7),
      storage.ledger.append({
        requestId: 'r1', accountId: 'acc_1', keyId: null, model: 'm', surface: 'api', promptTokens: 1,
        outputTokens: 1, credits: 7, status: 'ok', httpStatus: 200, createdAt: new Date(T0).toISOString(), provider: 'openai',
      }),
    ]);
    const after = store.writeStats();
    expect(after.flushes - before.flushes).toBe(1);
    expect(after.written - before.written).toBe(2);
    expect(read(url, 'day:acc_1:2026-11-25:credits')).toBe(7);
    expect(await storage.ledger.query({ accountId: 'acc_1' })).toHaveLength(1);
    await store.close();
    await storage.close();
  });

  it('writes a settlement with the same expiry as an update of the value alone, and still merges a new expiry', async () => {
    const url = freshUrl();
    const store = openSqliteCounterStore(url);
    const row = (key: string) => {
      const db = new Database(sqlitePath(url), { readonly: true });
      try {
        return db.prepare('SELECT value, expires_at FROM counters WHERE key = ?').get(key);
      } finally {
        db.close();
      }
    };
    const key = 'day:acc_1:2026-11-25:credits';
    await store.add(key, 5, END_OF_DAY); // new row: the upsert
    await store.add(key, 7, END_OF_DAY); // same expiry: the update
    expect(row(key)).toEqual({ value: 12, expires_at: END_OF_DAY });
    await store.add(key, 1, END_OF_DAY - 1); // an earlier expiry never shortens the row's
    expect(row(key)).toEqual({ value: 13, expires_at: END_OF_DAY });
    await store.add(key, 1, END_OF_DAY + 5); // a later one lengthens it
    expect(row(key)).toEqual({ value: 14, expires_at: END_OF_DAY + 5 });
    await store.add(key, 1, null); // never expiring wins…
    expect(row(key)).toEqual({ value: 15, expires_at: null });
    await store.add(key, 1, END_OF_DAY); // …and stays
    await store.add(key, 1, null); // same (null) expiry: the update
    expect(row(key)).toEqual({ value: 17, expires_at: null });
    await store.close();
  });

  it('reads a counter it has not loaded from the file, and a refusal leaves no counter behind', async () => {
    const url = freshUrl();
    const writer = openSqliteCounterStore(url);
    await writer.add('day:acc_1:2026-11-25:credits', 990, END_OF_DAY);
    await writer.close();
    const store = openSqliteCounterStore(url);
    expect(await store.get(['day:acc_1:2026-11-25:credits'], T0)).toEqual([990]);
    expect(await store.reserve('big', [credits(11, 1000)], T0 + 60_000, T0)).toEqual({ ok: false, failed: 0, value: 990 });
    expect(await store.reserve('fits', [credits(10, 1000)], T0 + 60_000, T0)).toMatchObject({ ok: true, values: [1000] });
    await store.close();
  });

  it('lets an idle counter that never expires go from memory and loads it again as it was (a balance), never one a live reservation holds', async () => {
    const url = freshUrl();
    const store = openSqliteCounterStore(url);
    await store.claimServer({ applyEveryMs: 60_000 });
    const balance = (amount: number): CounterOp => ({ key: 'balance:acc_1', amount: -amount, min: 0, settle: 'actual', expiresAt: null });
    const slot: CounterOp = { key: 'conc:acc_2', amount: 1, max: 1, settle: 'return', expiresAt: null };
    await store.add('balance:acc_1', 1000, null);
    expect(await store.reserve('spent', [balance(300)], T0 + 60_000, T0)).toMatchObject({ ok: true, values: [700] });
    await store.settle('spent', 120); // 880 left, in the pending log only (applied every minute here)
    expect(await store.reserve('long', [slot], T0 + 3_600_000, T0)).toMatchObject({ ok: true });
    const held = store.held;
    await store.sweep(T0 + 1);
    expect(store.held).toBe(held);
    await store.sweep(T0 + 2);
    // The balance, idle for a whole sweep, went; the slot a stream still holds did not.
    expect(store.held).toBe(held - 1);
    expect(await store.get(['balance:acc_1'], T0 + 3)).toEqual([880]);
    // Loaded again from the file (its logged settlement applied first): exactly what it held.
    expect(await store.reserve('too-much', [balance(881)], T0 + 60_000, T0 + 3)).toMatchObject({ ok: false, value: 880 });
    expect(await store.reserve('all', [balance(880)], T0 + 60_000, T0 + 3)).toMatchObject({ ok: true, values: [0] });
    expect(await store.reserve('second', [slot], T0 + 60_000, T0 + 3)).toMatchObject({ ok: false });
    await store.close();
  });

  it('keeps an idle balance in memory while the log takes no writes (disk full): its held change is only there', async () => {
    const url = freshUrl();
    const storage = openSqliteStorage(url);
    const store = openSqliteCounterStore(url, storage);
    await store.claimServer({ applyEveryMs: 60_000, onWriteError: () => {} });
    const balance = (amount: number): CounterOp => ({ key: 'balance:acc_1', amount: -amount, min: 0, settle: 'actual', expiresAt: null });
    await store.add('balance:acc_1', 1000, null);
    const log = (writerFor(sqliteDatabaseOf(storage)!.db) as unknown as { log: { append(ops: unknown): void } }).log;
    const append = log.append.bind(log);
    log.append = () => {
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    };
    expect(await store.reserve('spent', [balance(300)], T0 + 60_000, T0)).toMatchObject({ ok: true });
    await store.settle('spent', 300); // 700, held in memory: the log refuses it
    const held = store.held;
    await store.sweep(T0 + 1);
    await store.sweep(T0 + 2);
    await store.sweep(T0 + 3);
    expect(store.held).toBe(held);
    expect(await store.get(['balance:acc_1'], T0 + 4)).toEqual([700]);
    // Space again: once the held writes are in the log, the idle balance may go, and reloads as 700.
    log.append = append;
    await new Promise((r) => setTimeout(r, 400));
    await store.sweep(T0 + 5);
    await store.sweep(T0 + 6);
    expect(store.held).toBe(held - 1);
    expect(await store.get(['balance:acc_1'], T0 + 7)).toEqual([700]);
    await store.close();
    await storage.close();
    expect(read(url, 'balance:acc_1')).toBe(700);
  });

  it('forgets expired counters in memory and on file together', async () => {
    const url = freshUrl();
    const store = openSqliteCounterStore(url);
    await store.reserve('r', [credits(5, 100)], T0 + 60_000, T0);
    await store.settle('r', 5);
    expect(await store.sweep(END_OF_DAY)).toBe(0);
    expect(read(url, 'day:acc_1:2026-11-25:credits')).toBeUndefined();
    expect(await store.get(['day:acc_1:2026-11-25:credits'], END_OF_DAY)).toEqual([0]);
    await store.close();
  });

  it('with the pending log on, a sweep logs its deletion behind the settlements instead of writing on the event loop', async () => {
    const url = freshUrl();
    const key = 'day:acc_1:2026-11-25:credits';
    const before = openSqliteCounterStore(url);
    await before.add(key, 5, END_OF_DAY);
    await before.close();
    const store = openSqliteCounterStore(url);
    await store.claimServer({ applyEveryMs: 60_000 });
    await store.add('balance', 9, null);
    // Another connection holds the write lock (as the file's worker does while it applies): a sweep
    // that wrote here would wait on it with the event loop blocked, and this lock is never let go then.
    const other = openDatabase(url);
    other.prepare('BEGIN IMMEDIATE').run();
    expect(await store.sweep(END_OF_DAY)).toBe(0);
    other.prepare('COMMIT').run();
    other.close();
    // Forgotten now, though the row (on file, with nothing of its own in the log) waits for the
    // logged deletion: a reload starts from 0.
    expect(await store.get([key], END_OF_DAY)).toEqual([0]);
    expect(await store.add(key, 2, END_OF_DAY + 86_400_000)).toBe(2);
    await store.close();
    expect(read(url, key)).toBe(2);
    expect(read(url, 'balance')).toBe(9);
  });

  it('a log that takes no writes (disk full): served requests keep their writes, new ones are refused until it recovers', async () => {
    const url = freshUrl();
    const storage = openSqliteStorage(url);
    const store = openSqliteCounterStore(url, storage);
    const errors: unknown[] = [];
    await store.claimServer({ applyEveryMs: 60_000, onWriteError: (err) => errors.push(err) });
    expect(await store.reserve('r1', [credits(300, 10_000)], T0 + 60_000, T0)).toMatchObject({ ok: true });
    // The disk fills up: every append throws, as write(2) does with ENOSPC.
    const log = (writerFor(sqliteDatabaseOf(storage)!.db) as unknown as { log: { append(ops: unknown): void } }).log;
    const append = log.append.bind(log);
    log.append = () => {
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    };
    // The request was served: its settlement and ledger row resolve (held, not dropped, not a 500).
    const record = { requestId: 'r1', accountId: 'acc_1', keyId: null, model: 'm', surface: 'api' as const, promptTokens: 1, outputTokens: 1, credits: 120, status: 'ok' as const, httpStatus: 200, createdAt: new Date(T0).toISOString(), provider: 'openai' };
    await Promise.all([store.settle('r1', 120), storage.ledger.append(record)]);
    expect(errors).toHaveLength(1);
    // No new request while its record could not be kept.
    await expect(store.reserve('r2', [credits(1, 10_000)], T0 + 60_000, T0)).rejects.toBeInstanceOf(StorageUnavailableError);
    // Space again: the held writes are appended on the next retry, and requests are admitted.
    log.append = append;
    await new Promise((r) => setTimeout(r, 400));
    expect(await store.reserve('r2', [credits(1, 10_000)], T0 + 60_000, T0)).toMatchObject({ ok: true });
    await store.release('r2');
    await store.close();
    await storage.close();
    expect(read(url, credits(0, 0).key)).toBe(120);
    const db = new Database(sqlitePath(url), { readonly: true });
    expect(db.prepare('SELECT credits FROM usage_records WHERE request_id = ?').pluck().get('r1')).toBe(120);
    db.close();
  });

  it('a server whose file another took over lets go of the pending log: the new holder loses nothing', async () => {
    const url = freshUrl();
    const key = 'day:acc_1:2026-11-25:credits';
    const a = openSqliteCounterStore(url);
    const lostA: unknown[] = [];
    await a.claimServer({ heartbeatMs: 40, applyEveryMs: 60_000, onLost: (h) => lostA.push(h) });
    await a.add(key, 1, END_OF_DAY); // in A's log
    // B takes the file (its clock says A's heartbeat is stale, as after A stalled) and opens a fresh log.
    const b = openSqliteCounterStore(url);
    await b.claimServer({ heartbeatMs: 40, applyEveryMs: 60_000, now: () => Date.now() + 60_000 });
    await b.add(key, 10, END_OF_DAY);
    // A notices at its next heartbeat and lets go of the files without applying or removing them.
    await new Promise((r) => setTimeout(r, 150));
    expect(lostA).toHaveLength(1);
    await expect(a.reserve('late', [credits(1, 10_000)], T0 + 60_000, T0)).rejects.toBeInstanceOf(StorageUnavailableError);
    await a.close();
    // B's log survived A's close, and so does everything B writes after it.
    await b.add(key, 100, END_OF_DAY);
    await b.close();
    expect(read(url, key)).toBe(111);
  });

  it('a stalled server that resumes after a takeover keeps the writes it makes before its heartbeat notices', async () => {
    const url = freshUrl();
    const key = 'day:acc_1:2026-11-25:credits';
    const balance = 'tg:{acc_1}:balance';
    const debit = (amount: number): CounterOp => ({ key: balance, amount: -amount, min: 0, settle: 'actual', expiresAt: null });
    let stalledFor = 0;
    const clock = () => Date.now() + stalledFor;
    const a = openSqliteCounterStore(url);
    const lostA: unknown[] = [];
    // A's heartbeat timer does not run in this test: after a SIGSTOP, the I/O that waited (upstream
    // answers, so settlements) runs before the overdue timer does.
    await a.claimServer({ heartbeatMs: 60_000, applyEveryMs: 60_000, now: clock, onLost: (h) => lostA.push(h) });
    await a.add(key, 1, END_OF_DAY); // in A's log: B replays it
    await a.add(balance, 1000, null);
    // In flight when A stalls: 300 credits held on the day and on the prepaid balance.
    expect(await a.reserve('in-flight', [credits(300, 10_000), debit(300)], T0 + 60_000, T0)).toMatchObject({ ok: true });
    stalledFor = 10 * 60_000;
    const b = openSqliteCounterStore(url);
    await b.claimServer({ heartbeatMs: 40, applyEveryMs: 60_000, now: clock });
    await b.add(key, 10, END_OF_DAY);
    // B holds both counters in memory, as it does once it serves the account.
    expect(await b.reserve('look', [debit(1)], T0 + 60_000, T0)).toMatchObject({ ok: true, values: [999] });
    await b.release('look');
    // A resumes: the request in flight settles, and another write follows. Appended to the log file
    // B replayed and removed, they were lost; they are committed to the tables instead.
    await a.settle('in-flight', 250);
    await a.add(key, 100, END_OF_DAY);
    expect(lostA).toHaveLength(1);
    await expect(a.reserve('late', [credits(1, 10_000)], T0 + 60_000, T0)).rejects.toBeInstanceOf(StorageUnavailableError);
    await a.close();
    // B's own counters take A's late charges within a heartbeat: it admitted as if they had not
    // happened (11 credits used and 1,000 left, until it restarted).
    await new Promise((r) => setTimeout(r, 200));
    expect(await b.get([key, balance], T0)).toEqual([361, 750]);
    expect(await b.reserve('over', [credits(40, 400)], T0 + 60_000, T0)).toEqual({ ok: false, failed: 0, value: 361 });
    expect(await b.reserve('overdrawn', [debit(751)], T0 + 60_000, T0)).toEqual({ ok: false, failed: 0, value: 750 });
    expect(await b.reserve('fits', [credits(39, 400), debit(750)], T0 + 60_000, T0)).toMatchObject({ ok: true, values: [400, 0] });
    await b.release('fits');
    await b.close();
    // Memory followed; the table was not written twice.
    expect(read(url, key)).toBe(361);
    expect(read(url, balance)).toBe(750);
  });

  it('after a takeover, a late write to a counter the new holder loads before taking it counts once', async () => {
    const url = freshUrl();
    const key = 'day:acc_1:2026-11-25:credits';
    let stalledFor = 0;
    const clock = () => Date.now() + stalledFor;
    const a = openSqliteCounterStore(url);
    await a.claimServer({ heartbeatMs: 60_000, applyEveryMs: 60_000, now: clock });
    await a.add(key, 1, END_OF_DAY);
    stalledFor = 10 * 60_000;
    const b = openSqliteCounterStore(url);
    await b.claimServer({ heartbeatMs: 40, applyEveryMs: 60_000, now: clock });
    await a.add(key, 100, END_OF_DAY); // late: on file, not yet taken by B
    // B loads the counter now, before its heartbeat takes the row (no timer runs in between): the
    // row's amount is left out, and added when taken.
    expect(await b.reserve('r', [credits(5, 1000)], T0 + 60_000, T0)).toMatchObject({ ok: true, values: [6] });
    await new Promise((r) => setTimeout(r, 200));
    expect(await b.get([key], T0)).toEqual([106]);
    await b.settle('r', 5);
    await a.close();
    await b.close();
    expect(read(url, key)).toBe(106);
    // A server starting later finds nothing left to take, and the same value.
    const c = openSqliteCounterStore(url);
    await c.claimServer({ heartbeatMs: 40 });
    expect(await c.get([key], T0)).toEqual([106]);
    await c.close();
  });

  it('late writes no server took before it stopped are cleared by the next holder, counted once', async () => {
    const url = freshUrl();
    const key = 'day:acc_1:2026-11-25:credits';
    const db = openDatabase(url);
    // As a server that lost the file leaves them: the change in counters, and its row.
    db.prepare('INSERT INTO counters (key, value, expires_at) VALUES (?, 42, ?)').run(key, END_OF_DAY);
    db.prepare('INSERT INTO late_counter_writes (key, amount, expires_at) VALUES (?, 40, ?)').run(key, END_OF_DAY);
    db.close();
    const store = openSqliteCounterStore(url);
    await store.claimServer({ heartbeatMs: 40 });
    expect(await store.reserve('r', [credits(1, 1000)], T0 + 60_000, T0)).toMatchObject({ ok: true, values: [43] });
    await new Promise((r) => setTimeout(r, 150));
    expect(await store.get([key], T0)).toEqual([43]);
    await store.close();
  });

  it("a top-up by a process that does not hold the file (the CLI) reaches the holder's memory, and counts once", async () => {
    const url = freshUrl();
    const key = 'balance:acc_1';
    const debit = (amount: number): CounterOp => ({ key, amount: -amount, min: 0, settle: 'actual', expiresAt: null });
    const server = openSqliteCounterStore(url);
    await server.claimServer({ heartbeatMs: 40 });
    await server.add(key, 10, null);
    expect(await server.reserve('a', [debit(10)], T0 + 60_000, T0)).toMatchObject({ ok: true, values: [0] });
    await server.settle('a', 10); // the server now holds the emptied balance in memory
    const cli = openSqliteCounterStore(url);
    expect(await cli.add(key, 500, null)).toBe(500);
    await cli.close();
    // Before: the server went on refusing on the balance it held until it restarted.
    await new Promise((r) => setTimeout(r, 200));
    expect(await server.reserve('b', [debit(500)], T0 + 60_000, T0)).toMatchObject({ ok: true, values: [0] });
    await server.settle('b', 0);
    expect(await server.get([key], T0)).toEqual([500]);
    await server.close();
    expect(read(url, key)).toBe(500);
    // With no server holding the file, the next one to claim it clears the row: counted once.
    const idle = openSqliteCounterStore(url);
    await idle.add(key, 7, null);
    await idle.close();
    const next = openSqliteCounterStore(url);
    await next.claimServer({ heartbeatMs: 40 });
    await new Promise((r) => setTimeout(r, 150));
    expect(await next.get([key], T0)).toEqual([507]);
    await next.close();
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

  it('migration 4 gives back the reservations an earlier version left in the file', () => {
    const db = new Database(':memory:');
    migrate(db, migrations.slice(0, 3));
    const counter = db.prepare('INSERT INTO counters (key, value, expires_at) VALUES (?, ?, ?)');
    counter.run('day:acc_1:credits', 700, END_OF_DAY); // 100 settled + 600 held by two live rows
    counter.run('tg:{acc_1}:balance', 400, null); // 1000 topped up − 600 held
    counter.run('untouched', 9, null);
    const row = db.prepare('INSERT INTO reservations (id, ops, expires_at) VALUES (?, ?, ?)');
    row.run('a', JSON.stringify([['day:acc_1:credits', 200, 'actual', 1], ['tg:{acc_1}:balance', -200, 'actual', -1]]), T0);
    row.run('b', JSON.stringify([['day:acc_1:credits', 400, 'actual', 1], ['tg:{acc_1}:balance', -400, 'actual', -1]]), T0);
    expect(migrate(db, migrations.slice(0, 4))).toEqual([4]);
    expect(db.prepare('SELECT key, value FROM counters ORDER BY key').all()).toEqual([
      { key: 'day:acc_1:credits', value: 100 },
      { key: 'tg:{acc_1}:balance', value: 1000 },
      { key: 'untouched', value: 9 },
    ]);
    expect(db.prepare("SELECT COUNT(*) FROM sqlite_master WHERE name = 'reservations'").pluck().get()).toBe(0);
    db.close();
  });

  it('sweeps through the expiry index, not a scan', () => {
    const db = openDatabase('sqlite::memory:');
    const plan = (sql: string) =>
      (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(0) as { detail: string }[]).map((r) => r.detail).join('; ');
    expect(plan('DELETE FROM counters WHERE expires_at <= ?')).toMatch(/USING.*INDEX counters_expires_at/);
    db.close();
  });
});
