import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from './index.js';
import { pendingLogPath } from './pending-log.js';
import { SqliteWriter } from './writer.js';
import { allCheckpointersStopped } from './checkpointer.js';

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
  const upsert = db.prepare('INSERT INTO t (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = v + excluded.v');
  const writer = new SqliteWriter(db);
  writer.define('add', ([k, v]) => upsert.run(k, v));
  const useLog = (applyEveryMs = 60_000) => writer.useLog(path, { applyEveryMs, onError: opts.onError });
  return { db, writer, useLog };
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
    writer.syncFor('add', (args) => args[0] === 'a'); // nothing for `a` waits: no transaction
    expect(value(db, 'b')).toBeUndefined();
    writer.syncFor('add', (args) => args[0] === 'b');
    expect(value(db, 'b')).toBe(1);
    await writer.closeLog();
    db.close();
  });

  it('applies on its own after applyEveryMs', async () => {
    const path = fresh();
    const { db, writer, useLog } = open(path);
    await useLog(20);
    await writer.write(['add', ['a', 2]]);
    await new Promise((r) => setTimeout(r, 100));
    expect(value(db, 'a')).toBe(2);
    await writer.closeLog();
    db.close();
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
    const upsert = db.prepare('INSERT INTO t (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = v + excluded.v');
    let busy = true;
    writer.define('flaky', ([k, v]) => {
      if (busy) throw Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
      upsert.run(k, v);
    });
    await useLog();
    await writer.write(['add', ['a', 1]], ['flaky', ['b', 2]]);
    writer.sync();
    expect([value(db, 'a'), value(db, 'b')]).toEqual([undefined, undefined]); // the whole batch rolled back
    expect(errors).toHaveLength(1);
    expect(readFileSync(pendingLogPath(path), 'utf8')).not.toBe(''); // still in the file
    busy = false;
    writer.sync();
    expect([value(db, 'a'), value(db, 'b')]).toEqual([1, 2]);
    await writer.closeLog();
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
