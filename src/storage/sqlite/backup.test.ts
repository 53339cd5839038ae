import { closeSync, existsSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { BackupTargetError, backupDatabase } from './backup.js';
import { allCheckpointersStopped } from './checkpointer.js';
import { openSqliteStorage } from './index.js';
import { DatabaseOpenError } from '../open-error.js';

const dir = mkdtempSync(join(tmpdir(), 'tollgate-backup-'));
afterAll(async () => {
  await allCheckpointersStopped();
  rmSync(dir, { recursive: true, force: true });
});

describe('backupDatabase', () => {
  it('copies what the tables hold while a writer keeps writing, as one checked file', async () => {
    const file = join(dir, 'live.db');
    const storage = openSqliteStorage(`sqlite:${file}`);
    const first = await storage.accounts.create({ id: 'acct_first', email: 'a@example.com', plan: 'free', createdAt: '2026-12-06T00:00:00.000Z' });
    // Another connection writes between the backup's steps (the server beside `tollgate backup`).
    const writer = new Database(file);
    const insert = writer.prepare("INSERT INTO accounts (id, email, plan, created_at) VALUES (?, NULL, 'free', '2026-12-06T00:00:00.000Z')");
    let n = 0;
    const timer = setInterval(() => insert.run(`acct_w${n++}`), 1);
    const target = join(dir, 'copy.db');
    const done = await backupDatabase(file, target);
    clearInterval(timer);
    writer.close();
    expect(done).toMatchObject({ path: target, pendingLeftOut: false });
    expect(done.bytes).toBeGreaterThan(0);
    // One file: no -wal or -shm beside it.
    expect(existsSync(`${target}-wal`)).toBe(false);
    expect(existsSync(`${target}-shm`)).toBe(false);
    const copy = new Database(target, { readonly: true });
    expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
    const ids = copy.prepare('SELECT id FROM accounts').pluck().all() as string[];
    copy.close();
    expect(ids).toContain(first.id);
    // A consistent snapshot: the writer's rows it holds are a prefix of what was written.
    const written = ids.filter((id) => id.startsWith('acct_w')).map((id) => Number(id.slice(6)));
    expect(written).toEqual(written.map((_, i) => i));
    await storage.close();
  });

  it('never overwrites a file, nor backs up a file that is not there', async () => {
    const taken = join(dir, 'taken.db');
    writeFileSync(taken, 'keep me');
    const file = join(dir, 'src.db');
    const storage = openSqliteStorage(`sqlite:${file}`);
    await expect(backupDatabase(file, taken)).rejects.toBeInstanceOf(BackupTargetError);
    await expect(backupDatabase(join(dir, 'typo.db'), join(dir, 'out.db'))).rejects.toBeInstanceOf(DatabaseOpenError);
    expect(existsSync(join(dir, 'typo.db'))).toBe(false);
    expect(existsSync(join(dir, 'out.db'))).toBe(false);
    await storage.close();
  });

  it('blames the copy, not the database, when the copy cannot be written', async () => {
    const file = join(dir, 'sound.db');
    const storage = openSqliteStorage(`sqlite:${file}`);
    await storage.close();
    // A "directory" that is a file.
    const plain = join(dir, 'plain-file');
    writeFileSync(plain, '');
    await expect(backupDatabase(file, join(plain, 'x.db'))).rejects.toThrow(
      new BackupTargetError(join(plain, 'x.db'), `cannot be made: there is no directory ${plain}`),
    );
    // A path SQLite cannot open once the copy starts (as a full disk fails it): a link to nowhere.
    const nowhere = join(dir, 'nowhere.db');
    symlinkSync(join(dir, 'missing', 'x.db'), nowhere);
    const err = await backupDatabase(file, nowhere).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackupTargetError);
    expect((err as Error).message).toBe(`${nowhere} cannot be made from ${file}: unable to open database file`);
    // What is wrong with the source is still said of the source.
    const text = join(dir, 'text.db');
    writeFileSync(text, 'not a database, though it has a name like one'.repeat(10));
    await expect(backupDatabase(text, join(dir, 'from-text.db'))).rejects.toThrow(`cannot open the SQLite database ${text}: file is not a database`);
  });

  it('keeps no copy that fails its check, and says why as an operator error (no stack trace)', async () => {
    const file = join(dir, 'damaged.db');
    const db = new Database(file);
    db.exec('CREATE TABLE t (a TEXT); CREATE INDEX ti ON t(a);');
    const insert = db.prepare('INSERT INTO t VALUES (?)');
    db.transaction(() => {
      for (let i = 0; i < 5000; i++) insert.run(`row ${i} ${'x'.repeat(50)}`);
    })();
    db.close();
    // Garbage over the middle of a b-tree page: the file opens, and a page for page copy holds it too.
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(200, 0x41), 0, 200, 4096 * 40 + 100);
    closeSync(fd);
    const target = join(dir, 'damaged-copy.db');
    const err = await backupDatabase(file, target).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackupTargetError);
    expect((err as Error).message).toMatch(new RegExp(`^${target} was not kept: the copy failed SQLite's quick_check, so ${file} itself is damaged: `));
    expect(existsSync(target)).toBe(false);
  });

  it('says when the pending log holds writes the copy lacks', async () => {
    const file = join(dir, 'pending.db');
    const storage = openSqliteStorage(`sqlite:${file}`);
    await storage.close();
    // An empty log (a running server's, between applies) holds nothing the copy lacks.
    writeFileSync(`${file}-pending`, '');
    expect((await backupDatabase(file, join(dir, 'pending-empty.db'))).pendingLeftOut).toBe(false);
    writeFileSync(`${file}-pending`, '{"n":1}\n');
    expect((await backupDatabase(file, join(dir, 'pending-copy.db'))).pendingLeftOut).toBe(true);
  });
});
