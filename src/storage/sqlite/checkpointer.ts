// WAL checkpoints off the event loop. SQLite's automatic checkpoint runs inside whichever commit
// crosses the threshold, on the caller's thread, and fsyncs the WAL and the database: measured
// under load here, 15–22 ms of blocked event loop ~2.6 times a second — the whole p99 of the
// gateway. So connections open with wal_autocheckpoint = 0, and one worker thread per database
// file (shared by every connection of this process, reference-counted) runs PASSIVE checkpoints on
// a timer with its own connection. PASSIVE never blocks writers or readers
// (https://www.sqlite.org/c3ref/wal_checkpoint_v2.html); with synchronous = NORMAL in WAL mode a
// commit itself never fsyncs, so no fsync is left on the event loop.
//
// The same worker applies the serving process's pending log (pending-log.ts) when asked: applying
// a 50 ms batch took ~2.5 ms of the event loop, the largest stall left at half load. It runs at a
// lower priority than the serving thread (WORKER_NICE), so on a busy core the event loop comes first.

/**
 * The worker's nice value. Its share of a core the event loop keeps busy is about
 * its weight / (its weight + the event loop's 1024) — for nice 10, 110 / 1134 ≈ 10 %: at
 * saturation (~6,000 requests/s on the bench machine) it fell behind, and every ~5 s the event loop
 * took over a 10,000-write backlog in one stall. At nice 7 (≈ 17 %) it keeps up: `node
 * bench/promotion.mjs --saturate --seconds 30`, twice each, no takeover
 * (tollgate_pending_log_applies_total), 201–208 k against 168–187 k requests answered, p99
 * 14.0–14.9 against 17.6–18.3 ms. At 2,000 requests/s the two were alike (bench/ab.mjs, 6 rounds:
 * CPU +2.6 %, fixed-rate p99 per round alike).
 */
export const WORKER_NICE = 7;
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { logApplier, parseLog, writeRunner } from './apply-writes.js';

/** How often the worker checkpoints, ms. */
const INTERVAL_MS = 250;

/**
 * The size the WAL file is cut back to when a write on the worker's connection restarts it, bytes
 * (SQLite's journal_size_limit, a per-connection setting: the serving connection has none, so it
 * never truncates). Truncating frees the file's blocks, and on a filesystem mounted with `discard`
 * (this benchmark machine's ext4) the kernel trims them synchronously inside ftruncate: 90–150 ms.
 * When the serving thread's lease heartbeat was the write that restarted a WAL grown past the
 * limit, that was a 120–150 ms stall of the event loop, about once in the first minute of load —
 * caught with bench/lib/loop-watch.mjs and the thread's kernel stack (ext4_truncate →
 * ext4_free_blocks → blkdev_issue_discard); one cause of the benchmark's 100 ms-class half-load
 * p99 rows. On the worker the same wait only delays one batch's apply. Without a worker (it failed
 * to start), nothing cuts the WAL back: it keeps the largest size it reached.
 */
export const WAL_SIZE_LIMIT = 64 * 1024 * 1024;

// An eval'd CommonJS worker: no separate file to build or resolve, under tsc and vitest alike.
// The apply functions come as source text (apply-writes.ts says why); `__name` is the helper a
// transform that keeps function names may call in them.
const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const { readFileSync, setPriority } = { ...require('node:fs'), ...require('node:os') };
const Database = require(workerData.module);
const __name = (f) => f;
const writeRunner = ${writeRunner.toString()};
const logApplier = ${logApplier.toString()};
const parseLog = ${parseLog.toString()};
try {
  // Linux: a thread's id is a pid for setpriority, and the nice value is the thread's own.
  setPriority(Number(readFileSync('/proc/thread-self/stat', 'utf8').split(' ')[0]), ${WORKER_NICE});
} catch {}
let db;
try {
  db = new Database(workerData.path, { fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  db.pragma('journal_size_limit = ${WAL_SIZE_LIMIT}');
} catch {
  db = undefined;
}
const checkpoint = () => {
  try {
    db?.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // Busy, or the file is gone: the next tick tries again; nothing is lost by skipping one.
  }
};
const timer = setInterval(checkpoint, workerData.intervalMs);
const kinds = {};
let log;
let refused = [];
const errorOf = (err) => ({ message: String(err?.message ?? err), code: err?.code });
const apply = ({ file, upTo }) => {
  if (!db) throw new Error('the file worker could not open the database');
  refused = [];
  log ??= logApplier(db, writeRunner(db, kinds), (err) => refused.push(errorOf(err)));
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    // Gone: the serving thread applied it first (and removed it); the transaction below skips.
    if (err?.code !== 'ENOENT') throw err;
  }
  const { lines } = parseLog(text, () => {});
  log.apply(lines, upTo);
  return refused;
};
parentPort.on('message', (msg) => {
  if (msg?.type === 'apply') {
    Object.assign(kinds, msg.kinds);
    try {
      parentPort.postMessage({ type: 'applied', upTo: msg.upTo, refused: apply(msg) });
    } catch (err) {
      parentPort.postMessage({ type: 'apply-failed', upTo: msg.upTo, error: errorOf(err) });
    }
    return;
  }
  clearInterval(timer);
  checkpoint();
  try { db?.close(); } catch {}
  parentPort.close();
});
`;

const betterSqlite = createRequire(import.meta.url).resolve('better-sqlite3');
const running = new Map<string, { worker: Worker; refs: number; exited: Promise<void> }>();
/** Workers told to stop, until they have exited (their last connection's close touches the files). */
const stopping = new Map<string, Promise<void>>();

/** Starts (or shares) the checkpoint worker of a database file; returns the release function. */
export function acquireCheckpointer(path: string): () => void {
  let entry = running.get(path);
  if (!entry) {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { path, module: betterSqlite, intervalMs: INTERVAL_MS },
    });
    // Never the reason a process stays alive; a failing worker only means checkpoints stop, and
    // SQLite then keeps appending to the WAL (bounded by the next start's recovery).
    worker.unref();
    // A worker that failed or exited is forgotten, so the next connection starts a new one.
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    const forget = () => {
      if (running.get(path)?.worker === worker) running.delete(path);
    };
    worker.on('error', forget);
    void exited.then(forget);
    entry = { worker, refs: 0, exited };
    running.set(path, entry);
  }
  entry.refs++;
  // This connection's share of *this* worker: if it exited and a new one started for the path,
  // releasing must not count down the new one.
  const mine = entry;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--mine.refs > 0) return;
    if (running.get(path) === mine) running.delete(path);
    const exited = mine.exited;
    stopping.set(path, exited);
    void exited.then(() => {
      if (stopping.get(path) === exited) stopping.delete(path);
    });
    // Held while it stops: someone may be awaiting checkpointerStopped(), and an unref'd worker
    // would let the process exit under that await (with exit code 0, whatever was failing).
    mine.worker.ref();
    mine.worker.postMessage('stop');
  };
}

/** The running worker of a database file, for the pending log to hand batches to (undefined: none). */
export function fileWorker(path: string): Worker | undefined {
  return running.get(path)?.worker;
}

/**
 * Resolves once no checkpoint worker of `path` is stopping: the worker's final checkpoint and
 * close (which removes the -wal and -shm files) are done, so the files can be moved or deleted.
 */
export async function checkpointerStopped(path: string): Promise<void> {
  await stopping.get(path);
}

/** Resolves once every checkpoint worker told to stop has exited (a test removing its directory). */
export async function allCheckpointersStopped(): Promise<void> {
  await Promise.all(stopping.values());
}
