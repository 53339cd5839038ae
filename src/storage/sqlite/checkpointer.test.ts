import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { checkpointerStopped, WORKER_NICE } from './checkpointer.js';
import { openDatabase } from './index.js';

const dirs: string[] = [];
afterEach(() => {
  // The worker may still be finishing its last checkpoint of a just-closed file.
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

/** Rows of usage_records in the main database file alone, i.e. what checkpoints have copied out of the WAL. */
function rowsInMainFile(path: string): number {
  const copy = join(mkdtempSync(join(tmpdir(), 'tg-ckpt-copy-')), 'copy.db');
  dirs.push(join(copy, '..'));
  copyFileSync(path, copy);
  const db = new Database(copy, { readonly: true });
  try {
    return (db.prepare('SELECT COUNT(*) AS n FROM usage_records').get() as { n: number }).n;
  } catch {
    return 0; // not even the schema checkpointed yet
  } finally {
    db.close();
  }
}

/** The nice values of this process's threads (field 19 of /proc/<pid>/task/<tid>/stat). */
function threadNices(): number[] {
  return readdirSync('/proc/self/task').map((tid) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  });
}

describe('WAL checkpoints in a worker thread', () => {
  it.runIf(process.platform === 'linux')('runs the worker at its lower priority', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tg-ckpt-'));
    dirs.push(dir);
    const path = join(dir, 'tollgate.db');
    const before = threadNices().filter((n) => n === WORKER_NICE).length;
    const db = openDatabase(`sqlite:${path}`);
    try {
      await expect.poll(() => threadNices().filter((n) => n === WORKER_NICE).length).toBe(before + 1);
    } finally {
      db.close();
      await checkpointerStopped(path);
    }
  });

  it('turns the inline autocheckpoint off and still moves committed pages into the database file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tg-ckpt-'));
    dirs.push(dir);
    const path = join(dir, 'tollgate.db');
    const db = openDatabase(`sqlite:${path}`);
    try {
      expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
      const insert = db.prepare(
        `INSERT INTO usage_records (request_id, account_id, key_id, model, surface, prompt_tokens, output_tokens, credits, status, http_status, created_at, day)
         VALUES (?, 'acct', NULL, 'm', 'api', 1, 1, 1, 'ok', 200, '2026-11-25T00:00:00.000Z', '2026-11-25')`,
      );
      db.pragma('foreign_keys = OFF');
      for (let i = 0; i < 500; i++) insert.run(`r${i}`);
      // No commit on this thread checkpoints; the worker does, within a few of its ticks.
      const deadline = Date.now() + 5000;
      while (rowsInMainFile(path) < 500 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(rowsInMainFile(path)).toBe(500);
    } finally {
      db.close();
    }
  });

  it('shares one worker between connections to one file and survives closing them in any order', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tg-ckpt-'));
    dirs.push(dir);
    const url = `sqlite:${join(dir, 'tollgate.db')}`;
    const a = openDatabase(url);
    const b = openDatabase(url);
    a.close();
    b.prepare('SELECT 1').get();
    b.close();
    expect(() => b.close()).not.toThrow();
  });
});

describe('closing a store waits for the checkpoint worker', () => {
  it('leaves the directory with the database file alone once the last store has closed', async () => {
    const { readdirSync } = await import('node:fs');
    const { openSqliteStorage } = await import('./index.js');
    const { openSqliteCounterStore } = await import('./counters.js');
    const dir = mkdtempSync(join(tmpdir(), 'tg-ckpt-close-'));
    dirs.push(dir);
    const url = `sqlite:${join(dir, 'x.db')}`;
    const storage = openSqliteStorage(url);
    const counters = openSqliteCounterStore(url);
    await counters.add('k', 1, null);
    await storage.close();
    await counters.close();
    // The worker's final close removed -wal and -shm before close() resolved: nothing races a delete.
    expect(readdirSync(dir)).toEqual(['x.db']);
    rmSync(dir, { recursive: true });
  });
});
