// The SQLite store: one file (or memory) per gateway, better-sqlite3's synchronous calls wrapped in
// the async ports. Safe for one process plus readers; many instances share PostgreSQL instead.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Storage } from '../ports.js';
import { SqliteAccountStore } from './accounts.js';
import { SqliteKeyStore } from './keys.js';
import { SqliteTopUpStore } from './top-ups.js';
import { SqliteLedger, type SqliteLedgerOptions } from './ledger.js';
import { acquireCheckpointer, checkpointerStopped } from './checkpointer.js';
import { latestVersion, migrate, pendingFrom } from './migrations.js';
import { refuseWhileServed } from './lease.js';
import { DatabaseOpenError } from '../open-error.js';

/** `sqlite:<path>` → the path, `sqlite::memory:` → `:memory:`. */
export function sqlitePath(url: string): string {
  if (!url.startsWith('sqlite:')) throw new Error(`not a sqlite: storage url: '${url}'`);
  const path = url.slice('sqlite:'.length);
  if (path === '') throw new Error(`storage url '${url}' names no file; use sqlite:<path> or sqlite::memory:`);
  return path;
}

export { DatabaseOpenError };

/** Opens (creating and migrating as needed) the database behind `url` with the gateway's pragmas. */
export function openDatabase(url: string): Database.Database {
  const path = sqlitePath(url);
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  // better-sqlite3's messages name no file ("unable to open database file", "attempt to write a
  // readonly database"): said with the path, the start fails with one line instead of a stack trace.
  let db: Database.Database;
  try {
    db = new Database(path);
  } catch (err) {
    throw err instanceof Database.SqliteError ? new DatabaseOpenError(`SQLite database ${path}`, err) : err;
  }
  try {
    // WAL: readers never block the writer; NORMAL is durable in WAL except for the last commits on
    // power loss (https://www.sqlite.org/pragma.html#pragma_synchronous).
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    const found = path === ':memory:' ? null : pendingFrom(db);
    if (found !== null) refuseWhileServed(db, path, { found, latest: latestVersion });
    migrate(db);
    if (path !== ':memory:') {
      // Checkpoints run in a worker thread (checkpointer.ts), never inside a request's commit. So
      // does the WAL's truncation after a reset (its journal_size_limit): this connection never
      // truncates (checkpointer.ts says why).
      db.pragma('wal_autocheckpoint = 0');
      const release = acquireCheckpointer(path);
      // Every way a connection is closed (stores, tests) releases its share of the worker.
      const close = db.close.bind(db);
      db.close = () => {
        release();
        return close();
      };
    }
    return db;
  } catch (err) {
    db.close();
    throw err instanceof Database.SqliteError ? new DatabaseOpenError(`SQLite database ${path}`, err) : err;
  }
}

const databases = new WeakMap<Storage, { db: Database.Database; path: string }>();

/** The connection behind a storage openSqliteStorage made (undefined for any other storage). */
export function sqliteDatabaseOf(storage: Storage): { db: Database.Database; path: string } | undefined {
  return databases.get(storage);
}

export function openSqliteStorage(url: string, opts: { ledger?: SqliteLedgerOptions } = {}): Storage {
  const path = sqlitePath(url);
  const db = openDatabase(url);
  const pingStmt = db.prepare('SELECT 1');
  const versionStmt = db.prepare('SELECT v FROM credentials_version WHERE id = 1').pluck();
  // One statement: a name already stored keeps its value, and the value stored is what comes back.
  const secretStmt = db
    .prepare(
      `INSERT INTO shared_secrets (name, value, created_at) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING value`,
    )
    .pluck();
  const ledger = new SqliteLedger(db, opts.ledger);
  const storage: Storage = {
    accounts: new SqliteAccountStore(db),
    keys: new SqliteKeyStore(db),
    ledger,
    topUps: new SqliteTopUpStore(db),
    async credentialsVersion() {
      return versionStmt.get() as number;
    },
    async sharedSecret(name, make) {
      return secretStmt.get(name, make(), new Date().toISOString()) as string;
    },
    async ping() {
      pingStmt.get();
    },
    async close() {
      if (!db.open) return;
      await ledger.close();
      db.close();
      await checkpointerStopped(path);
    },
  };
  databases.set(storage, { db, path });
  return storage;
}
