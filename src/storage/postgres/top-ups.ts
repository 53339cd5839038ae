import type pg from 'pg';
import { referenceSpace, type TopUp, type TopUpSource, type TopUpStore } from '../ports.js';
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
    // One statement: a reference already kept in the source's space (referenceSpace) turns it into
    // no row; the unique index on (account_id, source, reference) backs it within one source.
    const { rowCount } = await this.pool.query(
      `INSERT INTO top_ups (id, account_id, credits, source, reference, created_at)
       SELECT $1, $2, $3, $4, $5::text, $6
       WHERE $5::text IS NULL OR NOT EXISTS (
         SELECT 1 FROM top_ups WHERE account_id = $2 AND reference = $5::text AND source = ANY($7::text[]))
       ON CONFLICT DO NOTHING`,
      [t.id, t.accountId, t.credits, t.source, t.reference, t.createdAt, referenceSpace(t.source)],
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
