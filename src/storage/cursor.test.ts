import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor } from './cursor.js';

describe('ledger cursor', () => {
  it('round-trips a position', () => {
    const at = { createdAt: '2026-12-06T01:02:03.456Z', id: '123456789012' };
    const cursor = encodeCursor(at);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(cursor)).toEqual(at);
    // A PostgreSQL time with microseconds keeps them.
    const micro = { createdAt: '2026-12-06T01:02:03.456789Z', id: '7' };
    expect(decodeCursor(encodeCursor(micro))).toEqual(micro);
  });

  it('refuses what it could not have written', () => {
    const bad = [
      '',
      'not base64!',
      Buffer.from('2026-12-06T01:02:03.456Z').toString('base64url'), // no id
      Buffer.from('2026-12-06T01:02:03.456Z|-1').toString('base64url'),
      Buffer.from('2026-12-06T01:02:03.456Z|1e3').toString('base64url'),
      Buffer.from('2026-12-06|5').toString('base64url'), // a day is a bound, not a stored time
      Buffer.from('2026-12-06T01:02:03Z|5').toString('base64url'), // not canonical
      Buffer.from('2026-02-30T00:00:00.000Z|5').toString('base64url'),
      Buffer.from('2026-12-06T01:02:03.456000Z|5').toString('base64url'), // zero microseconds are not written
      Buffer.from('2026-12-06T01:02:03.4567Z|5').toString('base64url'),
      Buffer.from(`2026-12-06T01:02:03.456Z|${'9'.repeat(19)}`).toString('base64url'),
      'A'.repeat(201),
    ];
    for (const cursor of bad) expect(() => decodeCursor(cursor), cursor).toThrow(RangeError);
  });
});
