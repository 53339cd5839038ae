// One server per database file, enforced. The embedded limiter keeps live counters in the server's
// memory (counters.ts), so two servers on one file would each admit up to every limit. A server
// takes this lease before it serves and heartbeats it; a second server finds it held and refuses
// to start instead of quietly doubling the limits.
//
// A holder that died without letting go (kill -9, power loss) is recognised two ways: on the same
// host and in the same pid namespace its pid no longer runs (or is this very process, restarted
// under the same pid), so the lease is taken over at once; otherwise its heartbeat stops, and the
// lease is taken over once it is `staleMs` old. A pid that runs is not proof of life (pids are
// reused), so a holder is only refused once its heartbeat has moved while the other waited. The pid
// namespace is part of the host's identity: two containers sharing a hostname (host networking)
// see different processes under one pid, and a server in one took the lease of a live server in
// the other at once. (So a container restarted in a new pid namespace waits staleMs, 6 s by
// default, for its predecessor's lease: its pid cannot be checked from there.)
import { randomUUID } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import type Database from 'better-sqlite3';
import { isBusy, withoutWaiting } from './no-wait.js';

export interface LeaseOptions {
  /** How often the holder refreshes its heartbeat, ms. Default 2000. */
  heartbeatMs?: number;
  /** A heartbeat older than this belongs to a dead holder, ms. Default 3 × heartbeatMs. */
  staleMs?: number;
  /** Told when the lease was found taken by another server (this process stalled past staleMs). */
  onLost?: (holder: LeaseHolder) => void;
  /** Told when a heartbeat failed for another reason than a busy file (I/O, disk); the next one tries again. */
  onError?: (err: unknown) => void;
  /**
   * Told after each heartbeat that found the lease still held: for the holder's own periodic look
   * at the file (sqlite/counters.ts takes the counter changes a server that lost the file made).
   */
  onBeat?: () => void;
  now?: () => number;
}

export interface LeaseHolder {
  host: string;
  pid: number;
  heartbeatAt: number;
}

export class DatabaseInUseError extends Error {
  constructor(
    readonly path: string,
    readonly holder: LeaseHolder,
    /** Set when this process was to migrate the file: the server holding it may be an older Tollgate. */
    readonly migration?: { found: number; latest: number },
  ) {
    super(
      migration
        ? `another Tollgate server (pid ${holder.pid} on ${holder.host}) is serving from ${path}, whose schema ` +
            `(version ${migration.found}) this Tollgate would migrate to version ${migration.latest} under it: stop that ` +
            'server first, then start this one (the file is left as it was; an older Tollgate cannot open it once migrated)'
        : `another Tollgate server (pid ${holder.pid} on ${holder.host}) is serving from ${path}: run one server per ` +
            'SQLite file, or give several servers storage.url postgres://… and limiter.url redis://…',
    );
    this.name = 'DatabaseInUseError';
  }
}

interface Row {
  owner: string;
  host: string;
  pid: number;
  heartbeat_at: number;
}

/** How soon a heartbeat that found the file's write lock taken tries again, ms. */
const BUSY_RETRY_MS = 20;

/** Owners of the leases this process holds (two gateways in one process are two holders). */
const heldHere = new Set<string>();

/** This host and pid namespace, e.g. `web-1 pid:[4026531836]` (just the hostname where /proc has no namespaces). */
export function hostIdentity(): string {
  try {
    return `${hostname()} ${readlinkSync('/proc/self/ns/pid')}`;
  } catch {
    return hostname();
  }
}

function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it runs, as another user.
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Whether the holder in `row` is gone: its process no longer runs here, or its heartbeat is `staleMs` old. */
function holderDead(row: Row, host: string, now: number, staleMs: number): boolean {
  const gone = row.host === host && (row.pid === process.pid ? !heldHere.has(row.owner) : !processRuns(row.pid));
  return gone || now - row.heartbeat_at >= staleMs;
}

