import type Database from 'better-sqlite3';
import { GatewayError } from '../../errors/gateway-error.js';
import type { Account, AccountListQuery, AccountPatch, AccountStore, NewAccount } from '../ports.js';

interface AccountRow {
  id: string;
  email: string | null;
  plan: string;
  has_payment_method: number;
  created_at: string;
  suspended_at: string | null;
  suspended_reason: string | null;
}

function toAccount(row: AccountRow | undefined): Account | null {
  if (!row) return null;
  return {
    id: row.id,
    email: row.email,
    plan: row.plan,
    hasPaymentMethod: row.has_payment_method !== 0,
    createdAt: row.created_at,
    suspendedAt: row.suspended_at,
    suspendedReason: row.suspended_reason,
  };
}

function isUniqueEmailViolation(err: unknown): boolean {
  return (
    err instanceof Error &&
    (err as { code?: unknown }).code === 'SQLITE_CONSTRAINT_UNIQUE' &&
    err.message.includes('accounts.email')
  );
}

/**
 * The admin listing's page. The cursor is (created_at, id), the order of migration 12's indexes,
 * compared as a row value so a page seeks to it; suspended accounts have a partial index of their
 * own, so listing the few of them reads no others. One statement per shape: an `@x IS NULL OR …`
 * filter would keep SQLite from using either index for it.
 */
export function accountPageSql(suspended: boolean, before: boolean, plan = false): string {
  const filters = [
    ...(suspended ? ['suspended_at IS NOT NULL'] : []),
    ...(plan ? ['plan = @plan'] : []),
    ...(before ? ['(created_at, id) < (@beforeAt, @beforeId)'] : []),
  ];
  return `SELECT * FROM accounts ${filters.length > 0 ? `WHERE ${filters.join(' AND ')} ` : ''}ORDER BY created_at DESC, id DESC LIMIT @limit`;
}

export class SqliteAccountStore implements AccountStore {
  private readonly insert: Database.Statement;
  private readonly byId: Database.Statement;
  private readonly patch: Database.Statement;
  private readonly byEmail: Database.Statement;
  private readonly setHash: Database.Statement;
  private readonly getHash: Database.Statement;
  /** The listing's statements, by shape (accountPageSql's flags), prepared when first used. */
  private readonly pages = new Map<string, Database.Statement>();
  private readonly db: Database.Database;

  constructor(db: Database.Database) {
    this.insert = db.prepare(
      `INSERT INTO accounts (id, email, plan, has_payment_method, created_at, password_hash)
       VALUES (@id, @email, @plan, 0, @createdAt, @passwordHash) RETURNING *`,
    );
    this.byId = db.prepare('SELECT * FROM accounts WHERE id = ?');
    // NULL parameters leave the column as it is, so one statement serves every patch shape.
    this.patch = db.prepare(
      `UPDATE accounts SET plan = CASE WHEN @planFrom IS NULL OR plan = @planFrom THEN COALESCE(@plan, plan) ELSE plan END,
         has_payment_method = COALESCE(@hasPaymentMethod, has_payment_method),
         suspended_at = CASE @suspend WHEN 1 THEN COALESCE(suspended_at, @suspendedAt) WHEN 0 THEN NULL ELSE suspended_at END,
         suspended_reason = CASE @suspend WHEN 1 THEN COALESCE(@suspendedReason, suspended_reason) WHEN 0 THEN NULL ELSE suspended_reason END,
         email = CASE WHEN @emailSet = 1 THEN @email ELSE email END
       WHERE id = @id RETURNING *`,
    );
    this.db = db;
    // Emails are stored lowercased, so lowercasing the argument makes the lookup case-insensitive.
    this.byEmail = db.prepare('SELECT * FROM accounts WHERE email = ?');
    this.setHash = db.prepare('UPDATE accounts SET password_hash = ? WHERE id = ?');
    this.getHash = db.prepare('SELECT password_hash FROM accounts WHERE id = ?');
  }

  async create(account: NewAccount): Promise<Account> {
    const email = account.email === null ? null : account.email.toLowerCase();
    try {
      const row = { id: account.id, email, plan: account.plan, createdAt: account.createdAt, passwordHash: account.passwordHash ?? null };
      return toAccount(this.insert.get(row) as AccountRow) as Account;
    } catch (err) {
      if (isUniqueEmailViolation(err)) {
        throw new GatewayError('email_taken', { vars: { email: account.email ?? '' }, cause: err });
      }
      throw err;
    }
  }

  async get(id: string): Promise<Account | null> {
    return toAccount(this.byId.get(id) as AccountRow | undefined);
  }

  async update(id: string, patch: AccountPatch): Promise<Account | null> {
    const hasPaymentMethod = patch.hasPaymentMethod === undefined ? null : patch.hasPaymentMethod ? 1 : 0;
    const s = patch.suspension;
    const suspension = { suspend: s === undefined ? null : s === null ? 0 : 1, suspendedAt: s?.at ?? null, suspendedReason: s?.reason ?? null };
    const email = { emailSet: patch.email === undefined ? 0 : 1, email: patch.email?.toLowerCase() ?? null };
    try {
      return toAccount(this.patch.get({ id, plan: patch.plan ?? null, planFrom: patch.planFrom ?? null, hasPaymentMethod, ...suspension, ...email }) as AccountRow | undefined);
    } catch (err) {
      if (isUniqueEmailViolation(err)) throw new GatewayError('email_taken', { vars: { email: patch.email ?? '' }, cause: err });
      throw err;
    }
  }

  async list(q: AccountListQuery): Promise<Account[]> {
    const shape = [q.suspended === true, q.before !== undefined, q.plan !== undefined] as const;
    const key = shape.join();
    let page = this.pages.get(key);
    if (!page) this.pages.set(key, (page = this.db.prepare(accountPageSql(...shape))));
    const args = {
      limit: q.limit,
      ...(q.before !== undefined && { beforeAt: q.before.createdAt, beforeId: q.before.id }),
      ...(q.plan !== undefined && { plan: q.plan }),
    };
    return (page.all(args) as AccountRow[]).map((r) => toAccount(r) as Account);
  }

  async findByEmail(email: string): Promise<Account | null> {
    return toAccount(this.byEmail.get(email.toLowerCase()) as AccountRow | undefined);
  }

  async setPasswordHash(id: string, hash: string | null): Promise<boolean> {
    return this.setHash.run(hash, id).changes > 0;
  }

  async getPasswordHash(id: string): Promise<string | null> {
    const row = this.getHash.get(id) as { password_hash: string | null } | undefined;
    return row?.password_hash ?? null;
  }
}
