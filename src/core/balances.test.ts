import { describe, expect, it } from 'vitest';
import { DuplicateReservationError } from '../storage/counter-ops.js';
import type { CounterStore } from '../storage/counters.js';
import { MemoryCounterStore } from '../storage/memory/counters.js';
import { Balances, TOP_UP_KEY_MEMORY_MS, TopUpLapsedError } from './balances.js';

function setup(store: CounterStore = new MemoryCounterStore()) {
  let now = Date.parse('2026-12-05T12:00:00Z');
  const balances = new Balances(store, () => now);
  return { balances, store, advance: (ms: number) => (now += ms) };
}

/** A store whose next settle() fails as a lost reply does: after it applied (`applied`) or before. */
function lossySettle(inner: CounterStore, applied: boolean): CounterStore & { armed: boolean } {
  const store = Object.create(inner) as CounterStore & { armed: boolean };
  store.armed = true;
  store.settle = async (id, actual) => {
    if (!store.armed) return inner.settle(id, actual);
    store.armed = false;
    if (applied) await inner.settle(id, actual);
    throw new Error('command timed out');
  };
  return store;
}

describe('Balances.addOnce', () => {
  it('adds once per key and account, replays a repeat, and refuses the key with another amount', async () => {
    const { balances } = setup();
    expect(await balances.addOnce('acct_a', 500, 'order-1')).toEqual({ outcome: 'added', balance: 500 });
    expect(await balances.addOnce('acct_a', 500, 'order-1')).toEqual({ outcome: 'replayed', balance: 500 });
    expect(await balances.addOnce('acct_a', 700, 'order-1')).toEqual({ outcome: 'reused', amount: 500 });
    expect(await balances.addOnce('acct_a', 700, 'order-2')).toEqual({ outcome: 'added', balance: 1200 });
    // The key is the account's: another account's top-up under the same text is its own.
    expect(await balances.addOnce('acct_b', 500, 'order-1')).toEqual({ outcome: 'added', balance: 500 });
    // A plain top-up beside them is not deduplicated.
    await balances.add('acct_a', 5);
    expect(await balances.get('acct_a')).toBe(1205);
  });

  it('remembers a key for 24 hours, and forgets it once the store drops counters past their expiry', async () => {
    const { balances, store, advance } = setup();
    await balances.addOnce('acct_a', 500, 'k');
    await store.sweep(advance(TOP_UP_KEY_MEMORY_MS - 1));
    expect((await balances.addOnce('acct_a', 500, 'k')).outcome).toBe('replayed');
    await store.sweep(advance(1));
    expect(await balances.addOnce('acct_a', 500, 'k')).toEqual({ outcome: 'added', balance: 1000 });
  });

  it('adds nothing, and keeps nothing of the key, when the balance cannot take the amount', async () => {
    const { balances } = setup();
    await balances.add('acct_a', Number.MAX_SAFE_INTEGER - 10);
    await expect(balances.addOnce('acct_a', 11, 'k')).rejects.toMatchObject({ name: 'CounterOverflowError' });
    expect(await balances.addOnce('acct_a', 10, 'k')).toEqual({ outcome: 'added', balance: Number.MAX_SAFE_INTEGER });
  });

  it('a retry after a reply lost once the top-up was applied is a replay', async () => {
    const inner = new MemoryCounterStore();
    const { balances } = setup(lossySettle(inner, true));
    await expect(balances.addOnce('acct_a', 500, 'k')).rejects.toThrow('command timed out');
    expect(await balances.addOnce('acct_a', 500, 'k')).toEqual({ outcome: 'replayed', balance: 500 });
  });

  it('a retry after a reply lost before the settlement waits for the hold to lapse, then adds once', async () => {
    const inner = new MemoryCounterStore();
    const { balances, advance } = setup(lossySettle(inner, false));
    await expect(balances.addOnce('acct_a', 500, 'k')).rejects.toThrow('command timed out');
    // Held: the first attempt may still settle, so the retry neither adds nor claims it was added.
    await expect(balances.addOnce('acct_a', 500, 'k')).rejects.toBeInstanceOf(DuplicateReservationError);
    expect(await balances.get('acct_a')).toBe(500); // the hold counts, as every reservation does
    advance(60_001);
    expect(await balances.get('acct_a')).toBe(0);
    expect(await balances.addOnce('acct_a', 500, 'k')).toEqual({ outcome: 'added', balance: 500 });
    expect(await balances.addOnce('acct_a', 500, 'k')).toEqual({ outcome: 'replayed', balance: 500 });
  });

  it('says so when its own hold lapsed before it settled: nothing stays added', async () => {
    const inner = new MemoryCounterStore();
    const store = Object.create(inner) as CounterStore;
    store.settle = async () => false;
    const { balances } = setup(store);
    await expect(balances.addOnce('acct_a', 500, 'k')).rejects.toBeInstanceOf(TopUpLapsedError);
  });

  it('of 100 concurrent top-ups under one key, one adds', async () => {
    const { balances } = setup();
    const results = await Promise.allSettled(Array.from({ length: 100 }, () => balances.addOnce('acct_a', 300, 'burst')));
    const added = results.filter((r) => r.status === 'fulfilled' && r.value.outcome === 'added');
    expect(added).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(DuplicateReservationError);
      else expect(r.value).toMatchObject({ outcome: expect.stringMatching(/^(added|replayed)$/), balance: 300 });
    }
    expect(await balances.get('acct_a')).toBe(300);
  });
});
