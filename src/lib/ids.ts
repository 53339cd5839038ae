// Identifiers. Ids are random (not sequential) so they leak nothing about volume; API key secrets
// come from the CSPRNG with 256 bits of entropy. Request ids are UUIDv7 (RFC 9562): the time they
// start with is already public (the response, the ledger), and it keeps an index on them growing
// at its right edge (PostgreSQL's unique one on the ledger) — a UUIDv4 lands anywhere in it: a
// unique index on them cost +10–15 % CPU per request on SQLite, +5–6 % with UUIDv7s (bench/ab.mjs).
import { hash, randomBytes, randomUUID } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Base62 of random bytes; rejection sampling keeps every character uniformly likely. */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248) out += ALPHABET[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

export interface IdGenerator {
  requestId(): string;
  accountId(): string;
  keyId(): string;
  topUpId(): string;
  /** A new API key secret, `tg-` + 43 base62 characters (~256 bits). */
  keySecret(): string;
}

export const randomIds: IdGenerator = {
  requestId: () => uuidV7(Date.now()),
  accountId: () => `acct_${randomBase62(16)}`,
  keyId: () => `key_${randomBase62(16)}`,
  topUpId: () => `top_${randomBase62(16)}`,
  keySecret: () => `tg-${randomBase62(43)}`,
};

/**
 * A UUIDv7 for `ms`: 48 bits of Unix milliseconds, the version, then 74 random bits — a v4's,
 * whose version nibble and first 48 bits this replaces (randomUUID draws from a cached entropy pool).
 */
export function uuidV7(ms: number): string {
  const time = ms.toString(16).padStart(12, '0');
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${randomUUID().slice(15)}`;
}

export function sha256Hex(text: string): string {
  // The one-shot form (Node ≥ 20.12): no Hash object per call — this runs on every API request.
  return hash('sha256', text, 'hex');
}
