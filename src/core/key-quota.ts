// How many API keys an account may create per UTC day in the web app (web.keysPerDay). Without a
// limit one free account made 300,000 keys in minutes: every list of them (GET /app/api/keys) then
// held the event loop 3.6 s and 560 MB, and each create-and-revoke emptied every instance's key
// cache. Counted like sign-ups: one atomic reserve that settles as 'keep' (no read-then-write), so
// concurrent creations cannot pass the limit; a revocation gives nothing back, a failed creation
// gives its count back.
import { GatewayError } from '../errors/gateway-error.js';
import type { Clock } from '../lib/clock.js';
import { CounterStoreUnavailableError, type CounterOp, type CounterStore } from '../storage/counters.js';
import { accountKeyPrefix } from './balances.js';
import { windowAt } from './windows.js';

/** The counter outlives its day by this much before a sweep may forget it, ms. */
const GRACE_MS = 60_000;

export class KeyQuota {
  constructor(
    private readonly counters: CounterStore,
    private readonly clock: Clock,
    private readonly perDay: number,
  ) {}

  /**
   * Makes one key through `create`, counted against the account's day, or throws 429 too_many_keys
   * (with Retry-After: the next UTC day). A creation that throws gives its count back: during a
   * storage outage each retry answered 503 and still counted, and web.keysPerDay of them locked
   * the account out of new keys until midnight, with none made.
   */
  async create<T>(accountId: string, attemptId: string, create: () => Promise<T>): Promise<T> {
    const op = await this.take(accountId, attemptId);
    try {
      return await create();
    } catch (err) {
      // The creation's own error is the answer; a give-back the limiter refuses leaves the count
      // spent (the side of the limit, as before).
      await this.counters.add(op.key, -1, op.expiresAt).catch(() => undefined);
      throw err;
    }
  }

  /** Counts one key creation of the account (the counter it counted in), or throws too_many_keys. */
  private async take(accountId: string, attemptId: string): Promise<CounterOp> {
    const now = this.clock.now();
    const day = windowAt('day', now);
    const id = `keys:${attemptId}`;
    const op: CounterOp = { key: `${accountKeyPrefix(accountId)}:keys_created:${day.id}`, amount: 1, max: this.perDay, settle: 'keep', expiresAt: day.endsAt + GRACE_MS };
    let result;
    try {
      result = await this.counters.reserve(id, [op], now + 60_000, now);
    } catch (err) {
      // Fail closed: without the counter, creation would be unlimited.
      if (err instanceof CounterStoreUnavailableError) throw new GatewayError('limiter_unavailable', { cause: err, headers: { 'retry-after': '1' } });
      throw err;
    }
    if (!result.ok) {
      const retryAfter = String(Math.max(1, Math.ceil((day.endsAt - now) / 1000)));
      throw new GatewayError('too_many_keys', { vars: { limit: this.perDay, retryAfter }, headers: { 'retry-after': retryAfter } });
    }
    await this.counters.settle(id, 0);
    return op;
  }
}
