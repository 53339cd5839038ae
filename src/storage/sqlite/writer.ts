// Every durable write on one SQLite connection goes through here: the ledger's rows, the embedded
// limiter's settled counters and the keys' last_used_at touches. A write is data — a kind (which
// statement) and its parameters — so it can be committed at once or logged first.
//
// Group commit: writes that arrive in the same turn of the event loop go out together, in one
// transaction (one BEGIN/COMMIT, one WAL append) — at moderate load, where a turn holds a single
// request, a request's settlement and ledger row are one commit instead of two.
//
// Once the server holding the database file turns the pending log on (useLog, from claimServer),
// a turn's writes are appended to that log instead and reach the tables in larger transactions
// (pending-log.ts says why and how it stays exactly-once). Readers of the tables call sync() first.
//
// Either way each write() resolves only once it is durable — committed, or in the log — so
// "resolved" still means "survives the process". A write that throws on commit rolls back its
// whole batch and every write() of that batch rejects with the error (Batcher's rule): validate
// before queuing, as the ledger does.
//
// One exception, a log that cannot be written (disk full, I/O error): the requests those writes
// belong to were served, so their records and charges are not dropped and the requests not turned
// into errors. The writes are held here, in order, and appended again every RETRY_MS; everything
// written meanwhile queues behind them; `failure` says so, and the embedded limiter refuses new
// requests (503 storage_unavailable) until the log takes writes again. Held writes live only in
// this process until then.
//
// After another server took the file over (this one stalled past its lease: lease.ts), the log is
// the new holder's and takes nothing more from this one. What this server's requests in flight
// still write is committed straight to the tables — the ledger rows are then where the new holder
// reads them — and a kind defined with `late` statements (the limiter's counters) also runs those,
// in the same transaction: the new holder keeps such values in memory and learns of a change it did
// not make only through them (sqlite/counters.ts).
import type Database from 'better-sqlite3';
import { Batcher, type BatcherStats } from '../batcher.js';
import { writeRunner, type WriteKinds, type WriteOp, type WriteStatement } from './apply-writes.js';
import { fileWorker } from './checkpointer.js';
import { PendingLog, type PendingLogOptions } from './pending-log.js';

export type { WriteOp, WriteStatement };

export interface PendingLogStats {
  /** Batches applied on the serving thread: a read's sync, a lagging worker's takeover, no worker. */
  here: number;
  /** Batches the file's worker thread applied. */
  byWorker: number;
  /** Writes appended and not yet applied. */
  waiting: number;
}

/** How often writes the log refused are appended again, ms. */
const RETRY_MS = 200;

export class SqliteWriter {
  private readonly kinds: WriteKinds = {};
  /** The kinds' `late` statements (define): kept apart, so neither the log nor the worker runs them. */
  private readonly lateKinds: WriteKinds = {};
  private readonly keyed = new Set<string>();
  private readonly run: (op: WriteOp) => void;
  private readonly runLate: (op: WriteOp) => void;
  /** One transaction of writes straight to the tables (with their late statements once abandoned). */
  private readonly commit: (ops: readonly WriteOp[]) => void;
  private readonly batch: Batcher<readonly WriteOp[]>;
  private log: PendingLog | undefined;
  private onLogError: (err: unknown) => void = () => {};
  /** Writes the log refused (or, after a takeover, the tables), oldest first, waiting to be written again. */
  private held: WriteOp[] = [];
  private retry: NodeJS.Timeout | undefined;
  private failed: Error | undefined;
  private abandoned: Error | undefined;
  /** Set by visit(): this process writes a file a server may hold, without its log (a CLI command). */
  private visiting = false;

  constructor(private readonly db: Database.Database) {
    this.run = writeRunner(db, this.kinds);
    this.runLate = writeRunner(db, this.lateKinds);
    this.commit = db.transaction((ops: readonly WriteOp[]) => {
      const late = this.abandoned !== undefined || (this.visiting && this.log === undefined);
      for (const op of ops) {
        this.run(op);
        if (late && this.lateKinds[op[0]] !== undefined) this.runLate(op);
      }
    });
    // maxDelayMs 0: a batch is whatever arrived in one turn of the event loop (no wait when idle).
    this.batch = new Batcher(
      async (groups) => {
        if (this.abandoned !== undefined) this.commitAbandoned(groups.flat());
        else if (this.log) this.append(this.log, groups.flat());
        else this.commit(groups.flat());
      },
      { maxRecords: 1000, maxDelayMs: 0 },
    );
  }

  /** Why the log takes no writes now (writes are held, or another server took the file), else undefined. */
  get failure(): Error | undefined {
    return this.failed ?? this.abandoned;
  }

  private append(log: PendingLog, ops: WriteOp[]): void {
    if (this.held.length > 0) {
      this.held.push(...ops); // behind the held ones: the order of writes is kept
      return;
    }
    try {
      log.append(ops);
    } catch (err) {
      // The append found the lease taken (the heartbeat had not noticed yet): not a failing log.
      if (this.abandoned !== undefined) {
        this.commitAbandoned(ops);
        return;
      }
      this.held = ops;
      this.failed = err instanceof Error ? err : new Error(String(err));
      this.onLogError(err);
      this.retry = setTimeout(() => this.appendHeld(), RETRY_MS);
    }
  }

