// Web sessions: signed tokens, so any instance that shares `web.sessionSecret` can check one.
// Token: base64url(`accountId.issuedAt.expiresAt.epoch`) + '.' + base64url(HMAC-SHA256).
// CSRF (double-submit cookie, https://cheatsheetseries.owasp.org/cheatsheets/Cross-Site_Request_Forgery_Prevention_Cheat_Sheet.html#signed-double-submit-cookie-recommended):
// when signed in the token is HMAC(secret, 'csrf:' + session token), so it is bound to the session
// and cannot be planted by a sibling subdomain; before sign-in it is a random value.
// Sign-out ends a session for good, not just its cookie: each account has a session epoch in the
// counter store (SessionEpochs), written into every token issued; signing out moves it on, and a
// token of an earlier epoch no longer verifies — on every instance, for every device of the account.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../lib/clock.js';
import type { CounterStore } from '../storage/counters.js';
import type { Storage } from '../storage/ports.js';
import { accountKeyPrefix } from './balances.js';

/**
 * The secret sessions and reset links are signed with: `web.sessionSecret`, or, left empty, the one
 * made once and kept in the database (Storage.sharedSecret). One place for both, the server and
 * `tollgate accounts reset-link`: a link signed with another secret than the server's does not work.
 */
export function sessionSecretOf(configured: string, storage: Pick<Storage, 'sharedSecret'>): Promise<string> {
  if (configured !== '') return Promise.resolve(configured);
  return storage.sharedSecret('web.sessionSecret', () => randomBytes(32).toString('base64url'));
}

export interface Session {
  accountId: string;
  issuedAt: number;
  expiresAt: number;
  /** The account's session epoch when it was issued (SessionEpochs). */
  epoch: number;
}

/** Each account's session epoch, one counter: moved on by a sign-out, read by every signed-in request. */
export class SessionEpochs {
  constructor(
    private readonly counters: CounterStore,
    private readonly clock: Clock,
  ) {}

  private key(accountId: string): string {
    return `${accountKeyPrefix(accountId)}:session_epoch`;
  }

  async current(accountId: string): Promise<number> {
    const [epoch] = await this.counters.get([this.key(accountId)], this.clock.now());
    return epoch ?? 0;
  }

  /** Ends every session of the account issued so far (one atomic add). */
  async end(accountId: string): Promise<void> {
    await this.counters.add(this.key(accountId), 1, null);
  }
}

/** What a password-reset token is bound to: the account's sign-in as it was when the link was made. */
export interface ResetBinding {
  passwordHash: string | null;
  email: string | null;
}

export class Sessions {
  private readonly key: Buffer;

  constructor(
    secret: string,
    private readonly ttlMs: number,
    private readonly clock: Clock,
  ) {
    if (secret === '') throw new Error('a session secret is required');
    this.key = Buffer.from(secret, 'utf8');
  }

  private mac(text: string): string {
    return createHmac('sha256', this.key).update(text).digest('base64url');
  }

  issue(accountId: string, epoch: number): { token: string; session: Session } {
    const issuedAt = this.clock.now();
    const session = { accountId, issuedAt, expiresAt: issuedAt + this.ttlMs, epoch };
    const payload = Buffer.from(`${accountId}.${issuedAt}.${session.expiresAt}.${epoch}`, 'utf8').toString('base64url');
    return { token: `${payload}.${this.mac(payload)}`, session };
  }

  /** The session a token names, or null when it is malformed, forged or expired. */
  verify(token: string | undefined): Session | null {
    if (!token || token.length > 512) return null;
    const dot = token.lastIndexOf('.');
    if (dot <= 0) return null;
    const payload = token.slice(0, dot);
    if (!equal(token.slice(dot + 1), this.mac(payload))) return null;
    const parts = Buffer.from(payload, 'base64url').toString('utf8').split('.');
    // A token of the three-part form (before epochs) is no longer accepted: one sign-in more.
    if (parts.length !== 4) return null;
    const [accountId, issuedAt, expiresAt, epoch] = [parts[0]!, Number(parts[1]), Number(parts[2]), Number(parts[3])];
    if (accountId === '' || !Number.isSafeInteger(issuedAt) || !Number.isSafeInteger(expiresAt) || !Number.isSafeInteger(epoch)) return null;
    if (this.clock.now() >= expiresAt) return null;
    return { accountId, issuedAt, expiresAt, epoch };
  }

  /**
   * A password-reset token (core/password-reset.ts): signed like a session, under its own label so
   * neither kind passes for the other, and bound to the account's password hash and email as they
   * are now — a fingerprint only this secret can make, so the token shows nothing of them — so that
   * it stops working once the password changes, its own use included, or the email does (the link
   * was made for whoever had that address: an account handed on to another keeps none of its links).
   */
  issueReset(accountId: string, bound: ResetBinding, expiresAt: number): string {
    const payload = Buffer.from(`${accountId}.${expiresAt}.${this.fingerprint(bound)}`, 'utf8').toString('base64url');
    return `${payload}.${this.mac(`reset:${payload}`)}`;
  }

  /** What a reset token says, when it is genuine and unexpired; null otherwise. */
  readReset(token: string): { accountId: string; fingerprint: string } | null {
    if (token.length > 512) return null;
    const dot = token.lastIndexOf('.');
    if (dot <= 0) return null;
    const payload = token.slice(0, dot);
    if (!equal(token.slice(dot + 1), this.mac(`reset:${payload}`))) return null;
    const parts = Buffer.from(payload, 'base64url').toString('utf8').split('.');
    if (parts.length !== 3) return null;
    const [accountId, expiresAt, fingerprint] = [parts[0]!, Number(parts[1]), parts[2]!];
    if (accountId === '' || !Number.isSafeInteger(expiresAt) || this.clock.now() >= expiresAt) return null;
    return { accountId, fingerprint };
  }

  /** Whether a reset token read by readReset was made for the password and email the account has now. */
  resetMatches(reset: { fingerprint: string }, bound: ResetBinding): boolean {
    return equal(reset.fingerprint, this.fingerprint(bound));
  }

  private fingerprint({ passwordHash, email }: ResetBinding): string {
    return this.mac(`password:${JSON.stringify([passwordHash, email])}`).slice(0, 22);
  }

  /** The CSRF token bound to a session token. */
  csrfFor(sessionToken: string): string {
    return this.mac(`csrf:${sessionToken}`);
  }

  /** A CSRF token for a visitor not yet signed in (double-submit: cookie and header must agree). */
  anonymousCsrf(): string {
    return randomBytes(32).toString('base64url');
  }

  /** Seconds a session cookie should live. */
  get maxAgeSeconds(): number {
    return Math.floor(this.ttlMs / 1000);
  }
}

/** Constant-time string equality; unequal lengths are unequal without comparing contents. */
export function equal(a: string, b: string): boolean {
  const ba = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  return ba.length === bb.length && timingSafeEqual(ba, bb);
}
