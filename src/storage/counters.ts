// The counter-store port: every number a limit is enforced on (window counters, concurrency
// leases, prepaid balances) lives behind it, and every check-and-update is ONE atomic operation
// in the store — never read, compare, write later. Implementations: embedded (SQLite, this
// process), Redis (one Lua script per operation, shared by many instances). All pass
// storage/contract/counters.contract.ts.

/**
 * One counter a reservation touches.
 * - `amount` is added to the counter's value at reserve time.
 * - `max`: the reservation fails if `value + amount > max` (a usage counter: credits, requests, leases).
 * - `min`: the reservation fails if `value + amount < min` (a balance: amount negative, min 0).
 * - `settle` says what happens to `amount` when the reservation settles:
 *     `actual` — replaced by the actual cost (sign kept: +actual for usage, −actual for a balance);
 *     `keep`   — stays (a request count);
 *     `return` — given back (a concurrency lease).
 *   On release or expiry every op is given back, whatever its `settle`.
 * - `expiresAt` (epoch ms): when the counter itself may be forgotten (end of its window plus a
 *   grace); null for counters that never expire (balances, lifetime windows).
 */
export interface CounterOp {
  key: string;
  amount: number;
  max?: number;
  min?: number;
  settle: 'actual' | 'keep' | 'return';
  expiresAt: number | null;
}

/** An amount added to a counter without a limit check (storage/counters.ts Receipts.charge). */
export interface Charge {
  key: string;
  amount: number;
  expiresAt: number | null;
}

export type ReserveResult =
  | {
      ok: true;
      /** Each op's counter value after the reservation, in op order. */
      values: number[];
    }
  | {
      ok: false;
      /** Index of the first op that did not fit. Nothing was changed. */
      failed: number;
      /** That counter's value before the attempt. */
      value: number;
    };

export interface CounterStore {
  /**
   * Atomically: drop expired reservations (giving their amounts back), then either apply every op
   * and record reservation `id` (expiring at `expiresAt` unless renewed) or apply none.
   */
  reserve(id: string, ops: readonly CounterOp[], expiresAt: number, now: number): Promise<ReserveResult>;
  /**
   * Atomically replaces reservation `id` by its settled amounts (see CounterOp.settle) and forgets
   * it. Returns false (changing nothing) if the reservation is unknown — already settled,
   * released, or expired. Settling above a `max` is allowed: the actual cost was incurred.
   */
  settle(id: string, actual: number): Promise<boolean>;
  /** Atomically gives every op of reservation `id` back and forgets it. False if unknown. */
  release(id: string): Promise<boolean>;
  /** Pushes the expiry of live reservations (heartbeat of in-flight requests). */
  renew(ids: readonly string[], expiresAt: number): Promise<void>;
  /** Current values (0 for unknown keys), after dropping expired reservations. */
  get(keys: readonly string[], now: number): Promise<number[]>;
  /** Adds to a counter without limits (top-ups, corrections); returns the new value. */
  add(key: string, amount: number, expiresAt: number | null): Promise<number>;
  /**
   * Drops expired reservations (giving amounts back) and counters past their expiresAt. Returns
   * reservations dropped. With `onceEveryMs`, a store that several processes share sweeps at most
   * once per that many ms across all of them: the process that claims the turn sweeps, the others
   * return 0 at once (a store of one process sweeps every time).
   */
  sweep(now: number, opts?: { onceEveryMs?: number }): Promise<number>;
  /** Throws when the store cannot serve (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
  /**
   * Present on a store shared by processes (Redis): see Receipts. The embedded store has none —
   * its settlements and ledger rows commit together, on one SQLite connection.
   */
  readonly receipts?: Receipts;
}

/**
 * An outbox for ledger records. A store shared by processes cannot commit a settlement and its
 * ledger row in one transaction, so a process killed between the two would leave a charge that
 * no record explains (or, the other way round, a record of a charge the counters gave back). A
 * store with receipts keeps the record with the settlement, in the same atomic step, until the
 * ledger is known to hold it; whatever a dead process left behind, another one writes.
 */
export interface Receipts {
  /**
   * As settle(), and atomically with it keeps `receipt` under the reservation's id. Keeps nothing
   * when the reservation is unknown (the result is then false) — unless this id was settled
   * already, when it answers true and changes nothing (see charge()).
   */
  settle(id: string, actual: number, receipt: string): Promise<boolean>;
  /**
   * Charges an id that has no live reservation (it lapsed, or was admitted unmetered): adds each
   * amount as add() does and keeps `receipt`, atomically, once per id. Settling or charging the
   * same id again — a retry after a lost reply — changes nothing: settle() then answers true, and
   * this answers false (also while a receipt its settlement kept is not acknowledged yet). The store remembers ids for a bounded time (Redis: 15 minutes), or for
   * `rememberMs` when given: a caller that may apply the same charge again much later says so.
   *
   * A reservation still recorded under `id` is given back in the same step: the charge is the
   * request's whole cost and replaces it. So a settlement of `id` that reaches the store only after
   * this (sent before an outage, run when the store resumed) finds it settled and changes nothing,
   * instead of settling the reservation on top of the charge.
   */
  charge(id: string, charges: readonly Charge[], receipt: string, rememberMs?: number): Promise<boolean>;
  /** Receipts kept and not yet acknowledged, by any process; at most `limit`, in no set order. */
  pending(limit: number): Promise<Array<{ id: string; receipt: string }>>;
  /**
   * Forgets these receipts (their records are in the ledger). Unknown ids are ignored. With
   * `rememberMs` (a drain's: receipts their own process did not forget), each id stays known as
   * charged for that long, as charge()'s `rememberMs` keeps it: a charge owed for it — its
   * settlement ran but the reply was lost, so the charge was also written to the ledger — may come
   * long after the settlement's own memory lapsed, and must change nothing then.
   */
  acknowledge(ids: readonly string[], rememberMs?: number): Promise<void>;
}

/**
 * The store cannot be reached (a network store that is down). Distinguished from other errors so
 * the engine can apply the configured failure policy (limiter.onUnavailable) instead of failing
 * the request as a bug.
 */
export class CounterStoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CounterStoreUnavailableError';
  }
}
