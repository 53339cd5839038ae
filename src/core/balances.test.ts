import { describe, expect, it } from 'vitest';
import { DuplicateReservationError } from '../storage/counter-ops.js';
import type { CounterStore } from '../storage/counters.js';
import { MemoryCounterStore } from '../storage/memory/counters.js';
import { BalanceTooLowError, Balances, TOP_UP_KEY_MEMORY_MS, TopUpLapsedError } from './balances.js';

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

describe('a correction (a negative amount)', () => {
  it('takes credits away, never below zero, counting what requests in flight hold', async () => {
    const { balances, store } = setup();
    await balances.add('acct_a', 1000);
    expect(await balances.add('acct_a', -300)).toBe(700);
    // A request holds 500 of the 700 (as the meter reserves a worst case): 200 can be taken.
    const held = await store.reserve('req-1', [{ key: 'tg:{acct_a}:balance', amount: -500, min: 0, settle: 'actual', expiresAt: null }], Date.now() + 60_000, Date.now());
    expect(held.ok).toBe(true);
    await expect(balances.add('acct_a', -201)).rejects.toBeInstanceOf(BalanceTooLowError);
    await expect(balances.add('acct_a', -201)).rejects.toMatchObject({ value: 200, amount: -201 });
    expect(await balances.add('acct_a', -200)).toBe(0);
    // The request settles for less than it held: the rest comes back to the balance.
    expect(await store.settle('req-1', 120)).toBe(true);
    expect(await balances.get('acct_a')).toBe(380);
  });

  it('under an idempotency key: once, a replay after, and the key told apart from a top-up of the same size', async () => {
    const { balances } = setup();
    await balances.add('acct_a', 1000);
    expect(await balances.addOnce('acct_a', -400, 'refund-1')).toEqual({ outcome: 'added', balance: 600 });
    expect(await balances.addOnce('acct_a', -400, 'refund-1')).toEqual({ outcome: 'replayed', balance: 600 });
    expect(await balances.addOnce('acct_a', 400, 'refund-1')).toEqual({ outcome: 'reused', amount: -400 });
    expect(await balances.addOnce('acct_a', 400, 'order-1')).toEqual({ outcome: 'added', balance: 1000 });
    expect(await balances.addOnce('acct_a', -400, 'order-1')).toEqual({ outcome: 'reused', amount: 400 });
    // The largest correction, and one the balance cannot spare: nothing taken, nothing of the key kept.
    await expect(balances.addOnce('acct_a', -1e15, 'big')).rejects.toBeInstanceOf(BalanceTooLowError);
    expect(await balances.addOnce('acct_a', -1000, 'big')).toEqual({ outcome: 'added', balance: 0 });
  });

  it('of 50 concurrent corrections of 100 from a balance of 1,000, ten are made', async () => {
    const { balances } = setup();
    await balances.add('acct_a', 1000);
    const results = await Promise.allSettled(Array.from({ length: 50 }, () => balances.add('acct_a', -100)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
    expect(results.filter((r) => r.status === 'rejected' && r.reason instanceof BalanceTooLowError)).toHaveLength(40);
    expect(await balances.get('acct_a')).toBe(0);
  });
});
