import type Database from 'better-sqlite3';
import { referenceSpace, type TopUp, type TopUpSource, type TopUpStore } from '../ports.js';
import { writerFor, type SqliteWriter } from './writer.js';

interface TopUpRow {
  id: string;
  account_id: string;
  credits: number;
  source: string;
  reference: string | null;
  created_at: string;
}

const toTopUp = (r: TopUpRow): TopUp => ({
  id: r.id,
  accountId: r.account_id,
  credits: r.credits,
  source: r.source as TopUpSource,
  reference: r.reference,
  createdAt: r.created_at,
});

/** Written at once, not through the pending log: top-ups are rare, and their answer shows them. */
export class SqliteTopUpStore implements TopUpStore {
  private readonly insert: Database.Statement;
  private readonly byAccount: Database.Statement;
  private readonly byAccountBefore: Database.Statement;
  private readonly byReference: Database.Statement;
  private readonly writer: SqliteWriter;

  constructor(db: Database.Database) {
    this.writer = writerFor(db);
    // One statement: a reference already kept in the source's space (referenceSpace) turns it into
    // no row; the unique index on (account_id, source, reference) backs it within one source.
    this.insert = db.prepare(
      `INSERT INTO top_ups (id, account_id, credits, source, reference, created_at)
       SELECT @id, @accountId, @credits, @source, @reference, @createdAt
       WHERE @reference IS NULL OR NOT EXISTS (
         SELECT 1 FROM top_ups WHERE account_id = @accountId AND reference = @reference AND source IN (@space0, @space1))
       ON CONFLICT DO NOTHING`,
    );
    this.byAccount = db.prepare('SELECT * FROM top_ups WHERE account_id = ? ORDER BY created_at DESC, id DESC LIMIT ?');
    // A seek on the unique index (account_id, source, reference).
    this.byReference = db.prepare('SELECT 1 FROM top_ups WHERE account_id = ? AND source = ? AND reference = ? LIMIT 1');
    // The page after a top-up: a seek on top_ups_account (account_id, created_at), from its row.
    this.byAccountBefore = db.prepare(
      `SELECT * FROM top_ups WHERE account_id = @accountId
         AND (created_at, id) < (SELECT created_at, id FROM top_ups WHERE id = @before AND account_id = @accountId)
       ORDER BY created_at DESC, id DESC LIMIT @limit`,
    );
  }

  async record(topUp: TopUp): Promise<boolean> {
    await this.writer.caughtUp();
    const space = referenceSpace(topUp.source);
    return this.insert.run({ ...topUp, space0: space[0], space1: space[1] ?? space[0] }).changes === 1;
  }

  async has(accountId: string, source: TopUpSource, reference: string): Promise<boolean> {
    return this.byReference.get(accountId, source, reference) !== undefined;
  }

  async list(accountId: string, limit: number, before?: string): Promise<TopUp[]> {
    const rows = before === undefined ? this.byAccount.all(accountId, limit) : this.byAccountBefore.all({ accountId, limit, before });
    return (rows as TopUpRow[]).map(toTopUp);
  }
}
