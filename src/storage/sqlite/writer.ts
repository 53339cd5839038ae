// Group commit for every durable write on one SQLite connection. The ledger's rows and the embedded
// limiter's settled counters are written by the same request, in the same turn of the event loop:
// queued here, they go out in one transaction (one BEGIN/COMMIT, one WAL append) instead of one per
// store — at moderate load, where a turn holds a single request, that halves the commits.
//
// Each write() resolves only once the transaction holding it committed, so "resolved" still means
// "durable". A write that throws rolls back its whole batch and every write() of that batch rejects
// with the error (Batcher's rule): validate before queuing, as the ledger does.
import type Database from 'better-sqlite3';
import { Batcher, type BatcherStats } from '../batcher.js';

export class SqliteWriter {
  private readonly batch: Batcher<() => void>;

  constructor(db: Database.Database) {
    const commit = db.transaction((writes: (() => void)[]) => {
      for (const apply of writes) apply();
    });
    // maxDelayMs 0: a batch is whatever arrived in one turn of the event loop (no wait when idle).
    this.batch = new Batcher(async (writes) => commit(writes), { maxRecords: 1000, maxDelayMs: 0 });
  }

  /** Runs `apply` (synchronous statements) in the next group transaction; resolves once committed. */
  write(apply: () => void): Promise<void> {
    return this.batch.add(apply);
  }

  /** Commits everything queued now and waits for it. */
  flush(): Promise<void> {
    return this.batch.flush();
  }

  stats(): BatcherStats {
    return this.batch.stats();
  }
}

const writers = new WeakMap<Database.Database, SqliteWriter>();

/** The one writer of a connection: every store on it shares the group transaction. */
export function writerFor(db: Database.Database): SqliteWriter {
  let w = writers.get(db);
  if (!w) writers.set(db, (w = new SqliteWriter(db)));
  return w;
}
