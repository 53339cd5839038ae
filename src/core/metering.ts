// The metering seam of the request path. Every request is shaped by its plan, then admitted —
// its worst-case cost reserved against every counter it touches in one atomic step — before the
// upstream call, and settled to the actual cost (or released) after it. core/plan-meter.ts is the
// implementation; the gateway only sees this interface.
import type { ModelConfig } from '../config/schema.js';
import type { Account, ApiKey, OwedCharge } from '../storage/ports.js';
import type { ShapeOutcome, ShapeTarget } from './shaping.js';
import type { Surface } from './types.js';

export interface Principal {
  account: Account;
  /** Null for Playground requests made with a web session. */
  key: ApiKey | null;
  surface: Surface;
}

export interface AdmissionRequest {
  requestId: string;
  principal: Principal;
  model: ModelConfig;
  /** Worst-case cost of the shaped request in credits. */
  worstCaseCredits: number;
  /**
   * When the request counts (ms; default: the meter's clock now). Its windows are the ones open
   * then, and the gateway dates the ledger record by the same time, so a request that straddles
   * UTC midnight lands on one day in both.
   */
  at?: number;
}

export interface Admission {
  /** Rate-limit headers (x-ratelimit-*) for the response, reflecting the settlement once settled. */
  headers(): Record<string, string>;
  /**
   * Replaces the reservation by the actual cost. Called at most once, or `release` is. `receipt`
   * (the serialized ledger record) is kept with the settlement where the counter store keeps
   * receipts (storage/counters.ts Receipts), so the record outlives this process.
   *
   * When the counter store cannot be reached, the charge has to wait for it. With `keep`, the
   * meter hands the charge over instead of holding it in memory (where it would die with this
   * process): `keep` stores it with the request's ledger record, durably, and answers true — the
   * record is then written, and any process applies the charge (storage/ports.ts OwedCharges) — or
   * answers false (nothing stored), and the meter holds the charge as it would without `keep`.
   * Called at most once, before this resolves; never when the store took the settlement.
   */
  settle(credits: number, receipt?: string, keep?: KeepOwed): Promise<void>;
  /** Gives the whole reservation back (the upstream failed before producing output). */
  release(): Promise<void>;
}

/** Stores an owed charge with its request's ledger record; true once both are durable, false if neither was stored. */
export type KeepOwed = (owed: OwedCharge) => Promise<boolean>;

export interface Meter {
  /** Applies the plan's shape rules (may change the request); throws a GatewayError to refuse. */
  shape(principal: Principal, model: ModelConfig, target: ShapeTarget): ShapeOutcome;
  /** Reserves the worst case on every applicable counter, or throws a GatewayError naming the rule. */
  admit(req: AdmissionRequest): Promise<Admission>;
  /**
   * The most credits a request for `model` could ever be admitted under: the smallest credits
   * limit among the rules that apply (whatever is used of it). Infinity when no rule caps credits
   * (a prepaid balance has no fixed ceiling).
   */
  creditCeiling(principal: Principal, model: ModelConfig): number;
  /**
   * A prepaid plan's balance as it stands (one counter read), with the refusal its reservation
   * would give: for a prompt too long to count in full before knowing what it may cost
   * (core/prompt-count.ts). Undefined for a plan without a balance, or a limiter that does not answer.
   */
  prepaidBalance(principal: Principal): Promise<PrepaidBalance | undefined>;
}

export interface PrepaidBalance {
  credits: number;
  /** Throws insufficient_balance, as a reservation refused by this balance would. */
  refuse(): never;
}