/**
 * Throws DatabaseInUseError while a live server holds the file's lease — one whose heartbeat moves
 * while this waits, or that is not found dead within staleMs plus a heartbeat — for a process about
 * to migrate the file. The holder may be an older Tollgate still serving (the new one started, or
 * its CLI run, before the old one was stopped): migrated under it, that server runs on a schema it
 * does not know, and cannot start on the file again (SchemaTooNewError) — though nothing was
 * upgraded, since the new server then refuses the lease. Blocks the thread while it waits: it runs
 * while the file is opened, before anything serves.
 */
export function refuseWhileServed(
  db: Database.Database,
  path: string,
  migration: { found: number; latest: number },
  opts: { heartbeatMs?: number; staleMs?: number } = {},
): void {
  const hasLease = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'server_lease'").get();
  if (hasLease === undefined) return; // a file from before leases (migration 5): nothing to ask
  const heartbeatMs = opts.heartbeatMs ?? 2000;
  const staleMs = opts.staleMs ?? 3 * heartbeatMs;
  const read = db.prepare('SELECT owner, host, pid, heartbeat_at FROM server_lease WHERE id = 1');
  const host = hostIdentity();
  const first = read.get() as Row | undefined;
  const deadline = Date.now() + staleMs + heartbeatMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let row = first; row !== undefined; row = read.get() as Row | undefined) {
    if (holderDead(row, host, Date.now(), staleMs)) return;
    const beating = row.owner !== first!.owner || row.heartbeat_at !== first!.heartbeat_at;
    if (beating || Date.now() >= deadline) {
      throw new DatabaseInUseError(path, { host: row.host, pid: row.pid, heartbeatAt: row.heartbeat_at }, migration);
    }
    Atomics.wait(pause, 0, 0, Math.min(250, heartbeatMs));
  }
}

export class ServerLease {
  private readonly owner = randomUUID();
  private readonly host = hostIdentity();
  private readonly heartbeatMs: number;
  private readonly staleMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  private held = false;
  /** This process's clock when its last heartbeat (or the acquisition) went through. */
  private lastBeatAt = 0;
  private readonly update: Database.Statement<[number, string]>;

  constructor(
    private readonly db: Database.Database,
    private readonly path: string,
    private readonly opts: LeaseOptions = {},
  ) {
    this.heartbeatMs = opts.heartbeatMs ?? 2000;
    this.staleMs = opts.staleMs ?? 3 * this.heartbeatMs;
    this.now = opts.now ?? Date.now;
    this.update = db.prepare('UPDATE server_lease SET heartbeat_at = ? WHERE owner = ?');
  }

  /**
   * Takes the lease, waiting up to staleMs (plus a heartbeat) for a holder to go stale. Throws
   * DatabaseInUseError as soon as the holder heartbeats while this waits (a heartbeat that moves is
   * a live server: waiting out the rest told nothing more, and a CLI command beside a running
   * server took 8 s to say so), or when the wait runs out.
   */
  async acquire(): Promise<void> {
    const deadline = this.now() + this.staleMs + this.heartbeatMs;
    let first: LeaseHolder | undefined;
    for (;;) {
      const holder = this.tryTake();
      if (holder === null) break;
      first ??= holder;
      const beating = holder.heartbeatAt !== first.heartbeatAt || holder.pid !== first.pid || holder.host !== first.host;
      if (beating || this.now() >= deadline) throw new DatabaseInUseError(this.path, holder);
      await new Promise((r) => setTimeout(r, Math.min(500, this.heartbeatMs)));
    }
    this.held = true;
    this.lastBeatAt = this.now();
    heldHere.add(this.owner);
    this.timer = setInterval(() => this.beat(), this.heartbeatMs);
    this.timer.unref();
  }

