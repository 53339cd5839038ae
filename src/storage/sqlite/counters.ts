// The embedded limiter: counters live in this process's memory and are made durable in SQLite.
//
// Why memory: one server process owns a database file (docs/operations.md), so Node's one thread
// already makes every operation atomic — each method does all its work on the counters before its
// first await. A SQLite IMMEDIATE transaction per reserve and per settle was the largest single
// cost on the request path (18 % of the gateway's CPU, bench/README.md).
//
// What is durable, and when:
// - a counter's SETTLED value (credits charged, requests counted, balances, top-ups): settle() and
//   add() resolve only once their change is durable: group-committed with the ledger's rows
//   (writer.ts), or, in the serving process, appended to the pending log (pending-log.ts) that
//   a restart replays — so "resolved" still means "survives the process".
// - live reservations are NOT: they are held in memory only. They belong to this process; when it
//   dies its requests die with it, and after a restart their holds are gone — what the TTL did when
//   reservations were rows, only sooner. Released reservations never touch the disk at all.
//
// The engine is the memory store's (memory/counters.ts); this class adds the file: counters are
// loaded from it the first time a reserve or add touches them and stay in memory until they
// expire (sweep); get() of a counter not in memory reads the file without caching it. Values in
// memory = value on disk + amounts held by live reservations.
//
// A server that lost the file (it stalled past its lease, lease.ts) and resumes still settles its
// requests in flight; those charges are committed to the counters table with a row each in
// late_counter_writes (writer.ts, define's `late`). The server holding the file takes the rows on
// its heartbeat and adds them to the counters it holds in memory, so the equation above holds
// again within a heartbeat — until then a counter it loads leaves them out, as its memory does.
// Without this it admitted as if they had not happened: in a reviewer's repro, 57,960 of a free
// account's 50,000 daily credits used, and a prepaid balance at −9,123.
import type Database from 'better-sqlite3';
import { StorageUnavailableError, type Storage } from '../ports.js';
import type { CounterOp, ReserveResult } from '../counters.js';
import type { BatcherStats } from '../batcher.js';
import { MemoryCounterStore, type Counter, type CounterChange } from '../memory/counters.js';
import { checkpointerStopped } from './checkpointer.js';
import { openDatabase, sqliteDatabaseOf, sqlitePath } from './index.js';
import { ServerLease, type LeaseOptions } from './lease.js';
import { isBusy, withoutWaiting } from './no-wait.js';
import { writerFor, type PendingLogStats, type SqliteWriter, type WriteOp } from './writer.js';

export interface SqliteCounterStoreOptions {
  /** Close the database handle on close(): true when the store owns it (openSqliteCounterStore). */
  closeDatabase?: boolean;
  /** The database file, for claimServer(); ':memory:' (the default) cannot be shared, so needs no lease. */
  path?: string;
}

/** How soon taking the late counter writes tries again after finding the file's write lock taken, ms. */
const LATE_RETRY_MS = 20;

export class SqliteCounterStore extends MemoryCounterStore {
  private readonly closeDatabase: boolean;
  private readonly path: string;
  private lease: ServerLease | undefined;
  private readonly writes: SqliteWriter;
  private readonly selectCounter: Database.Statement<[string], { value: number; expires_at: number | null }>;
  /** selectCounter for the lease holder: the value without the late writes it has not taken yet. */
  private readonly selectCounterHeld: Database.Statement<[string], { value: number; expires_at: number | null }>;
  private readonly lateWaiting: Database.Statement<[], number>;
  private readonly takeLate: { immediate: () => CounterChange[] };
  private lateRetry: NodeJS.Timeout | undefined;
  /** The latest `now` a sweep forgot counters by: rows expired by then are gone, applied or not. */
  private forgottenUpTo = -Infinity;

