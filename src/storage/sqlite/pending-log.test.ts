import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { openDatabase } from './index.js';
import { PendingLog, pendingLogPath } from './pending-log.js';
import { writeRunner } from './apply-writes.js';
import { SqliteWriter } from './writer.js';
import { allCheckpointersStopped, fileWorker } from './checkpointer.js';

const dir = mkdtempSync(join(tmpdir(), 'tollgate-pending-'));
let n = 0;
// The workers of closed databases remove their -wal and -shm files as they exit: wait for them,
// or the removal races them (ENOTEMPTY).
afterAll(async () => {
  await allCheckpointersStopped();
  rmSync(dir, { recursive: true, force: true });
});

/** A migrated database with a test table, and a writer whose `add` writes add to a row. */
function open(path: string, opts: { onError?: (err: unknown) => void } = {}) {
  const db = openDatabase(`sqlite:${path}`);
  db.exec('CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v INTEGER NOT NULL CHECK (v < 1000))');
  const writer = new SqliteWriter(db);
  writer.define('add', [{ sql: 'INSERT INTO t (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = v + excluded.v' }], { keyed: true });
  const useLog = (applyEveryMs = 60_000) => writer.useLog(path, { applyEveryMs, onError: opts.onError });
  return { db, writer, useLog };
}

/** The last line numbers of the batches the file's worker reports applied, as they come. */
function appliedReplies(path: string): number[] {
  const upTos: number[] = [];
  fileWorker(path)!.on('message', (m: { type: string; upTo: number }) => {
    if (m.type === 'applied') upTos.push(m.upTo);
  });
  return upTos;
}

const value = (db: Database.Database, k: string) => db.prepare('SELECT v FROM t WHERE k = ?').pluck().get(k) as number | undefined;
const fresh = () => join(dir, `p${++n}.db`);

