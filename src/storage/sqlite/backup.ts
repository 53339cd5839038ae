// An online copy of the SQLite file (`tollgate backup`), safe beside a running server: SQLite's
// backup API copies a consistent snapshot page by page (https://www.sqlite.org/backup.html), where
// copying the file itself while the server writes can give a stale or corrupt copy. It needs no
// `sqlite3` binary (not installed with npm), and it never migrates: a newer Tollgate can back the
// file up before it upgrades it.
import { existsSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { DatabaseOpenError } from '../open-error.js';
import { pendingLogPath } from './pending-log.js';

export interface BackupResult {
  /** The copy's path and size. */
  path: string;
  bytes: number;
  /**
   * Writes the server had appended to its pending log but not yet applied to the tables, which the
   * copy does not hold: a running server's last `storage.pendingApplyMs`, or what one that did not
   * stop cleanly left (its next start applies them to the original, not to the copy).
   */
  pendingLeftOut: boolean;
}

/**
 * The copy was not made, or not kept: the file is there already, its directory is not, writing it
 * failed, or it failed its check.
 */
export class BackupTargetError extends Error {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(`${path} ${reason}`);
    this.name = 'BackupTargetError';
  }
}

/** Copies the database at `source` (a file path) to `target`, a file that must not exist yet. */
export async function backupDatabase(source: string, target: string): Promise<BackupResult> {
  if (existsSync(target)) throw new BackupTargetError(target, 'already exists: give a new file (a backup never overwrites one)');
  if (!existsSync(dirname(target)) || !statSync(dirname(target)).isDirectory()) {
    throw new BackupTargetError(target, `cannot be made: there is no directory ${dirname(target)}`);
  }
  // A mistyped path must not back up a new, empty database.
  if (!existsSync(source)) throw new DatabaseOpenError(`SQLite database ${source}`, new Error('no such file'));
  let db: Database.Database;
  try {
    db = new Database(source, { fileMustExist: true });
  } catch (err) {
    throw err instanceof Database.SqliteError ? new DatabaseOpenError(`SQLite database ${source}`, err) : err;
  }
  try {
    db.pragma('busy_timeout = 5000');
    // Read now, so that a file that is no database is said of the source, not of the copy below.
    try {
      db.pragma('schema_version', { simple: true });
    } catch (err) {
      throw err instanceof Database.SqliteError ? new DatabaseOpenError(`SQLite database ${source}`, err) : err;
    }
    // All pages in one step (after better-sqlite3's first, which copies none): a step copies a
    // snapshot while the server goes on writing to the WAL, but a write between steps restarts the
    // copy from the first page, and a server applies its pending log every 200 ms — a large file
    // copied 100 pages at a time (the default) could restart for ever.
    await db.backup(target, { progress: () => 0x7fffffff });
  } catch (err) {
    // The source opened: what fails now is mostly the copy's side (a full disk, a path SQLite
    // cannot open), which an error naming only the source sent the operator to a sound database.
    throw err instanceof Database.SqliteError ? new BackupTargetError(target, `cannot be made from ${source}: ${err.message}`) : err;
  } finally {
    db.close();
  }
  // The copy is checked before it is called one: a backup found broken on the day of a restore is none.
  const copy = new Database(target, { fileMustExist: true });
  let check: unknown;
  try {
    check = copy.pragma('quick_check', { simple: true });
    // One file, however the source was journaled: a restore is a single copy back.
    if (check === 'ok') copy.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    copy.close();
  }
  if (check !== 'ok') {
    // Not left where a backup is looked for (nor in the way of the next attempt): the copy is
    // page for page the source's, so the source itself is damaged.
    for (const file of [target, `${target}-wal`, `${target}-shm`]) rmSync(file, { force: true });
    throw new BackupTargetError(target, `was not kept: the copy failed SQLite's quick_check, so ${source} itself is damaged: ${String(check)}`);
  }
  const log = pendingLogPath(source);
  const holds = (file: string) => existsSync(file) && statSync(file).size > 0;
  return { path: target, bytes: statSync(target).size, pendingLeftOut: holds(log) || holds(`${log}.sealed`) };
}