  constructor(
    private readonly db: Database.Database,
    options: SqliteCounterStoreOptions = {},
  ) {
    super();
    this.closeDatabase = options.closeDatabase ?? false;
    this.path = options.path ?? ':memory:';
    this.selectCounter = db.prepare('SELECT value, expires_at FROM counters WHERE key = ?');
    // The late amounts are already in the row's value; the holder's memory gains them when it takes
    // them (takeLateWrites), so a counter loaded before then must start without them. One statement:
    // one snapshot of both tables, and the late writer commits a row and its change together.
    this.selectCounterHeld = db.prepare(
      `SELECT value - (SELECT COALESCE(SUM(amount), 0) FROM late_counter_writes l WHERE l.key = counters.key) AS value,
         expires_at FROM counters WHERE key = ?`,
    );
    this.lateWaiting = db.prepare('SELECT 1 FROM late_counter_writes LIMIT 1').pluck() as Database.Statement<[], number>;
    const selectLate = db.prepare('SELECT key, amount, expires_at FROM late_counter_writes ORDER BY id').raw();
    const deleteLate = db.prepare('DELETE FROM late_counter_writes');
    // Read and deleted in one transaction (IMMEDIATE: the write lock from BEGIN, so none is added
    // between the two): each row is taken exactly once.
    this.takeLate = db.transaction((): CounterChange[] => {
      const rows = selectLate.all() as CounterChange[];
      deleteLate.run();
      return rows;
    });
    // Group commit shared with the ledger on this connection (writer.ts): a batch is whatever
    // arrived in the same turn of the event loop, so an idle gateway adds no waiting and a busy one
    // writes many settlements — and their ledger rows — per commit. A write is [key, delta, expiresAt].
    this.writes = writerFor(db);
    this.writes.define('counter', [
      // The usual settlement: a counter already on file with this same expiry (a window's counters
      // all expire at its end). Leaving expires_at out of the SET keeps its index entry untouched;
      // the upsert rewrote it every time, dirtying index pages the apply then wrote out (0.1–0.3
      // pages and 7–15 % of the apply's time per request: bench/sqlite-writes.mjs). mergeExpiry(x, x)
      // = x, so when it matches, the upsert's result is exactly value + delta, expiry unchanged.
      { sql: 'UPDATE counters SET value = value + ? WHERE key = ? AND expires_at IS ?', args: [1, 0, 2] },
      // Otherwise the upsert. Its expiry merge mirrors mergeExpiry in counter-ops.ts: NULL (never)
      // wins, else the later time.
      {
        sql: `INSERT INTO counters (key, value, expires_at) VALUES (?, ?, ?)
          ON CONFLICT (key) DO UPDATE SET value = value + excluded.value,
            expires_at = CASE WHEN expires_at IS NULL OR excluded.expires_at IS NULL THEN NULL
                              ELSE MAX(expires_at, excluded.expires_at) END`,
      },
    ], {
      keyed: true,
      // Committed by a server that lost the file: noted for the holder's memory (takeLateWrites).
      late: [{ sql: 'INSERT INTO late_counter_writes (key, amount, expires_at) VALUES (?, ?, ?)' }],
    });
    // A sweep's deletion of expired counters is a logged write like the settlements, applied after
    // the ones before it: run here on the event loop it applied the whole log first (a sync) and
    // waited on the write lock of the file's worker thread, stalling every request meanwhile.
    this.writes.define('forget', [{ sql: 'DELETE FROM counters WHERE expires_at <= ?' }]);
    // A store of a file that is not claimed (claimServer) is a CLI command's, writing beside the
    // server that may hold the file: its top-ups must reach that server's memory.
    if (this.path !== ':memory:') this.writes.visit();
  }

  /** The server's pending log (claimServer turns it on): applies and backlog, for /metrics. */
  pendingLogStats(): PendingLogStats | undefined {
    return this.writes.logStats();
  }

  /**
   * While the database file takes no writes (a full disk: writer.ts holds them), no new request is
   * admitted: one served now could not be recorded. StorageUnavailableError is a 503.
   */
  override reserve(id: string, ops: readonly CounterOp[], expiresAt: number, now: number): Promise<ReserveResult> {
    const unwritable = this.unwritable();
    return unwritable ? Promise.reject(unwritable) : super.reserve(id, ops, expiresAt, now);
  }

  /** StorageUnavailableError while the file takes no writes (held, or another server took it), else undefined. */
  private unwritable(): StorageUnavailableError | undefined {
    const failure = this.writes.failure;
    return failure && new StorageUnavailableError(`the database file takes no writes: ${failure.message}`, { cause: failure });
  }

  /**
   * Settled values are in the file (or its pending log): an idle counter can be let go and loaded
   * again — not while writes are held (a full disk: writer.ts), whose changes only memory has
   * until the log takes them. A counter let go then and loaded again (a top-up reads it) missed
   * them, and memory and file disagreed until a restart.
   */
  protected override keepsSettled(): boolean {
    return this.writes.failure === undefined;
  }

  protected override stored(key: string): Counter | undefined {
    // Only this counter's own logged changes matter to this read. (At 00:00 UTC every active
    // account's day counter misses at once; applying the whole log for each was a transaction per
    // request.)
    this.writes.syncFor('counter', key);
    const row = (this.lease ? this.selectCounterHeld : this.selectCounter).get(key);
    // A row a sweep forgot whose deletion has not been applied yet is already gone.
    if (row === undefined || (row.expires_at !== null && row.expires_at <= this.forgottenUpTo)) return undefined;
    return { value: row.value, expiresAt: row.expires_at };
  }

