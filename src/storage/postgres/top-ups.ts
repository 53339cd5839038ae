import type pg from 'pg';
import { referenceSpace, StorageUnavailableError, type TopUp, type TopUpSource, type TopUpStore } from '../ports.js';
import { isOutage } from './outage.js';
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

// One statement: a reference already kept in the source's space (referenceSpace) turns it into no
// row; the unique index on (account_id, source, reference) backs it within one source.
const INSERT = `INSERT INTO top_ups (id, account_id, credits, source, reference, created_at)
  SELECT $1, $2, $3, $4, $5::text, $6
  WHERE $5::text IS NULL OR NOT EXISTS (
    SELECT 1 FROM top_ups WHERE account_id = $2 AND reference = $5::text AND source = ANY($7::text[]))
  ON CONFLICT DO NOTHING`;

export class PostgresTopUpStore implements TopUpStore {
  constructor(private readonly pool: pg.Pool) {}

  async record(t: TopUp): Promise<boolean> {
    const params = [t.id, t.accountId, t.credits, t.source, t.reference, t.createdAt, referenceSpace(t.source)];
    if (t.reference === null) return (await this.pool.query(INSERT, params)).rowCount === 1;
    // Across sources (the admin API and the CLI share a space) no index backs it, and two records
    // of one reference at once each found the other not committed yet and both were kept: one
    // credit twice in the history. The reference's lock makes the second wait for the first and
    // then, its statement seeing what committed before it began, keep nothing.
    let client: pg.PoolClient | undefined;
    let broken: unknown;
    try {
      client = await this.pool.connect();
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', [t.accountId, t.reference]);
      const { rowCount } = await client.query(INSERT, params);
      await client.query('COMMIT');
      return rowCount === 1;
    } catch (err) {
      await client?.query('ROLLBACK').catch((rollbackErr: unknown) => (broken = rollbackErr));
      throw isOutage(err) ? new StorageUnavailableError(`database unavailable: ${(err as Error).message}`, { cause: err }) : err;
    } finally {
      // A connection whose ROLLBACK failed is in an unknown state: the pool drops it.
      client?.release(broken instanceof Error ? broken : undefined);
    }
  }

  async has(accountId: string, source: TopUpSource, reference: string): Promise<boolean> {
    if (unstorable(accountId) || unstorable(reference)) return false;
    const { rowCount } = await this.pool.query('SELECT 1 FROM top_ups WHERE account_id = $1 AND source = $2 AND reference = $3 LIMIT 1', [accountId, source, reference]);
    return rowCount === 1;
  }

  async list(accountId: string, limit: number, before?: string): Promise<TopUp[]> {
    if (unstorable(accountId) || (before !== undefined && unstorable(before))) return [];
    // COLLATE "C": byte order for the id tie-break, as in SQLite, whatever the database locale.
    // After a top-up: its created_at bounds the seek on top_ups_account; the id breaks the tie.
    const after = `AND (created_at, id COLLATE "C") < (SELECT created_at, id COLLATE "C" FROM top_ups WHERE id = $3 AND account_id = $1)
       AND created_at <= (SELECT created_at FROM top_ups WHERE id = $3 AND account_id = $1)`;
    const { rows } = await this.pool.query<TopUpRow>(
      `SELECT * FROM top_ups WHERE account_id = $1 ${before === undefined ? '' : after} ORDER BY created_at DESC, id COLLATE "C" DESC LIMIT $2`,
      before === undefined ? [accountId, limit] : [accountId, limit, before],
    );
    return rows.map(toTopUp);
  }
}
