import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { checkpointerStopped, fileWorker, WAL_SIZE_LIMIT, WORKER_NICE } from './checkpointer.js';
import { openDatabase } from './index.js';
import { SqliteWriter } from './writer.js';

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

  it('truncates a WAL grown past the limit only from the worker, never from the serving connection', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tg-ckpt-'));
    dirs.push(dir);
    const path = join(dir, 'tollgate.db');
    const db = openDatabase(`sqlite:${path}`);
    const walSize = () => statSync(`${path}-wal`).size;
    /** Checkpoints (here: the test decides when) and returns the frames the WAL holds. */
    const checkpoint = () => (db.pragma('wal_checkpoint(PASSIVE)') as { log: number; checkpointed: number }[])[0]!;
    /**
     * Runs `write` once the whole WAL is checkpointed, so that it restarts the WAL from the start
     * (and, with a journal_size_limit, truncates it); tries again if another connection's read or
     * checkpoint was in the way and it only appended.
     */
    const restartWith = async (write: () => Promise<void>) => {
      for (let attempt = 0; attempt < 50; attempt++) {
        await expect.poll(() => {
          const { log, checkpointed } = checkpoint();
          return log === checkpointed;
        }, { timeout: 10_000 }).toBe(true);
        await write();
        // Restarted: the WAL holds this write's few pages, not the ~17,000 before them.
        if (checkpoint().log < 10) return;
      }
      throw new Error('the WAL was never restarted');
    };
    try {
      // Truncation frees the file's blocks, which a filesystem mounted with `discard` trims inside
      // ftruncate (90–150 ms measured): never on the thread that serves requests.
      expect(db.pragma('journal_size_limit', { simple: true })).toBe(-1);
      db.exec('CREATE TABLE blobs (b BLOB)');
      const insert = db.prepare('INSERT INTO blobs VALUES (randomblob(1048576))');
      db.transaction(() => {
        for (let i = 0; i < WAL_SIZE_LIMIT / 1048576 + 4; i++) insert.run();
      })();
      expect(walSize()).toBeGreaterThan(WAL_SIZE_LIMIT);

      await restartWith(async () => void db.exec('INSERT INTO blobs VALUES (NULL)'));
      expect(walSize()).toBeGreaterThan(WAL_SIZE_LIMIT);

      // A write the worker applies (the pending log's) restarts it from the worker's connection.
      const writer = new SqliteWriter(db);
      writer.define('blob', [{ sql: 'INSERT INTO blobs VALUES (NULL)' }]);
      await writer.useLog(path, { applyEveryMs: 1 });
      expect(fileWorker(path)).toBeDefined();
      let applied = 0;
      await restartWith(async () => {
        await writer.write(['blob', []]);
        // No read here (a read that waits too long applies the log itself): the worker's turn comes.
        applied++;
        await expect.poll(() => writer.logStats(), { timeout: 20_000 }).toMatchObject({ here: 0, byWorker: applied });
      });
      expect(walSize()).toBeLessThanOrEqual(WAL_SIZE_LIMIT);
      await writer.closeLog();
    } finally {
      db.close();
      await checkpointerStopped(path);
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
