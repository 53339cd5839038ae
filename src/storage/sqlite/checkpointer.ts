// WAL checkpoints off the event loop. SQLite's automatic checkpoint runs inside whichever commit
// crosses the threshold, on the caller's thread, and fsyncs the WAL and the database: measured
// under load here, 15–22 ms of blocked event loop ~2.6 times a second — the whole p99 of the
// gateway. So connections open with wal_autocheckpoint = 0, and one worker thread per database
// file (shared by every connection of this process, reference-counted) runs PASSIVE checkpoints on
// a timer with its own connection. PASSIVE never blocks writers or readers
// (https://www.sqlite.org/c3ref/wal_checkpoint_v2.html); with synchronous = NORMAL in WAL mode a
// commit itself never fsyncs, so no fsync is left on the event loop.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** How often the worker checkpoints, ms. */
const INTERVAL_MS = 250;

// An eval'd CommonJS worker: no separate file to build or resolve, under tsc and vitest alike.
const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(workerData.module);
let db;
try {
  db = new Database(workerData.path, { fileMustExist: true });
  db.pragma('busy_timeout = 1000');
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
parentPort.on('message', () => {
  clearInterval(timer);
  checkpoint();
  try { db?.close(); } catch {}
  parentPort.close();
});
`;

const betterSqlite = createRequire(import.meta.url).resolve('better-sqlite3');
const running = new Map<string, { worker: Worker; refs: number }>();
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
    worker.on('error', () => running.delete(path));
    entry = { worker, refs: 0 };
    running.set(path, entry);
  }
  entry.refs++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const e = running.get(path);
    if (!e || --e.refs > 0) return;
    running.delete(path);
    const exited = new Promise<void>((resolve) => e.worker.once('exit', () => resolve()));
    stopping.set(path, exited);
    void exited.then(() => {
      if (stopping.get(path) === exited) stopping.delete(path);
    });
    // Held while it stops: someone may be awaiting checkpointerStopped(), and an unref'd worker
    // would let the process exit under that await (with exit code 0, whatever was failing).
    e.worker.ref();
    e.worker.postMessage('stop');
  };
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
