import { describe, expect, it } from 'vitest';
import { randomBase62, randomIds, sha256Hex } from './ids.js';

describe('ids', () => {
  it('makes base62 strings of the asked length', () => {
    for (const n of [1, 16, 43, 100]) {
      const s = randomBase62(n);
      expect(s).toHaveLength(n);
      expect(s).toMatch(/^[0-9A-Za-z]+$/);
    }
  });

  it('makes tg- secrets that do not repeat', () => {
    const seen = new Set(Array.from({ length: 1000 }, () => randomIds.keySecret()));
    expect(seen.size).toBe(1000);
    for (const s of seen) expect(s).toMatch(/^tg-[0-9A-Za-z]{43}$/);
  });

  it('request ids are UUIDs', () => {
    expect(randomIds.requestId()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('hashes with SHA-256', () => {
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});