  /** Lets go (graceful stop), so the next server starts at once. */
  release(): void {
    clearInterval(this.timer);
    clearTimeout(this.retry);
    if (!this.held) return;
    this.held = false;
    heldHere.delete(this.owner);
    if (this.db.open) this.db.prepare('DELETE FROM server_lease WHERE owner = ?').run(this.owner);
  }

  /** null when this process now holds the lease, else the live holder. */
  private tryTake(): LeaseHolder | null {
    return this.db
      .transaction((): LeaseHolder | null => {
        const row = this.db.prepare('SELECT owner, host, pid, heartbeat_at FROM server_lease WHERE id = 1').get() as Row | undefined;
        const now = this.now();
        if (row && row.owner !== this.owner && !holderDead(row, this.host, now, this.staleMs)) {
          return { host: row.host, pid: row.pid, heartbeatAt: row.heartbeat_at };
        }
        this.db
          .prepare(
            `INSERT INTO server_lease (id, owner, host, pid, heartbeat_at) VALUES (1, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, host = excluded.host, pid = excluded.pid,
               heartbeat_at = excluded.heartbeat_at`,
          )
          .run(this.owner, this.host, process.pid, now);
        return null;
      })
      .immediate();
  }

  /**
   * Never waits for the file's write lock (no-wait.ts): waiting slept the event loop 9–54 ms in
   * 7 of 32 heartbeats at 3,000 req/s, and on a saturated core, where the worker holding the lock
   * gets little CPU, ran the full 5 s and threw SQLITE_BUSY out of this timer, killing the server.
   * A busy file fails at once and the heartbeat tries again shortly; staleMs leaves room for many tries.
   */
  private beat(): void {
    clearTimeout(this.retry);
    this.retry = undefined;
    if (!this.db.open || !this.held) return;
    let changed: number;
    const at = this.now();
    try {
      changed = withoutWaiting(this.db, () => this.update.run(at, this.owner).changes);
    } catch (err) {
      if (isBusy(err)) this.retry = setTimeout(() => this.beat(), BUSY_RETRY_MS).unref();
      else this.opts.onError?.(err);
      return;
    }
    if (changed === 0) {
      this.lost();
      return;
    }
    this.lastBeatAt = at;
    try {
      this.opts.onBeat?.();
    } catch (err) {
      this.opts.onError?.(err);
    }
  }

  /**
   * Whether this process still holds the lease, read now (a plain read: no write lock). Found
   * taken, it is lost here as a heartbeat would find it. For what must not happen after a takeover
   * the next heartbeat has not noticed yet: renaming the pending log (pending-log.ts).
   */
  holds(): boolean {
    if (!this.held) return false;
    if (!this.db.open) return false;
    const owner = this.db.prepare('SELECT owner FROM server_lease WHERE id = 1').pluck().get();
    if (owner === this.owner) return true;
    this.lost();
    return false;
  }

  /**
   * holds() for the path of every write: it reads the file only when no heartbeat went through for
   * half of staleMs — the process stalled (SIGSTOP, a swapped-out VM), so another server may have
   * taken over, and the first turn after it resumes runs the I/O that waited (upstream answers, so
   * settlements and ledger rows) before the overdue heartbeat timer. Otherwise another server
   * cannot have taken over yet: it waits for the heartbeat to be staleMs old.
   */
  holdsForWrite(): boolean {
    if (!this.held) return false;
    if (this.now() - this.lastBeatAt < this.staleMs / 2) return true;
    return this.holds();
  }

  private lost(): void {
    if (!this.held) return;
    this.held = false;
    heldHere.delete(this.owner);
    clearInterval(this.timer);
    const row = this.db.prepare('SELECT host, pid, heartbeat_at FROM server_lease WHERE id = 1').get() as Omit<Row, 'owner'> | undefined;
    this.opts.onLost?.({ host: row?.host ?? 'unknown', pid: row?.pid ?? 0, heartbeatAt: row?.heartbeat_at ?? 0 });
  }
}
