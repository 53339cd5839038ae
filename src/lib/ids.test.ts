import { describe, expect, it } from 'vitest';
import { randomBase62, randomIds, sha256Hex, uuidV7 } from './ids.js';

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

  it('request ids are UUIDv7s that start with their time and do not repeat', () => {
    const before = Date.now();
    const ids = Array.from({ length: 1000 }, () => randomIds.requestId());
    expect(new Set(ids).size).toBe(1000);
    for (const id of ids) {
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      const ms = parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
      expect(ms).toBeGreaterThanOrEqual(before);
      expect(ms).toBeLessThanOrEqual(Date.now());
    }
    expect(uuidV7(Date.UTC(2026, 11, 4)).slice(0, 13)).toBe(`${Date.UTC(2026, 11, 4).toString(16).padStart(12, '0').slice(0, 8)}-${Date.UTC(2026, 11, 4).toString(16).slice(-4)}`);
  });

  it('hashes with SHA-256', () => {
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});
