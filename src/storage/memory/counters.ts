// The in-process CounterStore: the reference semantics (storage/counters.ts) in plain Maps, for unit
// tests. Every method does all its work before its first await, so on Node's one thread each
// operation is atomic. Nothing survives the process.
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

export class MemoryCounterStore implements CounterStore {
  private readonly counters = new Map<string, Counter>();
  private readonly reservations = new Map<string, Reservation>();
  private closed = false;

  async reserve(id: string, ops: readonly CounterOp[], expiresAt: number, now: number): Promise<ReserveResult> {
    this.open();
    checkReserve(id, ops, expiresAt, now);
    this.dropExpired(now);
    if (this.reservations.has(id)) throw new DuplicateReservationError(id);

    // Running values, so an op repeating a key sees the ops before it.
    const next = new Map<string, number>();
    for (const [i, op] of ops.entries()) {
      const before = next.get(op.key) ?? this.value(op.key);
      if (breaksBound(op, before + op.amount)) return { ok: false, failed: i, value: this.value(op.key) };
      next.set(op.key, before + op.amount);
    }
    for (const op of ops) {
      const c = this.counters.get(op.key);
      if (c) {
        c.value += op.amount;
        c.expiresAt = mergeExpiry(c.expiresAt, op.expiresAt);
      } else {
        this.counters.set(op.key, { value: op.amount, expiresAt: op.expiresAt });
      }
    }
    this.reservations.set(id, { ops: ops.map((op) => [op.key, op.amount, op.settle, settleSign(op)]), expiresAt });
    return { ok: true, values: ops.map((op) => this.value(op.key)) };
  }

  async settle(id: string, actual: number): Promise<boolean> {
    this.open();
    checkActual(actual);
    const r = this.reservations.get(id);
    if (!r) return false;
    this.reservations.delete(id);
    for (const op of r.ops) this.move(op[0], settleDelta(op, actual));
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
    return keys.map((k) => this.value(k));
  }

  async add(key: string, amount: number, expiresAt: number | null): Promise<number> {
    this.open();
    checkAdd(key, amount, expiresAt);
    const c = this.counters.get(key);
    if (!c) {
      this.counters.set(key, { value: amount, expiresAt });
      return amount;
    }
    c.value += amount;
    c.expiresAt = mergeExpiry(c.expiresAt, expiresAt);
    return c.value;
  }

  async sweep(now: number): Promise<number> {
    this.open();
    checkTime('now', now);
    const dropped = this.dropExpired(now);
    for (const [key, c] of this.counters) if (c.expiresAt !== null && c.expiresAt <= now) this.counters.delete(key);
    return dropped;
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.closed = true;
  }

  private open(): void {
    if (this.closed) throw new CounterStoreClosedError();
  }

  private value(key: string): number {
    return this.counters.get(key)?.value ?? 0;
  }

  /** Gives back to a counter that still exists; one already forgotten by sweep stays forgotten. */
  private move(key: string, delta: number): void {
    const c = this.counters.get(key);
    if (c) c.value += delta;
  }

  private giveBack(id: string, r: Reservation): void {
    this.reservations.delete(id);
    for (const [key, amount] of r.ops) this.move(key, -amount);
  }

  private dropExpired(now: number): number {
    let dropped = 0;
    for (const [id, r] of this.reservations) {
      if (r.expiresAt <= now) {
        this.giveBack(id, r);
        dropped++;
      }
    }
    return dropped;
  }
}
