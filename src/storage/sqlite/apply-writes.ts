// How durable writes reach the tables, in one place for the two threads that do it: the serving
// thread (direct group commits, the replay at start, a read's sync) and the database file's worker
// thread (checkpointer.ts), which applies the pending log off the event loop. A worker cannot
// import TypeScript under every runner (tsc's output, vitest's transform), so it is handed these
// functions as source text (Function.prototype.toString). They must stay self-contained: no
// imports, no variables from outside their own body.
import type Database from 'better-sqlite3';

/** One write: the kind names its statements (SqliteWriter.define), args are their parameters. */
export type WriteOp = readonly [kind: string, args: readonly unknown[]];

/**
 * One statement of a kind of write. `args` picks and orders the write's arguments for it by index
 * (all of them, in order, when absent): positional binding, which costs far less than named.
 */
export interface WriteStatement {
  readonly sql: string;
  readonly args?: readonly number[];
}

/**
 * A kind's statements run in order until one changes a row: an UPDATE for the usual case, then the
 * INSERT for the first time. Plain data, so the worker thread prepares the same statements.
 */
export type WriteKinds = Record<string, readonly WriteStatement[]>;

/** One line of the pending log: its sequence number and the writes of one turn. */
export type LogLine = readonly [seq: number, ops: readonly WriteOp[]];

/**
 * The function that runs one write. Statements are prepared the first time their kind is used,
 * reading `kinds` then, so kinds defined later (or, in the worker, sent later) are found.
 */
export function writeRunner(db: Database.Database, kinds: WriteKinds): (op: WriteOp) => void {
  const prepared = new Map<string, [Database.Statement, readonly number[] | undefined][]>();
  return ([kind, args]) => {
    let list = prepared.get(kind);
    if (list === undefined) {
      const statements = kinds[kind];
      if (statements === undefined) throw new Error(`no statement defined for writes of kind ${kind}`);
      list = statements.map((s): [Database.Statement, readonly number[] | undefined] => [db.prepare(s.sql), s.args]);
      prepared.set(kind, list);
    }
    for (const [stmt, pick] of list) {
      if (stmt.run(pick === undefined ? args : pick.map((i) => args[i])).changes > 0) return;
    }
  };
}

/**
 * Applies log lines to the tables, exactly once: one IMMEDIATE transaction (the write lock taken
 * at BEGIN, so a busy file fails before any statement ran) that skips the lines numbered at or
 * below the applied position stored in the file, runs the rest, and stores `upTo` as the applied
 * position. Either thread may apply a line first; the other then skips it. A write the tables can
 * never take (a broken constraint, a value of the wrong type) is skipped and reported; anything else
 * — busy, disk full, I/O — throws and rolls the whole batch back, to be tried again.
 */
export function logApplier(
  db: Database.Database,
  run: (op: WriteOp) => void,
  onRefused: (err: unknown) => void,
): { apply: (lines: readonly LogLine[], upTo: number) => boolean; applied: () => number } {
  const readApplied = db.prepare('SELECT applied_seq FROM pending_log_state WHERE id = 1').pluck();
  const setApplied = db.prepare('UPDATE pending_log_state SET applied_seq = ? WHERE id = 1');
  const refused = (err: unknown): boolean => {
    const code = (err as { code?: unknown } | null)?.code;
    return typeof code === 'string' && (code.startsWith('SQLITE_CONSTRAINT') || code === 'SQLITE_MISMATCH');
  };
  const tx = db.transaction((lines: readonly LogLine[], upTo: number): boolean => {
    const applied = readApplied.get() as number;
    if (applied >= upTo) return false;
    for (const [seq, ops] of lines) {
      if (seq <= applied) continue;
      for (const op of ops) {
        try {
          run(op);
        } catch (err) {
          if (!refused(err)) throw err;
          onRefused(err);
        }
      }
    }
    setApplied.run(upTo);
    return true;
  });
  return { apply: tx.immediate, applied: () => readApplied.get() as number };
}

/**
 * The lines of a log file's text and the highest number among them. The part after the last
 * newline is a line torn by a crash mid-write: never acknowledged, so dropped; an unparsable line
 * is reported and skipped.
 */
export function parseLog(text: string, onBadLine: (err: unknown) => void): { lines: LogLine[]; lastSeq: number } {
  const lines: LogLine[] = [];
  let lastSeq = 0;
  const parts = text.split('\n');
  parts.pop();
  for (const part of parts) {
    let line: LogLine;
    try {
      line = JSON.parse(part) as LogLine;
    } catch (err) {
      onBadLine(err);
      continue;
    }
    lines.push(line);
    if (line[0] > lastSeq) lastSeq = line[0];
  }
  return { lines, lastSeq };
}
