// Identifiers. Ids are random (not sequential) so they leak nothing about volume; API key secrets
// come from the CSPRNG with 256 bits of entropy.
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
  /** A new API key secret, `tg-` + 43 base62 characters (~256 bits). */
  keySecret(): string;
}

export const randomIds: IdGenerator = {
  requestId: () => randomUUID(),
  accountId: () => `acct_${randomBase62(16)}`,
  keyId: () => `key_${randomBase62(16)}`,
  keySecret: () => `tg-${randomBase62(43)}`,
};

export function sha256Hex(text: string): string {
  // The one-shot form (Node ≥ 20.12): no Hash object per call — this runs on every API request.
  return hash('sha256', text, 'hex');
}