  protected override commit(changes: CounterChange[]): Promise<void> {
    return this.writes.write(...changes.map((change): WriteOp => ['counter', change]));
  }

  protected override async flush(): Promise<void> {
    await this.writes.durable();
  }

  protected override forgetStored(now: number): Promise<void> {
    this.forgottenUpTo = Math.max(this.forgottenUpTo, now);
    return this.writes.write(['forget', [now]]);
  }

  override async ping(): Promise<void> {
    // /readyz: not ready while the file takes no writes (reserve refuses then too).
    const unwritable = this.unwritable();
    if (unwritable) throw unwritable;
    this.db.prepare('SELECT 1').get();
  }

  /**
   * Takes the counter changes a server that lost this file committed after the takeover
   * (late_counter_writes): the table holds them already, so only memory learns them. On the
   * heartbeat, on the event loop: it never waits for the write lock (no-wait.ts), and a busy file is
   * tried again shortly. Usually the table is empty, and this one read of it is all.
   */
  private takeLateWrites(lease: ServerLease, onError: (err: unknown) => void): void {
    clearTimeout(this.lateRetry);
    this.lateRetry = undefined;
    if (this.closed || !this.db.open) return;
    // A retry can come after this process stalled in turn: the rows are then the next holder's.
    if (!lease.holdsForWrite()) return;
    let changes: CounterChange[];
    try {
      changes = withoutWaiting(this.db, () => (this.lateWaiting.get() === undefined ? [] : this.takeLate.immediate()));
    } catch (err) {
      if (isBusy(err)) this.lateRetry = setTimeout(() => this.takeLateWrites(lease, onError), LATE_RETRY_MS).unref();
      else onError(err);
      return;
    }
    this.followStored(changes);
  }

  /** Group-commit figures of the durable writes on this connection, the ledger's included when shared (tests, diagnostics). */
  writeStats(): BatcherStats {
    return this.writes.stats();
  }

  /**
   * Makes this store the only one serving from its file (a server calls it before it serves; CLI
   * commands, which only read counters, do not). Throws DatabaseInUseError while another server
   * holds the file.
   */
  async claimServer(opts: LeaseOptions & { applyEveryMs?: number; onWriteError?: (err: unknown) => void } = {}): Promise<void> {
    if (this.path === ':memory:' || this.lease) return;
    const onError = opts.onError ?? (() => {});
    const lease = new ServerLease(this.db, this.path, {
      ...opts,
      // Lost: the pending log lets go of the files (they are the new holder's) before anyone is told.
      onLost: (holder) => {
        this.writes.abandonLog();
        opts.onLost?.(holder);
      },
      onBeat: () => this.takeLateWrites(lease, onError),
    });
    await lease.acquire();
    this.writes.visit(false);
    // Rows a server that lost the file earlier left, none having taken them. A counter loaded
    // before now (without the lease) has them in its value, so they are cleared, not followed — in
    // the turn that makes this store the holder: from then on a counter loaded leaves untaken rows
    // out, and memory gains them when the heartbeat takes them.
    try {
      this.takeLate.immediate();
    } catch (err) {
      lease.release();
      throw err;
    }
    this.lease = lease;
    // The only writer of the file now: its durable writes may go through the pending log.
    await this.writes.useLog(this.path, {
      applyEveryMs: opts.applyEveryMs,
      onError: opts.onWriteError,
      owns: () => lease.holds(),
      holdsForWrite: () => lease.holdsForWrite(),
    });
  }

  /** Writes what is queued; the held reservations are let go (they die with this process). */
  override async close(): Promise<void> {
    if (this.closed) return;
    clearTimeout(this.lateRetry);
    await super.close();
    await this.writes.flush();
    if (this.lease) await this.writes.closeLog();
    this.lease?.release();
    if (this.closeDatabase && this.db.open) {
      this.db.close();
      await checkpointerStopped(this.path);
    }
  }
}

/**
 * The counter store of the database behind `url`. Given the SQLite storage of the same database, it
 * shares that connection — and its group commit, so a request's settlement and ledger row are one
 * transaction; that storage must then be closed after this store. Otherwise it opens (creating and
 * migrating as needed) a connection of its own.
 */
export function openSqliteCounterStore(url: string, storage?: Storage): SqliteCounterStore {
  const shared = storage && sqliteDatabaseOf(storage);
  if (shared && shared.path === sqlitePath(url)) return new SqliteCounterStore(shared.db, { path: shared.path });
  return new SqliteCounterStore(openDatabase(url), { closeDatabase: true, path: sqlitePath(url) });
}
