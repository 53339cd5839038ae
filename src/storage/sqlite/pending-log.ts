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
// Only the process holding the server lease (lease.ts) may open the log: one writer per file.
import { closeSync, existsSync, ftruncateSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import type Database from 'better-sqlite3';

/** One write: the kind names the statement that applies it (SqliteWriter.define), args are its parameters. */
export type WriteOp = readonly [kind: string, args: readonly unknown[]];

export interface PendingLogOptions {
  /** Apply appended writes to the tables at most this long after the first of them, ms. */
  applyEveryMs?: number;
  /** …or as soon as this many are waiting. */
  applyAtOps?: number;
  /** A write the tables refused (it stays out; the others apply), or an apply that failed (retried, nothing lost). */
  onError?: (err: unknown) => void;
}

/** The log file of a database file. */
export const pendingLogPath = (dbPath: string) => `${dbPath}-pending`;

export class PendingLog {
  private readonly fd: number;
  private readonly path: string;
  private size: number;
  private seq: number;
  private unapplied: WriteOp[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly applyEveryMs: number;
  private readonly applyAtOps: number;
  private readonly onError: (err: unknown) => void;
  private readonly applyTx: (ops: readonly WriteOp[], seq: number) => void;

  /**
   * Opens (creating) the log of `dbPath` and replays into the tables whatever it holds that was
   * not applied yet. `apply` runs one write's statement; it is called inside a transaction.
   */
  constructor(
    db: Database.Database,
    dbPath: string,
    apply: (op: WriteOp) => void,
    opts: PendingLogOptions = {},
  ) {
    this.applyEveryMs = opts.applyEveryMs ?? 50;
    this.applyAtOps = opts.applyAtOps ?? 1000;
    this.onError = opts.onError ?? (() => {});
    const readApplied = db.prepare('SELECT applied_seq FROM pending_log_state WHERE id = 1').pluck();
    const setApplied = db.prepare('UPDATE pending_log_state SET applied_seq = ? WHERE id = 1');
    const tx = db.transaction((ops: readonly WriteOp[], seq: number) => {
      for (const op of ops) {
        try {
          apply(op);
        } catch (err) {
          // Only a write the tables can never take is skipped (its statement rolls back alone and
          // the rest of the batch applies). Anything else — busy, disk full, I/O — rolls the whole
          // batch back: the writes stay in the file and apply() tries again.
          if (!refused(err)) throw err;
          this.onError(err);
        }
      }
      setApplied.run(seq);
    });
    // IMMEDIATE: the write lock is taken at BEGIN, so a busy database fails the batch before any
    // statement ran.
    this.applyTx = tx.immediate;

    const path = (this.path = pendingLogPath(dbPath));
    const applied = readApplied.get() as number;
    const { ops, lastSeq } = existsSync(path) ? readLog(readFileSync(path, 'utf8'), applied, this.onError) : { ops: [], lastSeq: applied };
    this.seq = Math.max(applied, lastSeq);
    if (ops.length > 0 || lastSeq > applied) this.applyTx(ops, this.seq);
    this.fd = openSync(path, 'a');
    ftruncateSync(this.fd, 0);
    this.size = 0;
  }

  /** Writes waiting to be applied to the tables. */
  get waiting(): number {
    return this.unapplied.length;
  }

  /** Whether a write of `kind` whose arguments pass `test` is waiting to be applied. */
  holds(kind: string, test: (args: readonly unknown[]) => boolean): boolean {
    for (const [k, args] of this.unapplied) if (k === kind && test(args)) return true;
    return false;
  }

  /** Appends one turn's writes as one line; durable once this returns. Throws if the file write fails. */
  append(ops: readonly WriteOp[]): void {
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
    for (const op of ops) this.unapplied.push(op);
    if (this.unapplied.length >= this.applyAtOps) this.apply();
    else this.timer ??= setTimeout(() => this.apply(), this.applyEveryMs).unref();
  }

  /** Applies every appended write to the tables now, then empties the file. */
  apply(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.unapplied.length === 0) return;
    try {
      this.applyTx(this.unapplied, this.seq);
    } catch (err) {
      // Busy or failing: the writes are safe in the file; try again later.
      this.onError(err);
      this.timer = setTimeout(() => this.apply(), this.applyEveryMs).unref();
      return;
    }
    this.unapplied = [];
    ftruncateSync(this.fd, 0);
    this.size = 0;
  }

  /** Applies what is waiting and removes the file (a clean stop leaves nothing to replay). */
  close(): void {
    this.apply();
    clearTimeout(this.timer);
    closeSync(this.fd);
    // Writes the last apply could not take (busy, disk) stay in the file for the next start to replay.
    if (this.unapplied.length === 0) unlinkSync(this.path);
  }
}

/** A write the tables refuse whatever the moment: a broken constraint, a value of the wrong type. */
function refused(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_CONSTRAINT') || code === 'SQLITE_MISMATCH');
}

/** The writes of the log's lines numbered above `applied`, and the highest number seen. */
function readLog(text: string, applied: number, onError: (err: unknown) => void): { ops: WriteOp[]; lastSeq: number } {
  const ops: WriteOp[] = [];
  let lastSeq = applied;
  const lines = text.split('\n');
  // The part after the last newline is a line torn by a crash: never acknowledged, so dropped.
  lines.pop();
  for (const line of lines) {
    let entry: unknown;
    try {
      entry = JSON.parse(line);
    } catch (err) {
      onError(err);
      continue;
    }
    const [seq, batch] = entry as [number, WriteOp[]];
    if (seq <= applied) continue;
    for (const op of batch) ops.push(op);
    lastSeq = Math.max(lastSeq, seq);
  }
  return { ops, lastSeq };
}
