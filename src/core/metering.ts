// The metering seam of the request path: every request is admitted before its upstream call and
// settled (or released) after it. The plans-and-metering engine implements Meter with one atomic
// reservation across every counter a request touches; until then `unmetered` admits everything
// and settles nothing, so the request path already has the shape the engine needs.
import type { ModelConfig } from '../config/schema.js';
import type { Account, ApiKey } from '../storage/ports.js';
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
  /** Worst-case cost of the request in credits, computed after shaping. */
  worstCaseCredits: number;
}

export interface Admission {
  /** Rate-limit headers for the response (x-ratelimit-*), if any rule applies. */
  readonly headers: Record<string, string>;
  /** Replace the reservation by the actual cost. Called at most once, or `release` is. */
  settle(credits: number): Promise<void>;
  /** Give the whole reservation back (upstream failed before producing output). */
  release(): Promise<void>;
}

export interface Meter {
  /** Resolves with an admission, or throws a GatewayError naming the rule that refused. */
  admit(req: AdmissionRequest): Promise<Admission>;
}

const noHeaders: Record<string, string> = Object.freeze({}) as Record<string, string>;
const openAdmission: Admission = {
  headers: noHeaders,
  settle: async () => {},
  release: async () => {},
};

export const unmetered: Meter = { admit: async () => openAdmission };