describe('pending log', () => {
  it('a write resolves once it is in the log; readers see it after sync()', async () => {
    const path = fresh();
    const { db, writer, useLog } = open(path);
    await useLog();
    await writer.write(['add', ['a', 5]], ['add', ['b', 1]]);
    expect(readFileSync(pendingLogPath(path), 'utf8')).toMatch(/^\[1,\[\["add",\["a",5\]\],\["add",\["b",1\]\]\]\]\n$/);
    expect(value(db, 'a')).toBeUndefined(); // not applied yet
    writer.sync();
    expect(value(db, 'a')).toBe(5);
    expect(readFileSync(pendingLogPath(path), 'utf8')).toBe(''); // applied, so emptied
    await writer.closeLog();
    expect(existsSync(pendingLogPath(path))).toBe(false);
    db.close();
  });

  it('syncFor() applies the log only when a write it names is waiting', async () => {
    const path = fresh();
    const { db, writer, useLog } = open(path);
    await useLog();
    await writer.write(['add', ['b', 1]]);
    writer.syncFor('add', 'a'); // nothing for `a` waits: no transaction
    expect(value(db, 'b')).toBeUndefined();
    writer.syncFor('add', 'b');
    expect(value(db, 'b')).toBe(1);
    await writer.closeLog();
    db.close();
  });

  it('applies on its own after applyEveryMs', async () => {
    const path = fresh();
    const { db, writer, useLog } = open(path);
    await useLog(20);
    await writer.write(['add', ['a', 2]]);
    // The file's worker applies it, once it has started (loading SQLite in a thread takes a moment).
    await vi.waitFor(() => expect(value(db, 'a')).toBe(2), { timeout: 5000 });
    await writer.closeLog();
    db.close();
  });

  it('the file worker applies a due batch; the serving thread seals the log and goes on in a fresh one', async () => {
    const path = fresh();
    const { db, writer, useLog } = open(path);
    const applied = appliedReplies(path);
    await useLog(10);
    await writer.write(['add', ['a', 2]], ['add', ['b', 1]]);
    await vi.waitFor(() => expect(applied).toContain(1), { timeout: 5000 });
    expect([value(db, 'a'), value(db, 'b')]).toEqual([2, 1]);
    expect(existsSync(`${pendingLogPath(path)}.sealed`)).toBe(false); // removed once applied
    expect(readFileSync(pendingLogPath(path), 'utf8')).toBe('');
    await writer.write(['add', ['a', 3]]);
    expect(readFileSync(pendingLogPath(path), 'utf8')).toMatch(/^\[2,/); // numbering goes on
    await vi.waitFor(() => expect(value(db, 'a')).toBe(5), { timeout: 5000 });
    await writer.closeLog();
    db.close();
  });

  it('a read that can wait (caughtUp) has the worker apply the log at once, and nothing is applied on the serving thread', async () => {
    const path = fresh();
    const { db, writer, useLog } = open(path);
    await useLog(); // applyEveryMs 60 s: only the read makes the batch due
    await writer.write(['add', ['a', 2]]);
    await writer.caughtUp(); // the test's timeout is far below applyEveryMs
    expect(value(db, 'a')).toBe(2);
    expect(writer.logStats()).toMatchObject({ here: 0, byWorker: 1 });
    // Writes appended while the worker holds a batch: the read waits for the next one, sent at once.
    await writer.write(['add', ['a', 1]]);
    const first = writer.caughtUp();
    await writer.write(['add', ['a', 4]]);
    await Promise.all([first, writer.caughtUp()]);
    expect(value(db, 'a')).toBe(7);
    expect(writer.logStats()!.here).toBe(0);
    await writer.caughtUp(); // nothing waits: resolves at once
    await writer.closeLog();
    db.close();
  });

  it('a waiting read whose worker does not answer in time is served by applying on this thread', async () => {
    const path = fresh();
    const db = openDatabase(`sqlite:${path}`);
    db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)');
    const kinds = { add: [{ sql: 'INSERT INTO t (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = v + excluded.v' }] };
    const posted: unknown[] = [];
    // A worker that takes batches and never replies, as one starved of CPU would.
    const mute = Object.assign(new EventEmitter(), { postMessage: (m: unknown) => posted.push(m) }) as unknown as Worker;
    const log = new PendingLog(db, path, writeRunner(db, kinds), kinds, new Set(), { applyEveryMs: 60_000, worker: mute });
    log.append([['add', ['a', 3]]]);
    const started = performance.now();
    await log.whenApplied(50);
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
    expect(posted).toHaveLength(1); // it was asked first
    expect(value(db, 'a')).toBe(3);
    expect(log.applied).toEqual({ here: 1, byWorker: 0 });
    log.close();
    db.close();
  });

  it('under a stream of writes, every batch goes to the worker: none is applied on the serving thread', async () => {
    const path = fresh();
    const { db, writer, useLog } = open(path);
    await useLog(2);
    // Batches come due while the previous one is still in the worker (it has not even started at first).
    for (let i = 0; i < 300; i++) {
      await writer.write(['add', [`k${i % 5}`, 1]]);
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    await vi.waitFor(() => expect(value(db, 'k0')).toBe(60), { timeout: 5000 });
    const applies = writer.logStats()!;
    expect(applies.here).toBe(0);
    expect(applies.byWorker).toBeGreaterThan(0);
    await writer.closeLog();
    expect([0, 1, 2, 3, 4].map((k) => value(db, `k${k}`))).toEqual([60, 60, 60, 60, 60]);
    db.close();
  });

  it('a sync() while the worker holds the same batch: whichever applies second skips it (exactly once)', async () => {
    const path = fresh();
    const { db, writer, useLog } = open(path);
    const applied = appliedReplies(path);
    await useLog(1);
    // Another connection holds the write lock: the worker gets the batch but waits to apply it.
    const other = openDatabase(`sqlite:${path}`);
    other.exec('BEGIN IMMEDIATE');
    await writer.write(['add', ['a', 1]], ['add', ['b', 2]]);
    await vi.waitFor(() => expect(existsSync(`${pendingLogPath(path)}.sealed`)).toBe(true), { timeout: 2000 });
    await writer.write(['add', ['a', 10]]); // after the seal: in the fresh log
    other.exec('ROLLBACK');
    other.close();
    writer.sync(); // a reader applies everything, the sealed batch included, on this thread
    expect([value(db, 'a'), value(db, 'b')]).toEqual([11, 2]);
    await vi.waitFor(() => expect(applied).toContain(1), { timeout: 8000 });
    expect([value(db, 'a'), value(db, 'b')]).toEqual([11, 2]); // the worker skipped what was applied
    expect(existsSync(`${pendingLogPath(path)}.sealed`)).toBe(false);
    await writer.closeLog();
    expect([value(db, 'a'), value(db, 'b')]).toEqual([11, 2]);
    db.close();
  });

  it('takes over from a worker far behind, but never waits for the lock that worker holds', async () => {
    const path = fresh();
    const errors: unknown[] = [];
    const { db, writer } = open(path, { onError: (err) => errors.push(err) });
    // A worker that takes the batch and never answers: the real one, once the lock below is let
    // go, could apply the rest itself before this thread's next append tried (under a loaded CPU
    // it sometimes did, and nothing was left to take over).
    const mute = Object.assign(new EventEmitter(), { postMessage: () => {} }) as unknown as Worker;
    await writer.useLog(path, { applyEveryMs: 1, applyAtOps: 2, onError: (err) => errors.push(err), worker: mute });
    // Another connection of this thread holds the write lock, as the lagging worker does. A
    // takeover that waited for it (the busy timeout is 5 s) would block this thread, which is the
    // only one that can let it go, and end in SQLITE_BUSY.
    const other = openDatabase(`sqlite:${path}`);
    other.exec('BEGIN IMMEDIATE');
    await writer.write(['add', ['a', 1]]);
    await vi.waitFor(() => expect(existsSync(`${pendingLogPath(path)}.sealed`)).toBe(true), { timeout: 2000 });
    // 10 × applyAtOps waiting behind the batch in flight: every later append tries to take over.
    for (let i = 0; i < 40; i++) {
      await writer.write(['add', ['a', 1]]);
      await new Promise((r) => setTimeout(r, 2));
    }
    expect(value(db, 'a')).toBeUndefined();
    expect(errors).toEqual([]);
    other.exec('ROLLBACK');
    other.close();
    // Lock free: the next append past the threshold applies everything here.
    await vi.waitFor(
      async () => {
        await writer.write(['add', ['b', 1]]);
        expect(value(db, 'a')).toBe(41);
      },
      { timeout: 5000 },
    );
    expect(writer.logStats()!.here).toBeGreaterThan(0);
    expect(errors).toEqual([]);
    await writer.closeLog();
    expect(value(db, 'a')).toBe(41);
    db.close();
  });

  it('when the worker is gone, the serving thread applies on its own', async () => {
    const path = fresh();
    const { db, writer, useLog } = open(path);
    await useLog(10);
    await fileWorker(path)!.terminate();
    await writer.write(['add', ['a', 4]]);
    await vi.waitFor(() => expect(value(db, 'a')).toBe(4), { timeout: 2000 });
    await writer.closeLog();
    db.close();
  });

  it('a crash while a sealed part waited: the next start replays it before the log, exactly once', async () => {
    const path = fresh();
    const first = open(path);
    await first.useLog();
    await first.writer.closeLog();
    first.db.close();
    // Line 1 was sealed for the worker, line 2 appended after it; neither applied.
    writeFileSync(`${pendingLogPath(path)}.sealed`, '[1,[["add",["a",1]]]]\n');
    writeFileSync(pendingLogPath(path), '[2,[["add",["a",10]]]]\n');
    const second = open(path);
    await second.useLog();
    expect(value(second.db, 'a')).toBe(11);
    expect(existsSync(`${pendingLogPath(path)}.sealed`)).toBe(false);
    await second.writer.write(['add', ['a', 100]]);
    expect(readFileSync(pendingLogPath(path), 'utf8')).toMatch(/^\[3,/);
    await second.writer.closeLog();
    expect(value(second.db, 'a')).toBe(111);
    second.db.close();
  });

  it('after a crash, the next start replays what was logged, exactly once', async () => {
    const path = fresh();
    const first = open(path);
    await first.useLog();
    await first.writer.write(['add', ['a', 3]]);
    await first.writer.write(['add', ['a', 4]]);
    first.db.close(); // "crash": nothing applied, the log stays

    const second = open(path);
    await second.useLog();
    expect(value(second.db, 'a')).toBe(7);
    await second.writer.closeLog();
    second.db.close();

    const third = open(path);
    await third.useLog();
    expect(value(third.db, 'a')).toBe(7);
    await third.writer.closeLog();
    third.db.close();
  });

  it('a crash between applying and emptying the log replays nothing twice', async () => {
    const path = fresh();
    const first = open(path);
    await first.useLog();
    await first.writer.write(['add', ['a', 3]]);
    const logged = readFileSync(pendingLogPath(path));
    first.writer.sync(); // applied (and the position stored with it)…
    writeFileSync(pendingLogPath(path), logged); // …but the truncation "never happened"
    first.db.close();

    const second = open(path);
    await second.useLog();
    expect(value(second.db, 'a')).toBe(3);
    // Numbering goes on after the applied position, so new lines are not mistaken for old ones.
    await second.writer.write(['add', ['a', 1]]);
    second.db.close();
    const third = open(path);
    await third.useLog();
    expect(value(third.db, 'a')).toBe(4);
    await third.writer.closeLog();
    third.db.close();
  });

  it('a crash between applying and emptying the log, with later lines behind it: only those are replayed', async () => {
    const path = fresh();
    const first = open(path);
    await first.useLog();
    await first.writer.write(['add', ['a', 3]]);
    const applied = readFileSync(pendingLogPath(path), 'utf8');
    first.writer.sync(); // line 1 applied, its position stored with it
    await first.writer.write(['add', ['a', 4]]);
    const waiting = readFileSync(pendingLogPath(path), 'utf8');
    expect(waiting).not.toContain(applied);
    // The truncation "never happened": the applied line is still in the log, ahead of line 2.
    writeFileSync(pendingLogPath(path), applied + waiting);
    first.db.close();

    const second = open(path);
    await second.useLog();
    expect(value(second.db, 'a')).toBe(7);
    await second.writer.closeLog();
    second.db.close();
  });

  it('drops a line torn by a crash mid-write (it was never acknowledged)', async () => {
    const path = fresh();
    const first = open(path);
    await first.useLog();
    await first.writer.write(['add', ['a', 3]]);
    first.db.close();
    writeFileSync(pendingLogPath(path), `${readFileSync(pendingLogPath(path), 'utf8')}[2,[["add",["a",10`, { flag: 'w' });

    const second = open(path);
    await second.useLog();
    expect(value(second.db, 'a')).toBe(3);
    await second.writer.closeLog();
    second.db.close();
  });

  it('a write the table refuses is reported and skipped; the rest of the batch applies', async () => {
    const path = fresh();
    const errors: unknown[] = [];
    const { db, writer, useLog } = open(path, { onError: (err) => errors.push(err) });
    await useLog();
    await writer.write(['add', ['a', 1]], ['add', ['b', 5000]], ['add', ['c', 2]]); // b breaks the CHECK
    writer.sync();
    expect([value(db, 'a'), value(db, 'b'), value(db, 'c')]).toEqual([1, undefined, 2]);
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toMatch(/CHECK constraint failed/);
    await writer.closeLog();
    db.close();
  });

  it('a transient failure (busy, disk) loses nothing: the batch stays logged and applies on the next try', async () => {
    const path = fresh();
    const errors: unknown[] = [];
    const { db, writer, useLog } = open(path, { onError: (err) => errors.push(err) });
    await useLog();
    await writer.write(['add', ['a', 1]], ['add', ['b', 2]]);
    // Another connection holds the write lock, and this one does not wait for it.
    const other = openDatabase(`sqlite:${path}`);
    other.exec('BEGIN IMMEDIATE');
    db.pragma('busy_timeout = 0');
    writer.sync();
    expect([value(db, 'a'), value(db, 'b')]).toEqual([undefined, undefined]);
    expect(errors).toHaveLength(1);
    expect((errors[0] as { code?: string }).code).toBe('SQLITE_BUSY');
    expect(readFileSync(pendingLogPath(path), 'utf8')).not.toBe(''); // still in the file
    other.exec('ROLLBACK');
    other.close();
    writer.sync();
    expect([value(db, 'a'), value(db, 'b')]).toEqual([1, 2]);
    await writer.closeLog();
    db.close();
  });

  it("closing after another server took the file leaves that server's log alone", async () => {
    const path = fresh();
    const { db, writer } = open(path);
    let owner = true;
    await writer.useLog(path, { applyEveryMs: 60_000, owns: () => owner });
    await writer.write(['add', ['a', 1]]);
    // Another server took over (this one stalled): it replayed the old file and writes its own by
    // the same name.
    owner = false;
    rmSync(pendingLogPath(path));
    writeFileSync(pendingLogPath(path), 'the new holder\n');
    await writer.closeLog();
    expect(readFileSync(pendingLogPath(path), 'utf8')).toBe('the new holder\n');
    db.close();
  });

  it('without the log (no server lease), writes commit directly as before', async () => {
    const path = fresh();
    const { db, writer } = open(path);
    await writer.write(['add', ['a', 9]]);
    expect(value(db, 'a')).toBe(9);
    expect(existsSync(pendingLogPath(path))).toBe(false);
    db.close();
  });
});
