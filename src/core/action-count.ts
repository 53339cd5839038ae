// What a person may do so many times per window — sign up from an address (an hour), try a
// password (a minute), create API keys (a day): one atomic reserve of every counter the action
// counts in, so concurrent attempts cannot pass a limit (no read-then-write). The caller settles
// the reservation (kept) once the action is done, or releases it if the action failed.
import { GatewayError } from '../errors/gateway-error.js';
import { type CounterOp, type CounterStore, CounterStoreUnavailableError } from '../storage/counters.js';

/** A window's counter outlives the window by this much before a sweep may forget it, ms. */
export const ACTION_COUNT_GRACE_MS = 60_000;

/** How long an action's reservation holds if its process dies before settling it, ms. */
const ACTION_TTL_MS = 60_000;

/**
 * Reserves one action in every op at once under `id`, or throws `tooMany` with the seconds until
 * `resetAt`. Fails closed: without the counters the action would be unlimited.
 */
export async function reserveAction(
  counters: CounterStore,
  id: string,
  ops: CounterOp[],
  now: number,
  /** When the counter that refused resets: one instant, or by the index of the op that did not fit. */
  resetAt: number | ((failed: number) => number),
  tooMany: (retryAfter: string) => GatewayError,
): Promise<void> {
  let result;
  try {
    result = await counters.reserve(id, ops, now + ACTION_TTL_MS, now);
  } catch (err) {
    if (err instanceof CounterStoreUnavailableError) throw new GatewayError('limiter_unavailable', { cause: err, headers: { 'retry-after': '1' } });
    throw err;
  }
  if (!result.ok) {
    const resets = typeof resetAt === 'number' ? resetAt : resetAt(result.failed);
    throw tooMany(String(Math.max(1, Math.ceil((resets - now) / 1000))));
  }
}
