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
