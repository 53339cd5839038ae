// Closing an account at its owner's or the operator's request: the personal data goes, the
// records a bill needs stay. The ledger and the balance history are the operator's accounts (what
// was served, charged and paid), kept under the account id alone; the email, the password, the
// keys and the sessions are the person's, and end here.
import type { KeyStore } from '../storage/ports.js';
import type { AccountInfo, AccountService } from './accounts.js';
import type { KeyService } from './keys.js';

/** The suspension reason a closed account carries: what the admin API and the CLI show. */
export const CLOSED = 'account closed';

/**
 * Suspends the account first, so every key and session stops at once on every instance (the
 * suspension moves the credentials version); then revokes its keys, removes its password and its
 * email (the address is free for a new sign-up). Each step is idempotent, so a close that failed
 * midway (storage down) is finished by calling it again.
 */
export async function closeAccount(id: string, deps: { accounts: AccountService; keys: KeyService; keyStore: KeyStore }): Promise<AccountInfo> {
  await deps.accounts.update(id, { suspended: true, suspendedReason: CLOSED });
  for (const key of await deps.keyStore.listByAccount(id)) {
    if (key.revokedAt === null) await deps.keys.revoke(key.id);
  }
  await deps.accounts.removePassword(id);
  return deps.accounts.update(id, { email: null });
}
