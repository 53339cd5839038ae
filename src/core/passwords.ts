// Password hashing for web sign-in: scrypt from node:crypto, a memory-hard KDF (RFC 7914), with the
// parameters stored beside the hash so they can be raised later without invalidating old hashes.
// Format: `scrypt$N$r$p$<salt base64>$<hash base64>`.
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

// OWASP's scrypt floor at 16 MiB: N=2^14, r=8, p=5 (Password Storage Cheat Sheet; the same strength
// as N=2^17, p=1 at an eighth of the memory, which matters when sign-ins run in parallel). p=1 was
// below it. About 0.1–0.2 s of one core per hash here, on libuv's pool, not the event loop.
const N = 16_384;
const R = 8;
const P = 5;
const SALT_BYTES = 16;
const KEY_BYTES = 64;
/** Refuse stored parameters that would make one verification a denial of service. */
const MAX_N = 1 << 20;

function derive(password: string, salt: Buffer, keyLength: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // maxmem: Node's default (32 MiB) is below what N=2^20 needs; 128·N·r bytes plus headroom.
    scrypt(password.normalize('NFKC'), salt, keyLength, { ...opts, maxmem: 256 * opts.N! * opts.r! + 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, KEY_BYTES, { N, r: R, p: P });
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/**
 * Whether `stored` (a hash that verified) was made with other parameters than hashPassword's today:
 * then it is replaced at sign-in, the one moment the password is at hand — else an account made
 * before a raise (p=1) would keep the weaker hash for ever.
 */
export function needsRehash(stored: string): boolean {
  return !stored.startsWith(`scrypt$${N}$${R}$${P}$`);
}

/** True when `password` matches `stored`; false for any malformed or foreign hash. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [n, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![n, r, p].every(Number.isSafeInteger) || n < 2 || n > MAX_N || (n & (n - 1)) !== 0 || r < 1 || r > 32 || p < 1 || p > 16) {
    return false;
  }
  const salt = Buffer.from(parts[4]!, 'base64');
  const expected = Buffer.from(parts[5]!, 'base64');
  if (salt.length === 0 || expected.length < 16) return false;
  const actual = await derive(password, salt, expected.length, { N: n, r, p });
  return timingSafeEqual(actual, expected);
}

/**
 * A valid hash of a random password, verified against when the email is unknown so that an
 * unknown email costs the same scrypt work as a wrong password (no account enumeration by timing).
 */
let dummy: Promise<string> | undefined;
export function dummyHash(): Promise<string> {
  dummy ??= hashPassword(randomBytes(16).toString('hex'));
  return dummy;
}
