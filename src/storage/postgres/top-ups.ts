import type pg from 'pg';
import type { TopUp, TopUpSource, TopUpStore } from '../ports.js';
import { unstorable } from './text.js';

interface TopUpRow {
  id: string;
  account_id: string;
  /** bigint: pg hands it over as a string. */
  credits: string;
  source: string;
  reference: string | null;
  created_at: Date;
}

const toTopUp = (r: TopUpRow): TopUp => ({
  id: r.id,
  accountId: r.account_id,
  credits: Number(r.credits),
  source: r.source as TopUpSource,
  reference: r.reference,
  createdAt: r.created_at.toISOString(),
});

export class PostgresTopUpStore implements TopUpStore {
  constructor(private readonly pool: pg.Pool) {}

  async record(t: TopUp): Promise<boolean> {
    // The unique index on (account_id, source, reference) turns a repeat into no row.
    const { rowCount } = await this.pool.query(
      `INSERT INTO top_ups (id, account_id, credits, source, reference, created_at)
       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
      [t.id, t.accountId, t.credits, t.source, t.reference, t.createdAt],
    );
    return rowCount === 1;
  }

  async list(accountId: string, limit: number): Promise<TopUp[]> {
    if (unstorable(accountId)) return [];
    // COLLATE "C": byte order for the id tie-break, as in SQLite, whatever the database locale.
    const { rows } = await this.pool.query<TopUpRow>(
      'SELECT * FROM top_ups WHERE account_id = $1 ORDER BY created_at DESC, id COLLATE "C" DESC LIMIT $2',
      [accountId, limit],
    );
    return rows.map(toTopUp);
  }
}
