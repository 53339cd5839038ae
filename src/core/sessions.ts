// Web sessions: stateless signed tokens, so any instance that shares `web.sessionSecret` can check
// one without a store. Token: base64url(`accountId.issuedAt.expiresAt`) + '.' + base64url(HMAC-SHA256).
// CSRF (double-submit cookie, https://cheatsheetseries.owasp.org/cheatsheets/Cross-Site_Request_Forgery_Prevention_Cheat_Sheet.html#signed-double-submit-cookie-recommended):
// when signed in the token is HMAC(secret, 'csrf:' + session token), so it is bound to the session
// and cannot be planted by a sibling subdomain; before sign-in it is a random value.
// A token cannot be revoked before it expires (sign-out clears the cookie only); keep the TTL modest.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../lib/clock.js';

export interface Session {
  accountId: string;
  issuedAt: number;
  expiresAt: number;
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

  issue(accountId: string): { token: string; session: Session } {
    const issuedAt = this.clock.now();
    const session = { accountId, issuedAt, expiresAt: issuedAt + this.ttlMs };
    const payload = Buffer.from(`${accountId}.${issuedAt}.${session.expiresAt}`, 'utf8').toString('base64url');
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
    if (parts.length !== 3) return null;
    const [accountId, issuedAt, expiresAt] = [parts[0]!, Number(parts[1]), Number(parts[2])];
    if (accountId === '' || !Number.isSafeInteger(issuedAt) || !Number.isSafeInteger(expiresAt)) return null;
    if (this.clock.now() >= expiresAt) return null;
    return { accountId, issuedAt, expiresAt };
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
