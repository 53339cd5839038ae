// The serving process's durable writes, appended to a small log file beside the database before
// they reach its tables. Measured (bench/ab.mjs): committing each turn's ledger rows and counter
// settlements to SQLite cost 13–14 % of a streamed request's CPU, at saturation and at half load
// alike — every commit rewrites the same few b-tree pages (ledger, its two indexes, the counters)
// as whole WAL frames, and the checkpointer copies them again. Appending the turn's writes as one
// JSON line is one write(2) of a few hundred bytes; the tables then take them in one transaction
// per `applyEveryMs` (or `applyAtOps`), where the pages are shared by hundreds of rows.
//
// Durability is what it was: an append returns once write(2) has handed the line to the kernel, so
// it survives the process being killed, as a WAL commit with synchronous = NORMAL does (neither
// survives power loss without an fsync). Opening the log replays whatever a crash left unapplied.
//
// Exactly once: each line carries a sequence number, and the transaction that applies lines also
// stores the highest number applied (table pending_log_state), so a crash between that commit and
// the truncation that follows it replays nothing twice. A line torn by a crash mid-write was never
// acknowledged and is dropped; a failed append is cut off again, so no torn line is ever followed
// by a good one.
//
// Off the event loop: when the database file has a worker thread (checkpointer.ts), a due batch
// is handed to it. The log file is sealed first (renamed to `-pending.sealed`, appends go on in a
// fresh file) and the worker reads, applies and acknowledges it; only one batch is in flight. The
// applied position makes that safe with either thread applying: a read's sync() (or a waiting
// read's fallback, whenApplied) applies here at once, and whichever transaction comes second skips
// the lines the first applied. If the worker fails or is gone, this thread applies, as it did
// before there was a worker.
//
// Only the process holding the server lease (lease.ts) may open the log: one writer per file.
import { closeSync, existsSync, ftruncateSync, openSync, readFileSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { logApplier, parseLog, type LogLine, type WriteKinds, type WriteOp } from './apply-writes.js';
import { isBusy, withoutWaiting } from './no-wait.js';

export type { WriteOp };

export interface PendingLogOptions {
  /** Apply appended writes to the tables at most this long after the first of them, ms. */
  applyEveryMs?: number;
  /** …or as soon as this many are waiting. */
  applyAtOps?: number;
  /** A write the tables refused (it stays out; the others apply), or an apply that failed (retried, nothing lost). */
  onError?: (err: unknown) => void;
  /** The database file's worker thread: it applies the batches. Without one, this thread does. */
  worker?: Worker;
  /**
   * Whether this process still holds the file's server lease (lease.ts), asked before the log's
   * files are renamed: after a takeover, the name is the new holder's file.
   */
  owns?: () => boolean;
  /**
   * Whether this process still holds the lease, asked before every append (lease.ts holdsForWrite:
   * cheap unless the heartbeat is overdue). After a takeover the log's file is the new holder's,
   * who has replayed and removed it: a line appended to the old file would be lost.
   */
  holdsForWrite?: () => boolean;
}

/** The log file of a database file. */
export const pendingLogPath = (dbPath: string) => `${dbPath}-pending`;
/** The sealed part of the log a worker is applying (or a crash left). */
const sealedPathOf = (logPath: string) => `${logPath}.sealed`;

/** Messages of the file worker about a batch (checkpointer.ts). */
type WorkerReply =
  | { type: 'applied'; upTo: number; refused: { message: string; code?: string }[] }
  | { type: 'apply-failed'; upTo: number; error: { message: string; code?: string } };

export class PendingLog {
  private fd: number;
  private readonly path: string;
  private readonly sealedPath: string;
  /** Whether the sealed file exists with lines not known to be applied. */
  private sealed = false;
  private size: number;
  /** The number of the last line appended, and of the last known to be applied. */
  private seq: number;
  private appliedSeq: number;
  // The writes themselves are not kept here: they are in the files, which this thread reads back
  // in the rare apply of its own. Held in memory until applied (50 ms and more), they were the
  // largest set of objects surviving each scavenge. Kept: how many wait (in the log, and in the
  // sealed part) and, for the kinds reads ask about (syncFor), their first arguments.
  private ops = 0;
  private sealedOps = 0;
  private keys = new Map<string, Set<unknown>>();
  private sealedKeys = new Map<string, Set<unknown>>();
  /** Batches applied on this thread (a read's sync, the replay, no worker), and handed to the worker. */
  readonly applied = { here: 0, byWorker: 0 };
  private timer: NodeJS.Timeout | undefined;
  /** The last line number of the batch the worker is applying. */
  private inFlight: number | undefined;
  private worker: Worker | undefined;
  private readonly applyEveryMs: number;
  private readonly applyAtOps: number;
  private readonly onError: (err: unknown) => void;
  private readonly applyLines: (lines: readonly LogLine[], upTo: number) => boolean;
  /** performance.now() before which this thread does not try again to take over from a lagging worker. */
  private takeOverAfter = 0;
  private readonly db: Database.Database;
  private readonly probeLock: Database.Statement;
  private readonly rollback: Database.Statement;
  /** Reads waiting for the tables to hold every write up to a line (whenApplied). */
  private readonly waiters = new Set<{ upTo: number; done: () => void }>();
  /** Set once another server took the file: nothing here touches the files or the applied position again. */
  private abandoned = false;
  private readonly owns: () => boolean;
  private readonly holdsForWrite: () => boolean;
  private readonly onReply = (msg: WorkerReply) => this.settled(msg);
  private readonly onWorkerGone = () => this.workerGone();

  /**
   * Opens (creating) the log of `dbPath` and replays into the tables whatever it holds that was
   * not applied yet. `run` runs one write's statements (inside a transaction); `kinds` are those
   * statements as data, for the worker.
   */
  constructor(
    db: Database.Database,
    dbPath: string,
    run: (op: WriteOp) => void,
    private readonly kinds: WriteKinds,
    /** The kinds whose waiting writes syncFor asks about, by their first argument. */
    private readonly keyed: ReadonlySet<string>,
    opts: PendingLogOptions = {},
  ) {
    this.db = db;
    this.probeLock = db.prepare('BEGIN IMMEDIATE');
    this.rollback = db.prepare('ROLLBACK');
    this.owns = opts.owns ?? (() => true);
    this.holdsForWrite = opts.holdsForWrite ?? (() => true);
    this.applyEveryMs = opts.applyEveryMs ?? 50;
    this.applyAtOps = opts.applyAtOps ?? 4000;
    this.onError = opts.onError ?? (() => {});
    const log = logApplier(db, run, this.onError);
    this.applyLines = log.apply;

    const path = (this.path = pendingLogPath(dbPath));
    this.sealedPath = sealedPathOf(path);
    const applied = log.applied();
    // The sealed part's lines come before the log's (numbers only grow).
    let text = '';
    for (const file of [this.sealedPath, path]) if (existsSync(file)) text += readFileSync(file, 'utf8');
    const { lines, lastSeq } = parseLog(text, this.onError);
    this.seq = Math.max(applied, lastSeq);
    if (this.seq > applied) this.applyLines(lines, this.seq);
    this.appliedSeq = this.seq;
    rmSync(this.sealedPath, { force: true });
    // A new file, not the old one emptied: a server that held the lease before this one (stalled
    // past the heartbeat's limit, and not yet aware it lost it) may still hold the old file open,
    // and what it writes there must not land between this server's lines.
    rmSync(path, { force: true });
    this.fd = openSync(path, 'a');
    this.size = 0;

    if (opts.worker) {
      this.worker = opts.worker;
      this.worker.on('message', this.onReply);
      this.worker.once('exit', this.onWorkerGone);
      this.worker.once('error', this.onWorkerGone);
    }
  }

  /** Writes waiting to be applied to the tables. */
  get waiting(): number {
    return this.ops + this.sealedOps;
  }

  /** Whether a write of a keyed `kind` whose first argument is `key` is waiting to be applied. */
  holds(kind: string, key: unknown): boolean {
    return this.keys.get(kind)?.has(key) === true || this.sealedKeys.get(kind)?.has(key) === true;
  }

  /** Appends one turn's writes as one line; durable once this returns. Throws if the file write fails. */
  append(ops: readonly WriteOp[]): void {
    // Thrown, the writer commits the writes straight to the tables instead (writer.ts).
    if (!this.abandoned && !this.holdsForWrite()) this.abandon();
    if (this.abandoned) throw new Error('another server holds the database file now: this one logs no more writes');
    const line = `${JSON.stringify([this.seq + 1, ops])}\n`;
    const bytes = Buffer.byteLength(line);
    try {
      // A regular file takes the whole string in one write(2); a short write goes on from a copy.
      let off = writeSync(this.fd, line);
      if (off < bytes) {
        const buf = Buffer.from(line);
        while (off < bytes) off += writeSync(this.fd, buf, off);
      }
    } catch (err) {
      // Cut a partial line off, so the next append does not glue onto it.
      try {
        ftruncateSync(this.fd, this.size);
      } catch {
        // The next replay drops an unparsable line anyway.
      }
      throw err;
    }
    this.seq += 1;
    this.size += bytes;
    this.ops += ops.length;
    for (const [kind, args] of ops) {
      if (!this.keyed.has(kind)) continue;
      let keys = this.keys.get(kind);
      if (keys === undefined) this.keys.set(kind, (keys = new Set()));
      keys.add(args[0]);
    }
    // The line is durable: a failure from here on is the batch's, not this append's (thrown, the
    // writer would hold and log these writes a second time).
    try {
      if (this.ops >= this.applyAtOps) this.due();
      else this.timer ??= setTimeout(() => this.due(), this.applyEveryMs).unref();
    } catch (err) {
      this.onError(err);
    }
  }

  /** Applies every appended write to the tables now, on this thread, then empties the files. */
  apply(): void {
    if (this.abandoned) return;
    this.applyHere(true);
  }

  /**
   * Another server took the file (its lease): stops without applying, truncating, renaming or
   * removing anything — the files by these names are the new holder's now, and so is the applied
   * position. Writes appended here and not yet applied are in the old file, which the new holder
   * replayed when it opened (or, written after, are lost with it: the gateway stops at once).
   */
  abandon(): void {
    if (this.abandoned) return;
    this.abandoned = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.detach();
    this.inFlight = undefined;
    try {
      closeSync(this.fd);
    } catch {
      // Already closed.
    }
    for (const w of this.waiters) w.done();
    this.waiters.clear();
  }

  /**
   * Resolves once the tables hold every write appended before the call, for a read that can wait:
   * the worker applies the batch (sealed now, not applyEveryMs later) while the event loop goes on
   * serving — applied here, a read's sync stalled every request in flight for the length of the
   * batch. Without a worker, or when it has not answered within `maxWaitMs` (a core too busy to
   * give it time), this thread applies, as sync() does.
   */
  whenApplied(maxWaitMs = 250): Promise<void> {
    if (this.seq === this.appliedSeq || this.abandoned) return Promise.resolve();
    if (this.worker === undefined) {
      this.apply();
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const waiter = {
        upTo: this.seq,
        done: () => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.apply();
        waiter.done(); // also when the apply failed (reported): a read never hangs on the log
      }, maxWaitMs);
      this.waiters.add(waiter);
      if (this.inFlight === undefined) this.due();
    });
  }

  /** Lets the reads go whose writes are all applied now. */
  private release(): void {
    for (const w of this.waiters) if (w.upTo <= this.appliedSeq) w.done();
  }

  private applyHere(reportBusy: boolean): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.seq > this.appliedSeq) {
      try {
        let text = this.sealed ? readFileSync(this.sealedPath, 'utf8') : '';
        text += readFileSync(this.path, 'utf8');
        this.applyLines(parseLog(text, this.onError).lines, this.seq);
        this.applied.here++;
      } catch (err) {
        // Busy or failing: the writes are safe in the files; try again later.
        if (reportBusy || !isBusy(err)) this.onError(err);
        this.timer = setTimeout(() => this.due(), this.applyEveryMs).unref();
        return;
      }
      this.appliedSeq = this.seq;
      this.ops = this.sealedOps = 0;
      this.keys = new Map();
      this.sealedKeys = new Map();
      ftruncateSync(this.fd, 0);
      this.size = 0;
      this.release();
    }
    if (this.sealed) {
      rmSync(this.sealedPath, { force: true });
      this.sealed = false;
    }
  }

  /** Applies what is waiting and removes the file (a clean stop leaves nothing to replay). */
  close(): void {
    if (this.abandoned) return;
    // A server closing after another took the file (it stalled, and nothing told it yet): the
    // file by this name is the new holder's, not this one's to apply or remove.
    if (!this.owns()) {
      this.abandon();
      return;
    }
    this.apply();
    clearTimeout(this.timer);
    this.detach();
    closeSync(this.fd);
    // Writes the last apply could not take (busy, disk) stay in the files for the next start to replay.
    if (this.seq === this.appliedSeq) unlinkSync(this.path);
  }

  /** A batch is due: to the worker if there is one and it is free, else applied here. */
  private due(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.seq === this.appliedSeq || this.abandoned) return;
    if (!this.owns()) {
      this.abandon();
      return;
    }
    if (this.worker !== undefined && this.inFlight !== undefined) {
      // The worker is still on the last batch; its reply schedules the next. Should it fall far
      // behind, this thread applies, so the files stay small.
      if (this.waiting >= this.applyAtOps * 10) this.takeOver();
      return;
    }
    // A sealed file the worker did not apply (it failed on it) cannot be sealed over: apply here.
    if (this.worker === undefined || this.sealed) return this.apply();
    closeSync(this.fd);
    renameSync(this.path, this.sealedPath);
    this.sealed = true;
    this.sealedOps = this.ops;
    this.sealedKeys = this.keys;
    this.ops = 0;
    this.keys = new Map();
    this.fd = openSync(this.path, 'a');
    this.size = 0;
    this.inFlight = this.seq;
    this.worker.postMessage({ type: 'apply', file: this.sealedPath, upTo: this.seq, kinds: this.kinds });
  }

  /**
   * Applies here what a lagging worker has not, without ever waiting for the write lock the worker
   * holds while it applies. Waiting slept the event loop for the rest of the worker's transaction
   * — a large one, slowed by the worker's lower priority on a busy core — so a lock found taken
   * is left to a later append, at most one try per applyEveryMs. The probe takes and drops the
   * lock before the files are read; the apply itself runs without waiting too, should the worker
   * take the lock in between. Nothing throws from here: this runs after an append that is already
   * durable, so a failure is reported (as apply() does), not turned into that append's rejection.
   */
  private takeOver(): void {
    const now = performance.now();
    if (now < this.takeOverAfter) return;
    this.takeOverAfter = now + this.applyEveryMs;
    withoutWaiting(this.db, () => {
      try {
        this.probeLock.run();
        this.rollback.run();
      } catch (err) {
        if (!isBusy(err)) this.onError(err);
        return;
      }
      this.applyHere(false);
    });
  }

  private settled(msg: WorkerReply): void {
    if (msg.upTo !== this.inFlight) return;
    this.inFlight = undefined;
    if (msg.type === 'applied') {
      this.applied.byWorker++;
      for (const err of msg.refused) this.onError(Object.assign(new Error(err.message), { code: err.code }));
      this.appliedSeq = Math.max(this.appliedSeq, msg.upTo);
      this.sealedOps = 0;
      this.sealedKeys = new Map();
      if (this.sealed) {
        rmSync(this.sealedPath, { force: true });
        this.sealed = false;
      }
      this.release();
    } else {
      this.onError(Object.assign(new Error(msg.error.message), { code: msg.error.code }));
      this.apply();
      return;
    }
    if (this.seq > this.appliedSeq) {
      // A read waiting for lines past this batch wants the next one now.
      if (this.ops >= this.applyAtOps || this.waiters.size > 0) this.due();
      else this.timer ??= setTimeout(() => this.due(), this.applyEveryMs).unref();
    }
  }

  /** The worker stopped or failed: this thread applies from now on. */
  private workerGone(): void {
    this.detach();
    this.inFlight = undefined;
    if (this.seq > this.appliedSeq) this.apply();
  }

  private detach(): void {
    this.worker?.off('message', this.onReply);
    this.worker?.off('exit', this.onWorkerGone);
    this.worker?.off('error', this.onWorkerGone);
    this.worker = undefined;
  }
}
