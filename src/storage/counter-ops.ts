// Semantics every CounterStore implementation shares (storage/counters.ts is the contract): argument
// checks, the sign an `actual` settle takes, how a counter's expiry merges, and the compact form a
// reservation is stored in. A Redis implementation mirrors these in Lua; the contract suite pins them.
import type { CounterOp } from './counters.js';

/**
 * What a reservation remembers of each op: `[key, amount, settle, sign]`, `sign` being what
 * `actual` is multiplied by on settle. Stored as JSON by SQLite, so kept small.
 */
export type StoredOp = [key: string, amount: number, settle: CounterOp['settle'], sign: 1 | -1];

/**
 * +1 for usage, −1 for a balance. The amount's sign decides; an amount of 0 (a free worst case) has
 * none, so an op with a `min` and no `max` — the shape of a balance — is taken to be one, and a
 * settle can never credit a balance with the cost it should debit.
 */
export function settleSign(op: CounterOp): 1 | -1 {
  if (op.amount !== 0) return op.amount < 0 ? -1 : 1;
  return op.min !== undefined && op.max === undefined ? -1 : 1;
}

/** How much `settle(id, actual)` moves the counter an op touched. */
export function settleDelta(op: StoredOp, actual: number): number {
  const [, amount, settle, sign] = op;
  if (settle === 'keep') return 0;
  if (settle === 'return') return -amount;
  return sign * actual - amount;
}

/**
 * A counter written twice keeps the longer life: null (never expires) wins, else the later time.
 * Windows are keyed by date, so one key sees one expiry in practice; this only guards mistakes.
 */
export function mergeExpiry(a: number | null, b: number | null): number | null {
  return a === null || b === null ? null : Math.max(a, b);
}

function checkInteger(what: string, n: unknown): void {
  if (!Number.isSafeInteger(n)) throw new RangeError(`${what} must be a safe integer, got ${String(n)}`);
}

export function checkTime(what: string, t: unknown): void {
  if (typeof t !== 'number' || !Number.isFinite(t)) throw new RangeError(`${what} must be epoch ms, got ${String(t)}`);
}

export function checkKey(key: unknown): void {
  if (typeof key !== 'string' || key === '') {
    throw new TypeError(`counter key must be a non-empty string, got ${String(key)}`);
  }
}

/** Programming errors are thrown, never turned into a refusal. Counters hold integers only. */
export function checkReserve(id: string, ops: readonly CounterOp[], expiresAt: number, now: number): void {
  if (typeof id !== 'string' || id === '') throw new TypeError('reservation id must be a non-empty string');
  if (ops.length === 0) throw new RangeError('a reservation needs at least one op');
  checkTime('expiresAt', expiresAt);
  checkTime('now', now);
  for (const op of ops) {
    checkKey(op.key);
    checkInteger(`amount of '${op.key}'`, op.amount);
    if (op.max !== undefined) checkInteger(`max of '${op.key}'`, op.max);
    if (op.min !== undefined) checkInteger(`min of '${op.key}'`, op.min);
    if (op.settle !== 'actual' && op.settle !== 'keep' && op.settle !== 'return') {
      throw new RangeError(`settle of '${op.key}' must be actual, keep or return, got ${String(op.settle)}`);
    }
    if (op.expiresAt !== null) checkTime(`expiresAt of '${op.key}'`, op.expiresAt);
  }
}

export function checkActual(actual: number): void {
  checkInteger('actual', actual);
  if (actual < 0) throw new RangeError(`actual must not be negative, got ${actual}`);
}

export function checkAdd(key: string, amount: number, expiresAt: number | null): void {
  checkKey(key);
  checkInteger(`amount of '${key}'`, amount);
  if (expiresAt !== null) checkTime(`expiresAt of '${key}'`, expiresAt);
}

/** Whether `next` (the counter after the op) breaks the op's bound. */
export function breaksBound(op: CounterOp, next: number): boolean {
  return (op.max !== undefined && next > op.max) || (op.min !== undefined && next < op.min);
}

/**
 * An add() whose result a counter cannot hold exactly (past Number.MAX_SAFE_INTEGER). Refused, not
 * applied: past 2^53 a double rounds each later charge to the nearest representable value, so a
 * balance drifts from its top-ups minus its ledger (and from its own durable copy, which adds exactly).
 */
export class CounterOverflowError extends RangeError {
  constructor(
    readonly key: string,
    readonly value: number,
    readonly amount: number,
  ) {
    super(`counter '${key}' at ${value} cannot take ${amount}: the result would pass ${Number.MAX_SAFE_INTEGER}`);
    this.name = 'CounterOverflowError';
  }
}

export class DuplicateReservationError extends Error {
  constructor(readonly id: string) {
    super(`reservation '${id}' already exists: reservation ids must be unique`);
    this.name = 'DuplicateReservationError';
  }
}

export class CounterStoreClosedError extends Error {
  constructor() {
    super('counter store is closed');
    this.name = 'CounterStoreClosedError';
  }
}
