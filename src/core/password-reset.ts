// Password reset without email: Tollgate sends none, so the operator makes a one-time link (admin
// API or CLI) and hands it to the person by whatever channel they already share; the person sets a
// password of their own on it. The operator never learns the password, as they do when they set one
// for someone (PATCH /admin/v1/accounts/:id {password}).
//
// A link is a signed token (core/sessions.ts issueReset), so any instance that shares
// web.sessionSecret honours it and nothing is stored. It is bound to the account's password and
// email as they were when made: setting a password through it, or any other change of password,
// ends it — one use — and so does a change of email (the link was for that address's owner).
// Two uses at the very same moment could both set a password; both are whoever holds the link, and
// the later one stands.
import { GatewayError } from '../errors/gateway-error.js';
import type { Clock } from '../lib/clock.js';
import type { AccountInfo, AccountService } from './accounts.js';
import { hashPassword } from './passwords.js';
import { checkPasswordFor } from './requests.js';
import type { Sessions } from './sessions.js';

/** How long a link works: a day, for a message read the next morning. */
export const RESET_LINK_TTL_MS = 24 * 3_600_000;

/** The answer to a link that does not work, whatever the reason: it tells a stranger nothing. */
const notValid = () =>
  new GatewayError('invalid_request', {
    vars: { detail: "this password reset link does not work: it was used, it expired, or the password changed since it was made (or the account's email did); ask for a new one" },
    param: 'token',
  });

export class PasswordResets {
  constructor(
    private readonly accounts: AccountService,
    private readonly sessions: Sessions,
    private readonly clock: Clock,
    private readonly publicUrl: string,
  ) {}

  /** A link for `accountId`: 404 account_not_found; 400 for an account with no email to sign in with, or a suspended one. */
  async issue(accountId: string): Promise<{ url: string; expiresAt: string }> {
    const account = await this.accounts.get(accountId);
    if (!account.email) {
      throw new GatewayError('invalid_request', { vars: { detail: 'the account has no email to sign in with (a closed account has none): give it one first (admin API: PATCH {email}; CLI: accounts update ACCOUNT --email E)' }, param: 'id' });
    }
    // A closed account is suspended: a link would have handed it back without the operator's word.
    if (account.suspendedAt !== null) {
      throw new GatewayError('invalid_request', { vars: { detail: 'the account is suspended: lift the suspension first' }, param: 'id' });
    }
    const expiresAt = this.clock.now() + RESET_LINK_TTL_MS;
    const token = this.sessions.issueReset(account.id, { passwordHash: await this.accounts.passwordHash(account.id), email: account.email }, expiresAt);
    // In the fragment: a browser never sends it, so no access log or proxy in between keeps it.
    return { url: `${this.publicUrl}/app/reset#${token}`, expiresAt: new Date(expiresAt).toISOString() };
  }

  /**
   * Sets `password` for the account the link names; 400 `param: token` when the link does not work.
   * `endSessions` runs between the checks and the change: the account's sessions end first, so a
   * failure there (the limiter down: 503) leaves the password and the link as they were — set
   * first, the new password stood while a stranger's session went on, and the link was spent.
   */
  async redeem(token: string, password: string, endSessions: (accountId: string) => Promise<void>): Promise<AccountInfo> {
    const reset = this.sessions.readReset(token);
    if (!reset) throw notValid();
    const account = await this.accounts.get(reset.accountId).catch((err: unknown) => {
      if (err instanceof GatewayError && err.code === 'account_not_found') throw notValid();
      throw err;
    });
    if (!this.sessions.resetMatches(reset, { passwordHash: await this.accounts.passwordHash(account.id), email: account.email })) throw notValid();
    // No email to sign in with: closed since (closing leaves "no password" as it was, and a lifted
    // suspension does not hand the account back to whoever holds an old link), or emptied by the operator.
    if (!account.email) throw notValid();
    if (account.suspendedAt !== null) throw new GatewayError('account_suspended');
    // The address the link's holder signs in with is the first guess at its password, as at sign-up.
    checkPasswordFor(password, account.email);
    const hash = await hashPassword(password);
    await endSessions(account.id);
    await this.accounts.setPasswordHash(account.id, hash);
    return account;
  }
}
