import { expect, it } from 'vitest';
import { counterStoreContract } from '../contract/counters.contract.js';
import { MemoryCounterStore } from './counters.js';

counterStoreContract('memory', () => new MemoryCounterStore());

it('refuses every operation after close', async () => {
  const store = new MemoryCounterStore();
  await store.close();
  await expect(store.get(['a'], 0)).rejects.toThrow(/closed/);
  await expect(store.add('a', 1, null)).rejects.toThrow(/closed/);
});

it('lets a counter that never expires go once idle for a whole sweep, only at 0 (it has no copy elsewhere)', async () => {
  const store = new MemoryCounterStore();
  const slot = { key: 'conc:acc_1', amount: 1, max: 1, settle: 'return' as const, expiresAt: null };
  expect(await store.reserve('a', [slot], 60_000, 0)).toMatchObject({ ok: true });
  await store.settle('a', 0);
  await store.add('balance:acc_1', 500, null);
  await store.sweep(1);
  // Changed since the sweep before began: kept.
  expect(store.held).toBe(2);
  await store.sweep(2);
  // Idle since: the slot at 0 goes; the balance, held nowhere else, stays.
  expect(store.held).toBe(1);
  expect(await store.get(['balance:acc_1'], 3)).toEqual([500]);
  // The slot starts again from 0, and still admits one at a time.
  expect(await store.reserve('b', [slot], 60_000, 3)).toMatchObject({ ok: true, values: [1] });
  expect(await store.reserve('c', [slot], 60_000, 3)).toMatchObject({ ok: false });
  // Held by a live reservation, idle or not, it stays.
  await store.sweep(4);
  await store.sweep(5);
  expect(await store.reserve('d', [slot], 60_000, 6)).toMatchObject({ ok: false });
  await store.release('b');
  expect(await store.reserve('d', [slot], 60_000, 6)).toMatchObject({ ok: true });
});
