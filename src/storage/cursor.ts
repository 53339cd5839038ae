// The ledger's page cursor: where a page of records (newest first, by created_at then the store's
// row id) stopped. A time alone cannot be one: requests settled in the same millisecond share it,
// and a page that ended among them would lose or repeat the rest. Opaque to clients (base64url),
// so its form can change without breaking a script that passes it back.
import { canonicalInstant } from './time.js';

export interface LedgerPosition {
  /**
   * The record's created_at, canonical (`2026-11-25T10:00:00.000Z`), or with the microseconds a
   * PostgreSQL timestamptz keeps when they are not zero (`2026-11-25T10:00:00.000500Z`): a row
   * written by another tool may have them, and a cursor cut to the millisecond would skip the rows
   * of that millisecond stored before it.
   */
  createdAt: string;
  /** The store's row id, in decimal: SQLite's rowid, PostgreSQL's bigint identity. */
  id: string;
}

export function encodeCursor(at: LedgerPosition): string {
  return Buffer.from(`${at.createdAt}|${at.id}`).toString('base64url');
}

/** The position a cursor names; RangeError for anything encodeCursor could not have written. */
export function decodeCursor(cursor: string): LedgerPosition {
  const text = /^[A-Za-z0-9_-]{1,200}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  const m = /^([^|]+)\|(\d{1,18})$/.exec(text);
  // canonicalInstant must give the text back: a cursor names a stored time, not a range bound.
  if (!m || !isCanonical(m[1]!)) throw new RangeError(`not a usage cursor: '${cursor.slice(0, 60)}' (pass back a "next" value unchanged)`);
  return { createdAt: m[1]!, id: m[2]! };
}

/** The millisecond of a cursor's time (the time itself when it has no microseconds). */
export function cursorMillisecond(createdAt: string): string {
  return createdAt.length > 24 ? `${createdAt.slice(0, 23)}Z` : createdAt;
}

function isCanonical(value: string): boolean {
  // Microseconds are written only when they are not all zero, so each time has one form.
  const micro = /^(.*\.\d{3})(\d{3})Z$/.exec(value);
  if (micro && micro[2] === '000') return false;
  const ms = micro ? `${micro[1]!}Z` : value;
  try {
    return canonicalInstant(ms) === ms;
  } catch {
    return false;
  }
}
