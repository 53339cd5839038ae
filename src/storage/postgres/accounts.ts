import type pg from 'pg';
import { GatewayError } from '../../errors/gateway-error.js';
import type { Account, AccountListQuery, AccountPatch, AccountStore, NewAccount } from '../ports.js';
import { unstorable } from './text.js';

interface AccountRow {
  id: string;
  email: string | null;
  plan: string;
  has_payment_method: boolean;
  created_at: Date;
  suspended_at: Date | null;
  suspended_reason: string | null;
}

function toAccount(row: AccountRow | undefined): Account | null {
  if (!row) return null;
  return {
    id: row.id,
    email: row.email,
    plan: row.plan,
    hasPaymentMethod: row.has_payment_method,
    createdAt: row.created_at.toISOString(),
    suspendedAt: row.suspended_at === null ? null : row.suspended_at.toISOString(),
    suspendedReason: row.suspended_reason,
  };
}

// https://www.postgresql.org/docs/15/errcodes-appendix.html: 23505 unique_violation. The constraint
// name is PostgreSQL's default for `email text UNIQUE` in migration 1.
function isUniqueEmailViolation(err: unknown): boolean {
  const e = err as { code?: unknown; constraint?: unknown };
  return e.code === '23505' && e.constraint === 'accounts_email_key';
}

export class PostgresAccountStore implements AccountStore {
  constructor(private readonly pool: pg.Pool) {}

  async create(account: NewAccount): Promise<Account> {
    const email = account.email === null ? null : account.email.toLowerCase();
    try {
      const { rows } = await this.pool.query<AccountRow>(
        `INSERT INTO accounts (id, email, plan, has_payment_method, created_at, password_hash)
         VALUES ($1, $2, $3, false, $4, $5) RETURNING *`,
        [account.id, email, account.plan, account.createdAt, account.passwordHash ?? null],
      );
      return toAccount(rows[0]) as Account;
    } catch (err) {
      if (isUniqueEmailViolation(err)) {
        throw new GatewayError('email_taken', { vars: { email: account.email ?? '' }, cause: err });
      }
      throw err;
    }
  }

  async get(id: string): Promise<Account | null> {
    if (unstorable(id)) return null;
    const { rows } = await this.pool.query<AccountRow>('SELECT * FROM accounts WHERE id = $1', [id]);
    return toAccount(rows[0]);
  }

  async update(id: string, patch: AccountPatch): Promise<Account | null> {
    if (unstorable(id)) return null;
    // NULL parameters leave the column as it is, so one statement serves every patch shape.
    const s = patch.suspension;
    const { rows } = await this.pool.query<AccountRow>(
      `UPDATE accounts SET plan = CASE WHEN $4::text IS NULL OR plan = $4 THEN COALESCE($2, plan) ELSE plan END,
         has_payment_method = COALESCE($3, has_payment_method),
         suspended_at = CASE $5::int WHEN 1 THEN COALESCE(suspended_at, $6::timestamptz) WHEN 0 THEN NULL ELSE suspended_at END,
         suspended_reason = CASE $5::int WHEN 1 THEN COALESCE($7::text, suspended_reason) WHEN 0 THEN NULL ELSE suspended_reason END,
         email = CASE WHEN $9::boolean THEN $8::text ELSE email END
       WHERE id = $1 RETURNING *`,
      [id, patch.plan ?? null, patch.hasPaymentMethod ?? null, patch.planFrom ?? null, s === undefined ? null : s === null ? 0 : 1, s?.at ?? null, s?.reason ?? null, patch.email?.toLowerCase() ?? null, patch.email !== undefined],
    ).catch((err: unknown) => {
      if (isUniqueEmailViolation(err)) throw new GatewayError('email_taken', { vars: { email: patch.email ?? '' }, cause: err });
      throw err;
    });
    return toAccount(rows[0]);
  }

  async list(q: AccountListQuery): Promise<Account[]> {
    // The cursor is (created_at, id), the order of migration 8's indexes; the suspended accounts'
    // partial index serves only a query whose own WHERE says suspended_at IS NOT NULL.
    const suspended = q.suspended === true ? 'suspended_at IS NOT NULL AND' : '';
    const { rows } = await this.pool.query<AccountRow>(
      `SELECT * FROM accounts WHERE ${suspended} ($1::timestamptz IS NULL OR (created_at, id) < ($1::timestamptz, $2::text))
         AND ($4::text IS NULL OR plan = $4)
       ORDER BY created_at DESC, id DESC LIMIT $3`,
      [q.before?.createdAt ?? null, q.before?.id ?? null, q.limit, q.plan ?? null],
    );
    return rows.map((r) => toAccount(r) as Account);
  }

  async findByEmail(email: string): Promise<Account | null> {
    if (unstorable(email)) return null;
    // Emails are stored lowercased (UNIQUE index on email), so this is an index lookup.
    const { rows } = await this.pool.query<AccountRow>('SELECT * FROM accounts WHERE email = $1', [email.toLowerCase()]);
    return toAccount(rows[0]);
  }

  async setPasswordHash(id: string, hash: string | null): Promise<boolean> {
    if (unstorable(id)) return false;
    const r = await this.pool.query('UPDATE accounts SET password_hash = $2 WHERE id = $1', [id, hash]);
    return (r.rowCount ?? 0) > 0;
  }

  async getPasswordHash(id: string): Promise<string | null> {
    if (unstorable(id)) return null;
    const { rows } = await this.pool.query<{ password_hash: string | null }>('SELECT password_hash FROM accounts WHERE id = $1', [id]);
    return rows[0]?.password_hash ?? null;
  }
}
