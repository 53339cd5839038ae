import { describe, expect, it } from 'vitest';
import { ChurnMap } from './churn-map.js';

describe('ChurnMap', () => {
  it('behaves as a Map across renewals', () => {
    const m = new ChurnMap<string, number>(4);
    const ref = new Map<string, number>();
    for (let i = 0; i < 200; i++) {
      const k = `k${i % 7}`;
      if (i % 3 === 0) expect(m.delete(k)).toBe(ref.delete(k));
      else {
        m.set(k, i);
        ref.set(k, i);
      }
      expect(m.size).toBe(ref.size);
      expect(m.get(k)).toBe(ref.get(k));
      expect(m.has(k)).toBe(ref.has(k));
    }
    expect([...m]).toEqual([...ref]);
    m.clear();
    expect(m.size).toBe(0);
  });

  it('deleting while iterating visits every entry once, whatever renews under the loop', () => {
    const m = new ChurnMap<number, number>(2);
    for (let i = 0; i < 10; i++) m.set(i, i);
    const seen: number[] = [];
    for (const [k] of m) {
      seen.push(k);
      if (k % 2 === 0) m.delete(k);
    }
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect([...m].map(([k]) => k)).toEqual([1, 3, 5, 7, 9]);
  });
});
