// Session and CSRF cookies of the web app (docs/web-api.md "Session and CSRF"): shared by the
// /app/api routes (401 session_required) and the pages (302 to /app/signin).
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Session, SessionEpochs, Sessions } from '../core/sessions.js';
import { parseCookies, serializeCookie } from './cookies.js';

const SESSION_COOKIE = 'tg_session';
const CSRF_COOKIE = 'tg_csrf';
export const CSRF_HEADER = 'x-csrf-token';

/**
 * Over https the cookies carry the `__Host-` prefix: a browser takes such a cookie only from this
 * host itself, Secure, for path /, with no Domain. Unprefixed, a page on any sibling subdomain
 * (user-content.example.com beside gateway.example.com) could set a tg_csrf or tg_session cookie
 * for the parent domain, which the browser sends here too: the anonymous CSRF token it chose (a
 * forged sign-in into the attacker's account), or a session of its own. Plain http cannot use the
 * prefix (it requires Secure), so a local gateway keeps the plain names.
 * https://developer.mozilla.org/en-US/docs/Web/HTTP/Reference/Headers/Set-Cookie#cookie_prefixes
 */
const HOST_PREFIX = '__Host-';

export class WebSessions {
  /** Whether the web app is served over https (server.publicUrl): Secure cookies, HSTS. */
  readonly secure: boolean;
  /** The cookies' names on this deployment (prefixed over https). */
  readonly sessionCookie: string;
  readonly csrfCookie: string;

  constructor(
    readonly sessions: Sessions,
    private readonly epochs: SessionEpochs,
    publicUrl: string,
  ) {
    this.secure = publicUrl.startsWith('https:');
    const prefix = this.secure ? HOST_PREFIX : '';
    this.sessionCookie = `${prefix}${SESSION_COOKIE}`;
    this.csrfCookie = `${prefix}${CSRF_COOKIE}`;
  }

  cookies(req: FastifyRequest): Record<string, string> {
    return parseCookies(req.headers.cookie);
  }

  /** The request's valid session (signed, unexpired, not signed out) and its token, or null. */
  async read(req: FastifyRequest): Promise<{ token: string; session: Session } | null> {
    const token = this.cookies(req)[this.sessionCookie];
    const session = this.sessions.verify(token);
    if (!session || !token) return null;
    return session.epoch === (await this.epochs.current(session.accountId)) ? { token, session } : null;
  }

  /** Signs in: a new session cookie and the CSRF token bound to it. Returns the CSRF token. */
  async start(reply: FastifyReply, accountId: string): Promise<string> {
    const { token } = this.sessions.issue(accountId, await this.epochs.current(accountId));
    const csrf = this.sessions.csrfFor(token);
    const maxAge = this.sessions.maxAgeSeconds;
    reply.header('set-cookie', [
      serializeCookie(this.sessionCookie, token, { httpOnly: true, sameSite: 'Lax', secure: this.secure, maxAge }),
      serializeCookie(this.csrfCookie, csrf, { sameSite: 'Strict', secure: this.secure, maxAge }),
    ]);
    return csrf;
  }

  /** Sets the CSRF cookie (and, when `clearSession`, deletes the session cookie). */
  issueCsrf(reply: FastifyReply, csrf: string, clearSession: boolean): void {
    const cookies = [serializeCookie(this.csrfCookie, csrf, { sameSite: 'Strict', secure: this.secure, maxAge: this.sessions.maxAgeSeconds })];
    if (clearSession) cookies.unshift(serializeCookie(this.sessionCookie, '', { httpOnly: true, sameSite: 'Lax', secure: this.secure, maxAge: 0 }));
    reply.header('set-cookie', cookies);
  }

  /** Ends every session of the account, on every instance (this browser's cookies stay, now dead). */
  async endEverywhere(accountId: string): Promise<void> {
    await this.epochs.end(accountId);
  }

  /**
   * After a password change: every session of the account ends (a device signed in with the old
   * password, perhaps someone else's), and this browser gets a new one.
   */
  async restart(reply: FastifyReply, accountId: string): Promise<string> {
    await this.epochs.end(accountId);
    return this.start(reply, accountId);
  }

  /** Signs out: the account's sessions end everywhere (not just this cookie), and the cookies go. */
  async end(reply: FastifyReply, accountId: string | undefined): Promise<void> {
    // The cookies go first: with the limiter down the epoch cannot move (503), but this browser
    // is signed out all the same.
    reply.header('set-cookie', [
      serializeCookie(this.sessionCookie, '', { httpOnly: true, sameSite: 'Lax', secure: this.secure, maxAge: 0 }),
      serializeCookie(this.csrfCookie, '', { sameSite: 'Strict', secure: this.secure, maxAge: 0 }),
    ]);
    if (accountId !== undefined) await this.epochs.end(accountId);
  }
}
