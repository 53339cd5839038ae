// How many API keys an account may create per UTC day in the web app (web.keysPerDay). Without a
// limit one free account made 300,000 keys in minutes: every list of them (GET /app/api/keys) then
// held the event loop 3.6 s and 560 MB, and each create-and-revoke emptied every instance's key
// cache. Counted like sign-ups (action-count.ts): the reservation is settled (kept) once the key is
// made and released if making it fails; a revocation gives nothing back.
import { GatewayError } from '../errors/gateway-error.js';
import type { Clock } from '../lib/clock.js';
import type { CounterStore } from '../storage/counters.js';
import { ACTION_COUNT_GRACE_MS, reserveAction } from './action-count.js';
import { accountKeyPrefix } from './balances.js';
import { windowAt } from './windows.js';

export class KeyQuota {
  constructor(
    private readonly counters: CounterStore,
    private readonly clock: Clock,
    private readonly perDay: number,
  ) {}

  /**
   * Makes one key through `create`, counted against the account's day, or throws 429 too_many_keys
   * (with Retry-After: the next UTC day), or 403 key_creation_closed at a limit of 0. A creation
   * that throws gives its count back: during a storage outage each retry answered 503 and still
   * counted, and web.keysPerDay of them locked the account out of new keys until midnight, with
   * none made.
   */
  async create<T>(accountId: string, attemptId: string, create: () => Promise<T>): Promise<T> {
    // Closed, not spent: a 429 would say "try again tomorrow" to a form that never opens.
    if (!this.open) throw new GatewayError('key_creation_closed');
    const id = await this.take(accountId, attemptId);
    let made: T;
    try {
      made = await create();
    } catch (err) {
      // The creation's own error is the answer; a release the limiter refuses leaves the count held
      // until the reservation's TTL gives it back.
      await this.counters.release(id).catch(() => undefined);
      throw err;
    }
    // The key exists and its secret is shown only in this answer: a settlement the limiter refuses
    // must not turn it into an error. Unsettled, the reservation lapses after its TTL and the count
    // is given back (one key more that day, at most).
    await this.counters.settle(id, 0).catch(() => undefined);
    return made;
  }

  /** Whether accounts make their own keys: web.keysPerDay 0 leaves key creation to the operator. */
  get open(): boolean {
    return this.perDay > 0;
  }

  /** Reserves one key creation of the account (the reservation's id), or throws too_many_keys. */
  private async take(accountId: string, attemptId: string): Promise<string> {
    const now = this.clock.now();
    const day = windowAt('day', now);
    const id = `keys:${attemptId}`;
    const op = { key: `${accountKeyPrefix(accountId)}:keys_created:${day.id}`, amount: 1, max: this.perDay, settle: 'keep' as const, expiresAt: day.endsAt + ACTION_COUNT_GRACE_MS };
    await reserveAction(this.counters, id, [op], now, day.endsAt, (retryAfter) =>
      new GatewayError('too_many_keys', { vars: { limit: this.perDay, retryAfter }, headers: { 'retry-after': retryAfter } }),
    );
    return id;
  }
}
