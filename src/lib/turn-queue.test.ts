import { describe, expect, it } from 'vitest';
import { TurnQueue } from './turn-queue.js';

describe('TurnQueue', () => {
  it('runs queued work together after the current turn, in order', async () => {
    const q = new TurnQueue();
    const seen: string[] = [];
    q.push(() => seen.push('a'));
    q.push(() => seen.push('b'));
    await Promise.resolve(); // microtasks run first: still queued
    expect(seen).toEqual([]);
    await new Promise((r) => setImmediate(r)); // the queue's immediate was scheduled first
    expect(seen).toEqual(['a', 'b']);
  });

  it('schedules one immediate per turn, and again for work queued from inside a run', async () => {
    const q = new TurnQueue();
    const seen: number[] = [];
    q.push(() => {
      seen.push(1);
      q.push(() => seen.push(3)); // lands in the next turn, not this run
    });
    q.push(() => seen.push(2));
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual([1, 2]);
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual([1, 2, 3]);
  });
});
