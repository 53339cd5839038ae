import { describe, expect, it } from 'vitest';
import { resetDuration, windowAt } from './windows.js';

const at = (iso: string) => Date.parse(iso);

describe('windowAt', () => {
  it('keys a day by its UTC date and ends it at UTC midnight', () => {
    expect(windowAt('day', at('2026-11-25T23:59:59.999Z'))).toEqual({ id: 'd2026-11-25', endsAt: at('2026-11-26T00:00:00Z') });
    expect(windowAt('day', at('2026-11-26T00:00:00Z')).id).toBe('d2026-11-26');
  });
  it('handles month and year ends', () => {
    expect(windowAt('day', at('2026-12-31T12:00:00Z')).endsAt).toBe(at('2027-01-01T00:00:00Z'));
    expect(windowAt('month', at('2026-12-31T12:00:00Z'))).toEqual({ id: 'M2026-12', endsAt: at('2027-01-01T00:00:00Z') });
    expect(windowAt('month', at('2028-02-29T12:00:00Z')).endsAt).toBe(at('2028-03-01T00:00:00Z'));
  });
  it('keys minutes and hours', () => {
    expect(windowAt('minute', at('2026-11-25T10:31:15Z'))).toEqual({ id: 'm2026-11-25T10:31', endsAt: at('2026-11-25T10:32:00Z') });
    expect(windowAt('hour', at('2026-11-25T10:31:15Z'))).toEqual({ id: 'h2026-11-25T10', endsAt: at('2026-11-25T11:00:00Z') });
  });
  it('answers the same however time moves between calls (the last span is kept per kind)', () => {
    const times = ['2026-11-25T23:59:59.999Z', '2026-11-26T00:00:00Z', '2026-11-25T00:00:00Z', '2026-11-24T23:59:59.999Z', '2026-11-25T12:00:00Z'];
    for (const iso of [...times, ...times.reverse()]) {
      expect(windowAt('day', at(iso)).id).toBe(`d${new Date(at(iso)).toISOString().slice(0, 10)}`);
      expect(windowAt('hour', at(iso)).id).toBe(`h${new Date(at(iso)).toISOString().slice(0, 13)}`);
    }
  });
  it('never ends a lifetime', () => {
    expect(windowAt('lifetime', 0)).toEqual({ id: 'all', endsAt: Number.POSITIVE_INFINITY });
  });
});

describe('resetDuration', () => {
  it('formats like OpenAI', () => {
    expect(resetDuration(120)).toBe('120ms');
    expect(resetDuration(45_000)).toBe('45s');
    expect(resetDuration(6 * 60_000)).toBe('6m0s');
    expect(resetDuration(3_723_000)).toBe('1h2m3s');
    // A part second rounds up: a client that waits the header out is not refused again for being early.
    expect(resetDuration(1_500)).toBe('2s');
    expect(resetDuration(3_599_001)).toBe('1h0m0s');
    expect(resetDuration(Infinity)).toBe('never');
  });
});
