// The metering seam of the request path. Every request is shaped by its plan, then admitted —
// its worst-case cost reserved against every counter it touches in one atomic step — before the
// upstream call, and settled to the actual cost (or released) after it. core/plan-meter.ts is the
// implementation; the gateway only sees this interface.
import type { ModelConfig } from '../config/schema.js';
import type { Account, ApiKey } from '../storage/ports.js';
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
   */
  settle(credits: number, receipt?: string): Promise<void>;
  /** Gives the whole reservation back (the upstream failed before producing output). */
  release(): Promise<void>;
}

export interface Meter {
  /** Applies the plan's shape rules (may change the request); throws a GatewayError to refuse. */
  shape(principal: Principal, model: ModelConfig, target: ShapeTarget): ShapeOutcome;
  /** Reserves the worst case on every applicable counter, or throws a GatewayError naming the rule. */
  admit(req: AdmissionRequest): Promise<Admission>;
}
