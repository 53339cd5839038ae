// How many API keys an account may create per UTC day in the web app (web.keysPerDay). Without a
// limit one free account made 300,000 keys in minutes: every list of them (GET /app/api/keys) then
// held the event loop 3.6 s and 560 MB, and each create-and-revoke emptied every instance's key
// cache. Counted like sign-ups (action-count.ts): the reservation is settled (kept) once the key is
// made and released if making it fails; a revocation gives nothing back. The same count, with its
// own counter and limit, bounds the changes of keys' credit limits (web.keyLimitChangesPerDay),
// each of which empties every instance's key cache too.
import { GatewayError } from '../errors/gateway-error.js';
import type { Clock } from '../lib/clock.js';
import type { CounterStore } from '../storage/counters.js';
import { ACTION_COUNT_GRACE_MS, reserveAction } from './action-count.js';
import { accountKeyPrefix } from './balances.js';
import { windowAt } from './windows.js';

/** What a quota counts: its counter beside the account's rules (reserved in config/schema.ts), and its refusal. */
interface Counted {
  counter: string;
  tooMany: (limit: number, retryAfter: string) => GatewayError;
}

const KEY_CREATIONS: Counted = {
  counter: 'keys_created',
  tooMany: (limit, retryAfter) => new GatewayError('too_many_keys', { vars: { limit, retryAfter }, headers: { 'retry-after': retryAfter } }),
};

export const KEY_LIMIT_CHANGES: Counted = {
  counter: 'key_limit_changes',
  tooMany: (limit, retryAfter) => new GatewayError('too_many_key_limit_changes', { vars: { limit, retryAfter }, headers: { 'retry-after': retryAfter } }),
};

export class KeyQuota {
  constructor(
    private readonly counters: CounterStore,
    private readonly clock: Clock,
    private readonly perDay: number,
    private readonly counted: Counted = KEY_CREATIONS,
  ) {}

  /**
   * Makes one key through `create` (or changes one's limit), counted against the account's day, or
   * throws 429 too_many_keys (too_many_key_limit_changes; with Retry-After: the next UTC day), or 403
   * key_creation_closed at a limit of 0. A creation
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

  /** Reserves one counted action of the account (the reservation's id), or throws its refusal. */
  private async take(accountId: string, attemptId: string): Promise<string> {
    const now = this.clock.now();
    const day = windowAt('day', now);
    const id = `keys:${attemptId}`;
    const op = { key: `${accountKeyPrefix(accountId)}:${this.counted.counter}:${day.id}`, amount: 1, max: this.perDay, settle: 'keep' as const, expiresAt: day.endsAt + ACTION_COUNT_GRACE_MS };
    await reserveAction(this.counters, id, [op], now, day.endsAt, (retryAfter) => this.counted.tooMany(this.perDay, retryAfter));
    return id;
  }
}
