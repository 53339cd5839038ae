// The embedded limiter: counters live in this process's memory and are made durable in SQLite.
//
// Why memory: one server process owns a database file (docs/operations.md), so Node's one thread
// already makes every operation atomic — each method does all its work on the counters before its
// first await. A SQLite IMMEDIATE transaction per reserve and per settle was the largest single
// cost on the request path (18 % of the gateway's CPU, bench/README.md).
//
// What is durable, and when:
// - a counter's SETTLED value (credits charged, requests counted, balances, top-ups): settle() and
//   add() resolve only once their change is committed. Changes are group-committed (many callers,
//   one transaction, like the ledger), so "resolved" still means "on disk".
// - live reservations are NOT: they are held in memory only. They belong to this process; when it
//   dies its requests die with it, and after a restart their holds are gone — what the TTL did when
//   reservations were rows, only sooner. Released reservations never touch the disk at all.
//
// Counters are loaded from the file the first time a reserve or add touches them and stay in
// memory until they expire (sweep); get() of a counter not in memory reads the file without
// caching it. Values in memory = value on disk + amounts held by live reservations.
import type Database from 'better-sqlite3';
import { Batcher, type BatcherStats } from '../batcher.js';
import {
  breaksBound,
  checkActual,
  checkAdd,
  checkKey,
  checkReserve,
  checkTime,
  CounterStoreClosedError,
  DuplicateReservationError,
  mergeExpiry,
  settleDelta,
  settleSign,
  type Counter,
  type Reservation,
  type StoredOp,
} from '../counter-ops.js';
import type { CounterOp, CounterStore, ReserveResult } from '../counters.js';
import { checkpointerStopped } from './checkpointer.js';
import { openDatabase, sqlitePath } from './index.js';
import { ServerLease, type LeaseOptions } from './lease.js';

export interface SqliteCounterStoreOptions {
  /** Close the database handle on close(): true when the store owns it (openSqliteCounterStore). */
  closeDatabase?: boolean;
  /** The database file, for claimServer(); ':memory:' (the default) cannot be shared, so needs no lease. */
  path?: string;
}

/** A committed change to one counter: `[key, delta, expiresAt]`. */
type Change = [key: string, delta: number, expiresAt: number | null];

export class SqliteCounterStore implements CounterStore {
  private readonly counters = new Map<string, Counter>();
  private readonly reservations = new Map<string, Reservation>();
  /** No reservation expires before this (a lower bound: renew only pushes expiries later). */
  private nextExpiry = Infinity;
  private closed = false;
  private readonly closeDatabase: boolean;
  private readonly path: string;
  private lease: ServerLease | undefined;
  private readonly writes: Batcher<Change>;
  private readonly selectCounter: Database.Statement<[string], { value: number; expires_at: number | null }>;
  private readonly deleteExpiredCounters: Database.Statement<[number]>;

  constructor(
    private readonly db: Database.Database,
    options: SqliteCounterStoreOptions = {},
  ) {
    this.closeDatabase = options.closeDatabase ?? false;
    this.path = options.path ?? ':memory:';
    this.selectCounter = db.prepare('SELECT value, expires_at FROM counters WHERE key = ?');
    this.deleteExpiredCounters = db.prepare('DELETE FROM counters WHERE expires_at <= ?');
    // Expiry merge mirrors mergeExpiry in counter-ops.ts: NULL (never) wins, else the later time.
    const upsert = db.prepare<[string, number, number | null]>(
      `INSERT INTO counters (key, value, expires_at) VALUES (?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = value + excluded.value,
         expires_at = CASE WHEN expires_at IS NULL OR excluded.expires_at IS NULL THEN NULL
                           ELSE MAX(expires_at, excluded.expires_at) END`,
    );
    const commit = db.transaction((changes: Change[]) => {
      for (const [key, delta, expiresAt] of changes) upsert.run(key, delta, expiresAt);
    });
    // maxDelayMs 0: a batch is whatever arrived in the same turn of the event loop, so an idle
    // gateway adds no waiting and a busy one writes many settlements per commit.
    this.writes = new Batcher(async (changes) => commit(changes), { maxRecords: 1000, maxDelayMs: 0 });
  }

