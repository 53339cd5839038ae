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

it('refuses an add whose result it cannot hold exactly, and changes nothing', async () => {
  // Past 2^53 each later settlement rounds: a balance of 2^53 + 1 charged 483 drifted by credits.
  const store = new MemoryCounterStore();
  await store.add('b', Number.MAX_SAFE_INTEGER - 10, null);
  await expect(store.add('b', 11, null)).rejects.toMatchObject({ name: 'CounterOverflowError' });
  expect(await store.get(['b'], 0)).toEqual([Number.MAX_SAFE_INTEGER - 10]);
  expect(await store.add('b', 10, null)).toBe(Number.MAX_SAFE_INTEGER);
});
