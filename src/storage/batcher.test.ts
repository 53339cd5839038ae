import { describe, expect, it } from 'vitest';
import { BatchClosedError, Batcher } from './batcher.js';

/** A write that records its batches and lets the test decide when each completes. */
function recorder(fail?: (items: number[]) => boolean) {
  const batches: number[][] = [];
  const write = async (items: number[]) => {
    batches.push(items);
    await new Promise((r) => setTimeout(r, 1));
    if (fail?.(items)) throw new Error(`write failed: ${items.join(',')}`);
  };
  return { batches, write };
}

describe('Batcher', () => {
  it('writes a full batch at once and the rest in batches of at most maxRecords', async () => {
    const { batches, write } = recorder();
    const b = new Batcher(write, { maxRecords: 4, maxDelayMs: 60_000 });
    const all = Array.from({ length: 10 }, (_, i) => b.add(i));
    expect(batches).toEqual([[0, 1, 2, 3]]); // synchronously, on the 4th add
    await Promise.all(all.slice(0, 8));
    expect(batches).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [8, 9], // queued during the write in flight: no need to wait for the delay
    ]);
    await Promise.all(all);
    expect(b.stats()).toMatchObject({ flushes: 3, written: 10, largestBatch: 4, queued: 0 });
  });

  it('flushes a partial batch after maxDelayMs', async () => {
    const { batches, write } = recorder();
    const b = new Batcher(write, { maxRecords: 100, maxDelayMs: 5 });
    await Promise.all([b.add(1), b.add(2)]);
    expect(batches).toEqual([[1, 2]]);
  });

  it('never strands an add() made as a previous batch resolves', async () => {
    const { batches, write } = recorder();
    const b = new Batcher(write, { maxRecords: 100, maxDelayMs: 0 });
    for (let i = 0; i < 30; i++) await b.add(i);
    expect(batches.flat()).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });

  it('with maxDelayMs 0, writes what was added in one turn of the event loop together, without a timer', async () => {
    const { batches, write } = recorder();
    const b = new Batcher(write, { maxRecords: 100, maxDelayMs: 0 });
    const added = Promise.all([1, 2, 3].map((i) => b.add(i)));
    // The write starts in the check phase of this very turn, before any timer could fire.
    await new Promise((r) => setImmediate(r));
    expect(batches).toEqual([[1, 2, 3]]);
    await added;
    await Promise.all([4, 5].map((i) => b.add(i)));
    expect(batches).toEqual([[1, 2, 3], [4, 5]]);
  });

  it('rejects every add() of a failed batch, keeps going with the next', async () => {
    const { write } = recorder((items) => items.includes(1));
    const b = new Batcher(write, { maxRecords: 2, maxDelayMs: 0 });
    const results = await Promise.allSettled([0, 1, 2, 3].map((i) => b.add(i)));
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'fulfilled', 'fulfilled']);
    expect(b.stats()).toMatchObject({ flushes: 2, failedFlushes: 1, failed: 2, written: 2 });
  });

  it('close() writes everything queued and refuses later adds', async () => {
    const { batches, write } = recorder();
    const b = new Batcher(write, { maxRecords: 3, maxDelayMs: 60_000 });
    const pending = [1, 2, 3, 4, 5].map((i) => b.add(i));
    await b.close();
    await b.close();
    await expect(Promise.all(pending)).resolves.toHaveLength(5);
    expect(batches.flat()).toEqual([1, 2, 3, 4, 5]);
    await expect(b.add(6)).rejects.toBeInstanceOf(BatchClosedError);
  });

  it('validates its options', () => {
    const write = async () => {};
    expect(() => new Batcher(write, { maxRecords: 0 })).toThrow(RangeError);
    expect(() => new Batcher(write, { maxDelayMs: -1 })).toThrow(RangeError);
  });
});
