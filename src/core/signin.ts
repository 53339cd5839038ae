// Web sign-up and sign-in: credentials checked against scrypt hashes, attempts limited in the
// counter store. Every attempt — right or wrong — is ONE atomic reserve of its counters before the
// password is checked, so concurrent guesses cannot slip past a limit (STYLE §7: no
// read-then-write). Every key carries the one hash tag `{signin}`: a Redis Cluster script may only
// touch keys of one slot, and the per-address counter must span emails.
import { isIPv4, isIPv6 } from 'node:net';
import type { CounterOp, CounterStore } from '../storage/counters.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { Clock } from '../lib/clock.js';
import { sha256Hex } from '../lib/ids.js';
import type { AccountInfo, AccountService } from './accounts.js';
import { ACTION_COUNT_GRACE_MS as GRACE_MS, reserveAction } from './action-count.js';
import { dummyHash, hashPassword, needsRehash, verifyPassword } from './passwords.js';
import { windowAt } from './windows.js';

/** Attempts per client address per minute, as a multiple of the per-email limit (NAT, offices). */
const PER_ADDRESS_FACTOR = 4;

/**
 * Wrong attempts at one email per minute from all addresses together, as a multiple of the
 * per-email limit. The per-email limit is counted per client address: counted over all addresses,
 * anyone could keep anyone out of their account with five wrong guesses a minute from one address.
 * This ceiling is what stops guessing spread over many addresses; it counts only wrong attempts
 * (reserved before the check, given back when the password was right), so locking an account out
 * now takes this many wrong guesses a minute from at least this many addresses.
 */
const EMAIL_FAILURES_FACTOR = 4;

/**
 * A client address as the per-address limits read it: the eight 16-bit groups of an IPv6 address,
 * or an IPv4 address — an IPv4-mapped one (`::ffff:203.0.113.1`, what a dual-stack listener or
 * proxy reports for an IPv4 client) included, as its IPv4 address. Undefined for anything else.
 */
function clientAddress(address: string): { v6: number[] } | { v4: string } | undefined {
  const ip = address.split('%')[0]!.toLowerCase(); // a zone id (fe80::1%eth0) names no other client
  if (isIPv4(ip)) return { v4: ip };
  if (!isIPv6(ip)) return undefined;
  // The 16-bit groups of one side of `::`; a trailing dotted IPv4 part is two of them.
  const hextets = (part: string): number[] =>
    part === ''
      ? []
      : part.split(':').flatMap((g) => {
          if (!isIPv4(g)) return [parseInt(g, 16)];
          const [a, b, c, d] = g.split('.').map(Number) as [number, number, number, number];
          return [a * 256 + b, c * 256 + d];
        });
  const [head = '', tail] = ip.split('::');
  const before = hextets(head);
  const after = tail === undefined ? [] : hextets(tail);
  const groups = [...before, ...Array<number>(8 - before.length - after.length).fill(0), ...after];
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return { v4: [groups[6]! >> 8, groups[6]! & 255, groups[7]! >> 8, groups[7]! & 255].join('.') };
  }
  return { v6: groups };
}

const prefix = (groups: number[], n: number, bits: number) => `${groups.slice(0, n).map((g) => g.toString(16)).join(':')}::/${bits}`;

/**
 * What the per-address limits count a client address as. An IPv6 client holds a whole /64 (RFC 6177:
 * one per subscriber; its privacy addresses rotate inside it, RFC 8981), so counted address by
 * address every client could pick a fresh one per request and sign up, or guess, without limit: it
 * counts as its /64. An IPv4-mapped address counts as the IPv4 address, not as the /64 all of them share.
 */
export function addressBucket(address: string): string {
  const client = clientAddress(address);
  if (client === undefined) return address;
  return 'v4' in client ? client.v4 : prefix(client.v6, 4, 64);
}

