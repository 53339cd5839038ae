import { describe, expect, it } from 'vitest';
import { GatewayError } from '../errors/gateway-error.js';
import { MemoryCounterStore } from '../storage/memory/counters.js';
import { CounterStoreUnavailableError, type CounterStore } from '../storage/counters.js';
import { reserveAction } from './action-count.js';

const now = Date.parse('2026-12-05T10:00:00Z');
const resetAt = now + 90_500;
const op = { key: 'tg:{acct_1}:keys_created:2026-12-05', amount: 1, max: 2, settle: 'keep' as const, expiresAt: resetAt + 60_000 };
const tooMany = (retryAfter: string) => new GatewayError('too_many_keys', { vars: { limit: 2, retryAfter }, headers: { 'retry-after': retryAfter } });

describe('reserveAction', () => {
  it('reserves up to the limit, then refuses with the seconds to the reset, rounded up', async () => {
    const store = new MemoryCounterStore();
    await reserveAction(store, 'a', [op], now, resetAt, tooMany);
    await reserveAction(store, 'b', [op], now, resetAt, tooMany);
    const refused = await reserveAction(store, 'c', [op], now, resetAt, tooMany).catch((err: GatewayError) => err);
    expect(refused).toMatchObject({ code: 'too_many_keys', headers: { 'retry-after': '91' } });
    // A released reservation gives its place back; a settled one keeps it.
    await store.release('b');
    await reserveAction(store, 'd', [op], now, resetAt, tooMany);
    await store.settle('a', 0);
    await expect(reserveAction(store, 'e', [op], now, resetAt, tooMany)).rejects.toMatchObject({ code: 'too_many_keys' });
  });

  it('fails closed when the counters cannot be reached', async () => {
    const down = { reserve: async () => Promise.reject(new CounterStoreUnavailableError('down')) } as unknown as CounterStore;
    await expect(reserveAction(down, 'a', [op], now, resetAt, tooMany)).rejects.toMatchObject({ code: 'limiter_unavailable', headers: { 'retry-after': '1' } });
  });
});
