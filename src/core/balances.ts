// Prepaid credit balances live in the counter store, next to the counters a request reserves
// against, so "reserve the worst case from the balance" is part of the same atomic step.
import { createHash, randomUUID } from 'node:crypto';
import { CounterOverflowError } from '../storage/counter-ops.js';
import type { CounterOp, CounterStore } from '../storage/counters.js';

/** All of one account's counters share the `{accountId}` hash tag (one Redis Cluster slot). */
export const accountKeyPrefix = (accountId: string) => `tg:{${accountId}}`;
export const balanceKey = (accountId: string) => `${accountKeyPrefix(accountId)}:balance`;

/** How long a top-up's idempotency key is remembered (Stripe's figure for its own API). */
export const TOP_UP_KEY_MEMORY_MS = 24 * 60 * 60 * 1000;
/** How long a top-up may sit between its reservation and its settlement before both lapse. */
const TOP_UP_HOLD_MS = 60_000;
/**
 * A top-up's key mark holds the amount, which must be above 0 for its `max` to stop a second use:
 * a correction's (a negative amount, at most 10^15 credits) is kept as this plus its size.
 */
const NEGATIVE_MARK = 1e15 + 1;
const markOf = (amount: number) => (amount > 0 ? amount : NEGATIVE_MARK - amount);
const amountOfMark = (mark: number) => (mark > NEGATIVE_MARK ? NEGATIVE_MARK - mark : mark);

/** What a top-up under an idempotency key did. */
export type TopUpOnce =
  | { outcome: 'added' | 'replayed'; balance: number }
  /** The key was used for a top-up of another amount: nothing was added. */
  | { outcome: 'reused'; amount: number };

export class Balances {
  constructor(
    private readonly store: CounterStore,
    private readonly now: () => number,
  ) {}

  async get(accountId: string): Promise<number> {
    const [value] = await this.store.get([balanceKey(accountId)], this.now());
    return value ?? 0;
  }

  /**
   * Adds `amount` to the balance; a negative amount (an operator's correction) takes credits away,
   * but never below zero, counting what requests in flight hold: one reservation on the balance,
   * as a request's, settled at once. Throws BalanceTooLowError when it does not fit.
   */
  async add(accountId: string, amount: number): Promise<number> {
    if (amount >= 0) return this.store.add(balanceKey(accountId), amount, null);
    const now = this.now();
    const id = `correction:${accountId}:${randomUUID()}`;
    const reserved = await this.store.reserve(id, [this.balanceOp(accountId, amount)], now + TOP_UP_HOLD_MS, now);
    if (!reserved.ok) throw new BalanceTooLowError(accountId, reserved.value, amount);
    if (!(await this.store.settle(id, 0))) throw new TopUpLapsedError(id);
    return reserved.values[0] ?? 0;
  }

  /** The balance's op in a top-up's reservation: a correction may not take it below zero. */
  private balanceOp(accountId: string, amount: number): CounterOp {
    return amount > 0
      ? { key: balanceKey(accountId), amount, max: Number.MAX_SAFE_INTEGER, settle: 'keep', expiresAt: null }
      : { key: balanceKey(accountId), amount, min: 0, settle: 'keep', expiresAt: null };
  }

  /**
   * Adds `amount` at most once per (account, idempotency key) within TOP_UP_KEY_MEMORY_MS: an
   * operator's retry after a lost reply (a timeout while the store had applied the add) must not
   * credit the account twice. The key's mark — a counter holding the amount, so a reuse with
   * another amount is told apart — and the credit are one reservation, all or nothing: a crash or
   * lost reply between reserve and settle leaves neither once the hold lapses, and the retry
   * applies it then. A retry while the first is still held throws DuplicateReservationError.
   * Throws CounterOverflowError when the balance cannot take the amount.
   */
  async addOnce(accountId: string, amount: number, idempotencyKey: string): Promise<TopUpOnce> {
    // Hashed: the key is the caller's text, of any characters, and becomes part of a store key.
    const token = createHash('sha256').update(idempotencyKey).digest('hex');
    const now = this.now();
    const id = `topup:${accountId}:${token}`;
    const mark = markOf(amount);
    const ops: CounterOp[] = [
      { key: `${accountKeyPrefix(accountId)}:topup:${token}`, amount: mark, max: mark, settle: 'keep', expiresAt: now + TOP_UP_KEY_MEMORY_MS },
      this.balanceOp(accountId, amount),
    ];
    const reserved = await this.store.reserve(id, ops, now + TOP_UP_HOLD_MS, now);
    if (!reserved.ok) {
      if (reserved.failed === 1) {
        if (amount < 0) throw new BalanceTooLowError(accountId, reserved.value, amount);
        throw new CounterOverflowError(balanceKey(accountId), reserved.value, amount);
      }
      if (reserved.value !== mark) return { outcome: 'reused', amount: amountOfMark(reserved.value) };
      return { outcome: 'replayed', balance: await this.get(accountId) };
    }
    // False only if the hold lapsed first (a process paused for a minute): then nothing stays added.
    if (!(await this.store.settle(id, 0))) throw new TopUpLapsedError(id);
    return { outcome: 'added', balance: reserved.values[1] ?? 0 };
  }
}

/** A correction would take the balance (`value`, less what requests in flight hold) below zero: nothing was taken. */
export class BalanceTooLowError extends Error {
  constructor(
    readonly accountId: string,
    readonly value: number,
    readonly amount: number,
  ) {
    super(`the balance of '${accountId}' (${value}) cannot take ${amount}`);
    this.name = 'BalanceTooLowError';
  }
}

/** A top-up's hold lapsed before it was settled: nothing was added; the same key can be retried. */
export class TopUpLapsedError extends Error {
  constructor(readonly id: string) {
    super(`top-up '${id}' lapsed before it was settled; nothing was added`);
    this.name = 'TopUpLapsedError';
  }
}