/**
 * The IPv6 site an address is in, its /48 — what a hosting provider or an ISP hands one customer
 * (RFC 6177), 65,536 /64s: per /64 alone, one such customer could sign up (and guess) 65,536 times
 * what one address may. Undefined for IPv4 (an address costs what it costs).
 */
export function siteBucket(address: string): string | undefined {
  const client = clientAddress(address);
  return client && 'v6' in client ? prefix(client.v6, 3, 48) : undefined;
}

/** How many times one address's share an IPv6 site's addresses may take together (sign-ups, sign-in attempts). */
const PER_SITE_FACTOR = 4;

export interface SigninOptions {
  attemptsPerMinute: number;
  /**
   * Wrong attempts at one email from one client address per UTC hour (web.signinFailuresPerHour).
   * The minute's limits alone let one address guess one account's password 7,200 times a day.
   * Absent: no hourly limit.
   */
  failuresPerHour?: number;
  /** Accounts one client address may create per hour (0: sign-up closed). Default 10. */
  signupsPerHour?: number;
  wrongPasswordDelayMs: number;
  /** Waits before a wrong answer; injectable so unit tests need not sleep. */
  sleep?: (ms: number) => Promise<void>;
}

export class SigninService {
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    private readonly accounts: AccountService,
    private readonly counters: CounterStore,
    private readonly clock: Clock,
    private readonly opts: SigninOptions,
  ) {
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** Whether anyone may sign up: web.signupsPerHour 0 leaves account creation to the operator. */
  get signupOpen(): boolean {
    return (this.opts.signupsPerHour ?? 10) > 0;
  }

  /**
   * A new free account, or 429 too_many_signups once this address made its hourly share, or 403
   * signup_closed when sign-up is closed (a 429 would say "try again" to a form that never opens).
   */
  async signUp(email: string, password: string, address: string, attemptId: string): Promise<AccountInfo> {
    if (!this.signupOpen) throw new GatewayError('signup_closed');
    const now = this.clock.now();
    const span = windowAt('hour', now);
    const perAddress = this.opts.signupsPerHour ?? 10;
    const expiresAt = span.endsAt + GRACE_MS;
    const ops: CounterOp[] = [{ key: `tg:{signin}:s:${addressBucket(address)}:${span.id}`, amount: 1, max: perAddress, settle: 'keep', expiresAt }];
    const site = siteBucket(address);
    if (site) ops.push({ key: `tg:{signin}:S:${site}:${span.id}`, amount: 1, max: perAddress * PER_SITE_FACTOR, settle: 'keep', expiresAt });
    await this.count(`signup:${attemptId}`, ops, now, span.endsAt, (retryAfter) => new GatewayError('too_many_signups', { vars: { retryAfter }, headers: { 'retry-after': retryAfter } }));
    // The hash goes in with the row: no window in which the account exists without a password.
    return this.accounts.create({ email, passwordHash: await hashPassword(password) });
  }

  /** The account, or 401 invalid_credentials after the fixed delay, or 429 too_many_signin_attempts. */
  async signIn(email: string, password: string, address: string, attemptId: string): Promise<AccountInfo> {
    const id = `signin:${attemptId}`;
    await this.reserveAttempt(id, email, address);
    let ok = false;
    try {
      const started = performance.now();
      const account = await this.accounts.findByEmail(email);
      const stored = account ? await this.accounts.passwordHash(account.id) : null;
      // An unknown email costs the same scrypt work as a wrong password.
      const verified = await verifyPassword(password, stored ?? (await dummyHash()));
      if (!account || stored === null || !verified) {
        // A wrong answer takes the delay in all (not the delay after the work): hashes made with
        // other parameters (older accounts) take other times, which must not tell which emails exist.
        await this.sleep(Math.max(0, this.opts.wrongPasswordDelayMs - (performance.now() - started)));
        throw new GatewayError('invalid_credentials');
      }
      ok = true;
      // Told only to whoever knows the password: to anyone else a suspended account is a wrong guess.
      if (account.suspendedAt !== null) throw new GatewayError('account_suspended');
      if (needsRehash(stored)) await this.accounts.setPasswordHash(account.id, await hashPassword(password));
      return account;
    } finally {
      // Every attempt stays counted for its address; the email's wrong-attempt ceiling only the wrong
      // ones (an attempt that failed for another reason — the store, scrypt — counts as wrong: safe).
      // A settlement the store refuses leaves the reservation to its TTL, counted meanwhile; the
      // answer is still the attempt's own.
      await this.counters.settle(id, ok ? 0 : 1).catch(() => false);
    }
  }

  /**
   * Replaces a signed-in account's password once its current one is given: a session left open
   * on a shared computer must not be enough to take the account over. Counted as a sign-in attempt
   * of its email (429 too_many_signin_attempts), so the current password cannot be guessed here
   * faster than at sign-in. A wrong one is 400 `param: current`, not 401: the session stands.
   */
  async changePassword(account: AccountInfo, current: string, next: string, address: string, attemptId: string): Promise<void> {
    const id = `password:${attemptId}`;
    await this.reserveAttempt(id, account.email ?? account.id, address);
    let ok = false;
    try {
      const stored = await this.accounts.passwordHash(account.id);
      if (stored === null || !(await verifyPassword(current, stored))) {
        throw new GatewayError('invalid_request', { vars: { detail: 'the current password is not right' }, param: 'current' });
      }
      ok = true;
      await this.accounts.setPasswordHash(account.id, await hashPassword(next));
    } finally {
      await this.counters.settle(id, ok ? 0 : 1).catch(() => false);
    }
  }

  private async reserveAttempt(id: string, email: string, address: string): Promise<void> {
    const now = this.clock.now();
    const span = windowAt('minute', now);
    const expiresAt = span.endsAt + GRACE_MS;
    const limit = this.opts.attemptsPerMinute;
    const emailHash = sha256Hex(email.toLowerCase());
    const bucket = addressBucket(address);
    const ops: CounterOp[] = [
      { key: `tg:{signin}:e:${emailHash}:${bucket}:${span.id}`, amount: 1, max: limit, settle: 'keep', expiresAt },
      { key: `tg:{signin}:a:${bucket}:${span.id}`, amount: 1, max: limit * PER_ADDRESS_FACTOR, settle: 'keep', expiresAt },
      { key: `tg:{signin}:f:${emailHash}:${span.id}`, amount: 1, max: limit * EMAIL_FAILURES_FACTOR, settle: 'actual', expiresAt },
    ];
    const site = siteBucket(address);
    if (site) ops.push({ key: `tg:{signin}:A:${site}:${span.id}`, amount: 1, max: limit * PER_ADDRESS_FACTOR * PER_SITE_FACTOR, settle: 'keep', expiresAt });
    // Wrong ones only (settled like `f`): the owner's own sign-ins from this address spend nothing of
    // it, and an address that used it up is closed for this email alone, not the account elsewhere.
    const hour = windowAt('hour', now);
    const hourly = this.opts.failuresPerHour;
    if (hourly !== undefined) {
      ops.push({ key: `tg:{signin}:h:${emailHash}:${bucket}:${hour.id}`, amount: 1, max: hourly, settle: 'actual', expiresAt: hour.endsAt + GRACE_MS });
    }
    const hourlyAt = ops.length - 1;
    await reserveAction(
      this.counters,
      id,
      ops,
      now,
      (failed) => (hourly !== undefined && failed === hourlyAt ? hour.endsAt : span.endsAt),
      (retryAfter) => new GatewayError('too_many_signin_attempts', { vars: { retryAfter }, headers: { 'retry-after': retryAfter } }),
    );
  }

  /** Counts one attempt in every op at once, or throws `tooMany` (with the seconds until `resetAt`). */
  private async count(id: string, ops: CounterOp[], now: number, resetAt: number, tooMany: (retryAfter: string) => GatewayError): Promise<void> {
    await reserveAction(this.counters, id, ops, now, resetAt, tooMany);
    await this.counters.settle(id, 0);
  }
}