  async reserve(id: string, ops: readonly CounterOp[], expiresAt: number, now: number): Promise<ReserveResult> {
    this.open();
    checkReserve(id, ops, expiresAt, now);
    this.dropExpired(now);
    if (this.reservations.has(id)) throw new DuplicateReservationError(id);

    // Check every op before applying any, on running values so an op repeating a key sees the ones
    // before it; a refusal changes nothing.
    const counters: Counter[] = [];
    const next: number[] = [];
    let loaded: string[] | undefined;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      let counter = this.counters.get(op.key);
      if (!counter) {
        counter = this.load(op.key, op.expiresAt);
        (loaded ??= []).push(op.key);
      }
      let before = counter.value;
      for (let j = 0; j < i; j++) if (counters[j] === counter) before = next[j]!;
      if (breaksBound(op, before + op.amount)) {
        // Counters loaded only for this look hold nothing and owe the file nothing: let them go,
        // so a stream of refusals cannot grow memory.
        if (loaded) for (const key of loaded) this.counters.delete(key);
        return { ok: false, failed: i, value: counter.value };
      }
      counters.push(counter);
      next.push(before + op.amount);
    }
    const stored: StoredOp[] = [];
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const counter = counters[i]!;
      counter.value += op.amount;
      counter.expiresAt = mergeExpiry(counter.expiresAt, op.expiresAt);
      stored.push([op.key, op.amount, op.settle, settleSign(op)]);
    }
    this.reservations.set(id, { ops: stored, expiresAt });
    if (expiresAt < this.nextExpiry) this.nextExpiry = expiresAt;
    return { ok: true, values: counters.map((c) => c.value) };
  }

  async settle(id: string, actual: number): Promise<boolean> {
    this.open();
    checkActual(actual);
    const r = this.reservations.get(id);
    if (!r) return false;
    this.reservations.delete(id);
    const changes: Change[] = [];
    for (const op of r.ops) {
      const counter = this.counters.get(op[0]);
      // A counter sweep already forgot (its window long over) stays forgotten.
      if (!counter) continue;
      counter.value += settleDelta(op, actual);
      // What stays on the counter once the hold is gone: that is what the file must learn.
      const settled = op[1] + settleDelta(op, actual);
      if (settled !== 0) changes.push([op[0], settled, counter.expiresAt]);
    }
    await Promise.all(changes.map((c) => this.writes.add(c)));
    return true;
  }

  async release(id: string): Promise<boolean> {
    this.open();
    const r = this.reservations.get(id);
    if (!r) return false;
    this.giveBack(id, r);
    return true;
  }

  async renew(ids: readonly string[], expiresAt: number): Promise<void> {
    this.open();
    checkTime('expiresAt', expiresAt);
    for (const id of ids) {
      const r = this.reservations.get(id);
      if (r) r.expiresAt = Math.max(r.expiresAt, expiresAt);
    }
  }

  async get(keys: readonly string[], now: number): Promise<number[]> {
    this.open();
    keys.forEach(checkKey);
    checkTime('now', now);
    this.dropExpired(now);
    return keys.map((k) => this.counters.get(k)?.value ?? this.selectCounter.get(k)?.value ?? 0);
  }

  async add(key: string, amount: number, expiresAt: number | null): Promise<number> {
    this.open();
    checkAdd(key, amount, expiresAt);
    const counter = this.load(key, expiresAt);
    counter.value += amount;
    counter.expiresAt = mergeExpiry(counter.expiresAt, expiresAt);
    const value = counter.value;
    await this.writes.add([key, amount, expiresAt]);
    return value;
  }

  async sweep(now: number): Promise<number> {
    this.open();
    checkTime('now', now);
    // Committed first, so that a counter forgotten below owes the file nothing: reading it again
    // from the file gives its true value. From here on no await: memory and file forget together.
    await this.writes.flush();
    const dropped = this.dropExpired(now);
    for (const [key, c] of this.counters) if (c.expiresAt !== null && c.expiresAt <= now) this.counters.delete(key);
    this.deleteExpiredCounters.run(now);
    return dropped;
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  /** Group-commit figures of the durable writes (tests, diagnostics). */
  writeStats(): BatcherStats {
    return this.writes.stats();
  }

  /**
   * Makes this store the only one serving from its file (a server calls it before it serves; CLI
   * commands, which only read counters, do not). Throws DatabaseInUseError while another server
   * holds the file.
   */
  async claimServer(opts: LeaseOptions = {}): Promise<void> {
    if (this.path === ':memory:' || this.lease) return;
    const lease = new ServerLease(this.db, this.path, opts);
    await lease.acquire();
    this.lease = lease;
  }

  /** Writes what is queued; the held reservations are let go (they die with this process). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.writes.close();
    this.lease?.release();
    if (this.closeDatabase && this.db.open) {
      this.db.close();
      await checkpointerStopped(this.path);
    }
  }

  private open(): void {
    if (this.closed) throw new CounterStoreClosedError();
  }

  /** The counter in memory, read from the file on first use (a new one starts at 0). */
  private load(key: string, expiresAt: number | null): Counter {
    let counter = this.counters.get(key);
    if (!counter) {
      const row = this.selectCounter.get(key);
      counter = row ? { value: row.value, expiresAt: row.expires_at } : { value: 0, expiresAt };
      this.counters.set(key, counter);
    }
    return counter;
  }


  private giveBack(id: string, r: Reservation): void {
    this.reservations.delete(id);
    for (const [key, amount] of r.ops) {
      const c = this.counters.get(key);
      if (c) c.value -= amount;
    }
  }

  private dropExpired(now: number): number {
    if (now < this.nextExpiry) return 0;
    let dropped = 0;
    let next = Infinity;
    for (const [id, r] of this.reservations) {
      if (r.expiresAt <= now) {
        this.giveBack(id, r);
        dropped++;
      } else if (r.expiresAt < next) {
        next = r.expiresAt;
      }
    }
    this.nextExpiry = next;
    return dropped;
  }
}

/** A counter store on its own connection to the database behind `url` (created and migrated as needed). */
export function openSqliteCounterStore(url: string): SqliteCounterStore {
  return new SqliteCounterStore(openDatabase(url), { closeDatabase: true, path: sqlitePath(url) });
}