  /** Appends the held writes; true once none are left. */
  private appendHeld(): boolean {
    clearTimeout(this.retry);
    this.retry = undefined;
    if (this.held.length === 0 || !this.log) return this.held.length === 0;
    if (this.abandoned !== undefined) return this.commitAbandoned([]);
    try {
      this.log.append(this.held);
    } catch (err) {
      if (this.abandoned !== undefined) return this.commitAbandoned([]);
      this.failed = err instanceof Error ? err : new Error(String(err));
      this.retry = setTimeout(() => this.appendHeld(), RETRY_MS);
      return false;
    }
    this.held = [];
    this.failed = undefined;
    return true;
  }

  /**
   * Another server holds the file: the held writes, then `ops`, are committed straight to the
   * tables, in order, with their late statements. True once none are left; a commit that fails
   * (the file busy past the busy timeout, I/O) keeps them held for closeLog to try once more.
   */
  private commitAbandoned(ops: readonly WriteOp[]): boolean {
    clearTimeout(this.retry);
    this.retry = undefined;
    const all = this.held.length > 0 ? [...this.held, ...ops] : ops;
    try {
      this.commit(all);
    } catch (err) {
      this.held = [...all];
      this.failed = err instanceof Error ? err : new Error(String(err));
      this.onLogError(err);
      return false;
    }
    this.held = [];
    this.failed = undefined;
    return true;
  }

  /**
   * Names the statements that apply writes of `kind` (each store defines its own): run in order
   * until one changes a row. Data, not a function, so the file's worker thread can run them too.
   * `keyed`: reads ask whether a write of this kind to one key (its first argument) waits (syncFor).
   * `late`: statements run too, with the same arguments and in the same transaction, when a write
   * of this kind is committed by a process that does not hold the file — a server after another
   * took the file over, or a visitor (visit()) — for a store whose values the holder keeps in
   * memory, to tell it of the change.
   */
  define(kind: string, statements: readonly WriteStatement[], opts: { keyed?: boolean; late?: readonly WriteStatement[] } = {}): void {
    this.kinds[kind] = statements;
    if (opts.keyed) this.keyed.add(kind);
    if (opts.late) this.lateKinds[kind] = opts.late;
  }

  /**
   * This process writes the file without serving from it (a CLI command: `tollgate accounts
   * credits`): until it takes the pending log (useLog), its commits run the late statements too, so
   * a server holding the file learns of them on its heartbeat. With no server holding it, the next
   * one to claim it clears them (their values are on file already). visit(false): this process
   * holds the file now; what it writes its own memory knows already.
   */
  visit(on = true): void {
    this.visiting = on;
  }

  /** Queues writes for the next group commit, all in it together; resolves once they are durable. */
  write(...ops: WriteOp[]): Promise<void> {
    return this.batch.add(ops);
  }

  /** Before reading a table these writes change: brings the logged ones into the tables. */
  sync(): void {
    if (this.log && this.log.waiting > 0) this.log.apply();
  }

  /**
   * sync() for a read that can wait: the file's worker applies the log while the event loop goes
   * on (PendingLog.whenApplied). The admin API's, the web app's and /v1/usage's reads use it.
   */
  async caughtUp(): Promise<void> {
    if (this.log && this.log.waiting > 0) await this.log.whenApplied();
  }

  /**
   * sync(), only when a logged write of the keyed `kind` to `key` waits: for a read of one row on
   * the request path, so a burst of such reads does not apply the log (one transaction) once per read.
   */
  syncFor(kind: string, key: unknown): void {
    if (!this.keyed.has(kind)) throw new Error(`writes of kind ${kind} are not keyed (define)`);
    if (this.log && this.log.waiting > 0 && this.log.holds(kind, key)) this.log.apply();
  }

  /** Makes everything queued durable and applied to the tables, and waits for it. */
  async flush(): Promise<void> {
    await this.batch.flush();
    this.sync();
  }

  /** Makes everything queued durable (committed, or in the log) without applying the log here. */
  async durable(): Promise<void> {
    await this.batch.flush();
  }

  /**
   * From now on, writes go to the pending log of `path` (first replaying what it holds). Only the
   * process holding the file's server lease may call it.
   */
  async useLog(path: string, opts: PendingLogOptions = {}): Promise<void> {
    if (this.log) return;
    await this.batch.flush();
    this.log = new PendingLog(this.db, path, this.run, this.kinds, this.keyed, { worker: fileWorker(path), ...opts });
    this.onLogError = opts.onError ?? (() => {});
  }

  /**
   * Another server took the database file: the log stops touching its files (PendingLog.abandon).
   * `failure` says so from now on, so the limiter refuses new requests; what the requests this
   * server did serve still write (their ledger rows and charges) is committed straight to the
   * tables, with the late statements of its kind (define).
   */
  abandonLog(): void {
    this.log?.abandon();
    this.abandoned ??= new Error('another server holds the database file now');
  }

  /** Applies what the log holds, removes it, and commits directly again. */
  async closeLog(): Promise<void> {
    await this.batch.flush();
    if (!this.appendHeld()) {
      // Still refused: committed straight to the tables instead, or lost with an error saying how many.
      const held = this.held;
      this.held = [];
      clearTimeout(this.retry);
      try {
        this.commit(held);
        this.failed = undefined;
      } catch (err) {
        this.onLogError(new Error(`${held.length} writes the pending log refused could not be committed either and are lost`, { cause: err }));
      }
    }
    this.log?.close();
    this.log = undefined;
  }

  /** The pending log's applies so far and the writes waiting in it (/metrics, tests), while it is on. */
  logStats(): PendingLogStats | undefined {
    return this.log && { ...this.log.applied, waiting: this.log.waiting };
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
