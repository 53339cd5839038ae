// Shared normalisation for every store: timestamps are compared as strings (SQLite TEXT, and the
// same bounds semantics in PostgreSQL), which is only correct when they all have one canonical form.

/** The canonical instant form: `2026-11-25T10:00:00.000Z` (what `Date#toISOString` yields). */
export function canonicalInstant(value: string): string {
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) {
    // A real day only: 2026-02-30 would compare as a string between real instants and match nothing.
    const ms = Date.parse(`${value}T00:00:00.000Z`);
    if (Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== value) throw new RangeError(`not a calendar date: '${value}'`);
    return inRange(ms, value);
  }
  // A timestamp without a zone would be read as local time by Date.parse: refuse it rather than guess.
  if (!/T.*(Z|[+-]\d{2}:?\d{2})$/i.test(value)) {
    throw new RangeError(`not an ISO 8601 UTC date or timestamp with a zone: '${value}'`);
  }
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new RangeError(`not an ISO 8601 date or timestamp: '${value}'`);
  return inRange(ms, value);
}

/** Years 0001–9999: what every store can hold (PostgreSQL has no year 0) and the four-digit form can write. */
const FIRST = Date.parse('0001-01-01T00:00:00.000Z');
const AFTER_LAST = Date.parse('+010000-01-01T00:00:00.000Z');

function inRange(ms: number, value: string): string {
  if (ms < FIRST || ms >= AFTER_LAST) throw new RangeError(`outside the years 0001-9999: '${value}'`);
  return new Date(ms).toISOString();
}

/**
 * Whether a `from` (inclusive) – `to` (exclusive) range of valid bounds holds no instant. A range
 * given backwards, or one day written as from=to, answered an empty list as if nothing had been used.
 */
export function emptyRange(from: string | undefined, to: string | undefined): boolean {
  return from !== undefined && to !== undefined && canonicalInstant(from) >= canonicalInstant(to);
}

export const DEFAULT_QUERY_LIMIT = 1000;
export const MAX_QUERY_LIMIT = 10_000;

/** `undefined` → the default; otherwise clamped to 0…MAX_QUERY_LIMIT. */
export function clampLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_QUERY_LIMIT;
  if (!Number.isFinite(limit)) return limit > 0 ? MAX_QUERY_LIMIT : 0;
  return Math.min(Math.max(Math.floor(limit), 0), MAX_QUERY_LIMIT);
}
