// The in-process CounterStore: the reference semantics (storage/counters.ts) in plain Maps. Every
// method does all its work on the counters before its first await, so on Node's one thread each
// operation is atomic. On its own nothing survives the process (unit tests); the embedded limiter
// (sqlite/counters.ts) is this engine plus a file, through the protected hooks below.
import {
  breaksBound,
  checkActual,
  checkAdd,
  checkKey,
  checkReserve,
  checkTime,
  CounterOverflowError,
  CounterStoreClosedError,
  DuplicateReservationError,
  mergeExpiry,
  settleDelta,
  settleSign,
  type StoredOp,
} from '../counter-ops.js';
import type { CounterOp, CounterStore, ReserveResult } from '../counters.js';
import { ChurnMap } from '../../lib/churn-map.js';

export interface Counter {
  value: number;
  expiresAt: number | null;
}

/** A counter held in memory: `sweeps`, how many sweeps had begun when it last changed (sweep). */
interface Held extends Counter {
  sweeps: number;
}

/** A live reservation: its ops and when it lapses unless renewed. */
interface Reservation {
  ops: StoredOp[];
  expiresAt: number;
}

/** A settled change to one counter, for a durable copy: `[key, delta, expiresAt]`. */
export type CounterChange = [key: string, delta: number, expiresAt: number | null];

export class MemoryCounterStore implements CounterStore {
  private readonly counters = new Map<string, Held>();
  /** Sweeps begun: a counter remembers the count when it changed, so a sweep can tell it idle. */
  private sweeps = 0;
  private readonly reservations = new ChurnMap<string, Reservation>();
  /** No reservation expires before this (a lower bound: renew only pushes expiries later). */
  private nextExpiry = Infinity;
  protected closed = false;

  /** A counter not in memory as stored elsewhere (the embedded limiter's file); none here. */
  protected stored(_key: string): Counter | undefined {
    return undefined;
  }

  /** Whether settled values are kept elsewhere (stored()) now, so memory may let an idle counter go. */
  protected keepsSettled(): boolean {
    return false;
  }

  /** Counters held in memory (diagnostics, tests). */
  get held(): number {
    return this.counters.size;
  }

  /** Makes settled changes durable; resolves once they are. Nothing to do here. */
  protected async commit(_changes: CounterChange[]): Promise<void> {}

  /** Before a sweep: every change committed, so a counter forgotten from memory owes nothing. */
  protected async flush(): Promise<void> {}

  /**
   * Forgets, wherever else they are kept, counters that expired by `now`. Called after memory has
   * forgotten them, with no await before; the work itself may finish later (the promise).
   */
  protected async forgetStored(_now: number): Promise<void> {}

  /**
   * Changes another writer already made where counters are stored (the embedded limiter's file):
   * memory follows for the counters it holds, without committing them again. A counter not held
   * here needs nothing: it is loaded from the stored copy, which includes them.
   */
  protected followStored(changes: readonly CounterChange[]): void {
    for (const [key, delta, expiresAt] of changes) {
      const counter = this.counters.get(key);
      if (!counter) continue;
      counter.value += delta;
      counter.expiresAt = mergeExpiry(counter.expiresAt, expiresAt);
    }
  }

  async reserve(id: string, ops: readonly CounterOp[], expiresAt: number, now: number): Promise<ReserveResult> {
    this.open();
    checkReserve(id, ops, expiresAt, now);
    this.dropExpired(now);
    if (this.reservations.has(id)) throw new DuplicateReservationError(id);

    // Check every op before applying any, on running values so an op repeating a key sees the ones
    // before it; a refusal changes nothing.
    const counters: Held[] = [];
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
        // Counters loaded only for this look hold nothing and owe nothing: let them go, so a
        // stream of refusals cannot grow memory.
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
      counter.sweeps = this.sweeps;
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
    const changes: CounterChange[] = [];
    for (const op of r.ops) {
      const counter = this.counters.get(op[0]);
      // A counter sweep already forgot (its window long over) stays forgotten.
      if (!counter) continue;
      const delta = settleDelta(op, actual);
      counter.value += delta;
      counter.sweeps = this.sweeps;
      // What stays on the counter once the hold is gone: what a durable copy must learn.
      const settled = op[1] + delta;
      if (settled !== 0) changes.push([op[0], settled, counter.expiresAt]);
    }
    if (changes.length > 0) await this.commit(changes);
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
    // A counter not in memory is read where it is stored, without loading it.
    return keys.map((k) => this.counters.get(k)?.value ?? this.stored(k)?.value ?? 0);
  }

  async add(key: string, amount: number, expiresAt: number | null): Promise<number> {
    this.open();
    checkAdd(key, amount, expiresAt);
    const counter = this.load(key, expiresAt);
    if (!Number.isSafeInteger(counter.value + amount)) throw new CounterOverflowError(key, counter.value, amount);
    counter.value += amount;
    counter.expiresAt = mergeExpiry(counter.expiresAt, expiresAt);
    counter.sweeps = this.sweeps;
    const value = counter.value;
    await this.commit([[key, amount, expiresAt]]);
    return value;
  }

  async sweep(now: number): Promise<number> {
    this.open();
    checkTime('now', now);
    // Counted before the flush: a counter changed since (its write perhaps still queued) is not idle.
    const begun = ++this.sweeps;
    await this.flush();
    // From here on no await until the durable copy is told: memory and it forget together.
    const dropped = this.dropExpired(now);
    // One pass: counters past their window, and idle ones that never expire (idle()).
    let holding: Set<string> | undefined;
    const keptElsewhere = this.keepsSettled();
    for (const [key, c] of this.counters) {
      if (c.expiresAt !== null ? c.expiresAt <= now : this.idle(c, begun, keptElsewhere) && !(holding ??= this.heldKeys()).has(key)) this.counters.delete(key);
    }
    await this.forgetStored(now);
    return dropped;
  }

  /**
   * Whether a counter that never expires (a balance, a lifetime count, a concurrency slot) may leave
   * memory: otherwise memory held one per account that ever used them, for the life of the process.
   * Idle since before the previous sweep began, its last change was made durable by that sweep's
   * flush; so, if no live reservation holds it, loading it again (stored(), which applies its logged
   * writes first) gives the value memory had. Without a copy elsewhere only a counter at 0 goes: a
   * new one starts there.
   */
  private idle(c: Held, begun: number, keptElsewhere: boolean): boolean {
    return c.sweeps < begun - 1 && (c.value === 0 || keptElsewhere);
  }

  /** The counters live reservations hold. */
  private heldKeys(): Set<string> {
    const keys = new Set<string>();
    for (const [, r] of this.reservations) for (const op of r.ops) keys.add(op[0]);
    return keys;
  }

  async ping(): Promise<void> {}

  /** Live reservations are let go: they die with this process. */
  async close(): Promise<void> {
    this.closed = true;
  }

  protected open(): void {
    if (this.closed) throw new CounterStoreClosedError();
  }

  /** The counter in memory, from where it is stored on first use (a new one starts at 0). */
  private load(key: string, expiresAt: number | null): Held {
    let counter = this.counters.get(key);
    if (!counter) {
      const stored = this.stored(key);
      // One shape for every held counter (the request path reads and writes them all).
      counter = stored ? { value: stored.value, expiresAt: stored.expiresAt, sweeps: this.sweeps } : { value: 0, expiresAt, sweeps: this.sweeps };
      this.counters.set(key, counter);
    }
    return counter;
  }

  /** Gives back to counters that still exist; one already forgotten by sweep stays forgotten. */
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
