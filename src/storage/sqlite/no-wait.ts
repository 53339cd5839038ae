// Writes on the event loop that must not wait for the file's write lock. Its usual holder is the
// file's worker thread applying the pending log at a lower priority (checkpointer.ts); with the
// connection's busy timeout the event loop slept in SQLite's busy handler until that thread let go
// (bench/README.md: 9–54 ms heartbeats, a 5 s wait ending in SQLITE_BUSY thrown from a timer).
import type Database from 'better-sqlite3';

/** Whether an error is SQLite's "the file is locked" (any SQLITE_BUSY variant). */
export function isBusy(err: unknown): boolean {
  return String((err as { code?: unknown } | null)?.code).startsWith('SQLITE_BUSY');
}

/** Runs `fn` with the connection's busy timeout at 0: a locked file throws SQLITE_BUSY at once. */
export function withoutWaiting<T>(db: Database.Database, fn: () => T): T {
  const waitMs = db.pragma('busy_timeout', { simple: true }) as number;
  db.pragma('busy_timeout = 0');
  try {
    return fn();
  } finally {
    db.pragma(`busy_timeout = ${waitMs}`);
  }
}
