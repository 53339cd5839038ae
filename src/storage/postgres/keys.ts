import type pg from 'pg';
import type { ApiKey, KeyLimit, KeyLimitWindow, KeyStore, NewApiKey } from '../ports.js';
import { unstorable } from './text.js';

interface KeyRow {
  id: string;
  account_id: string;
  name: string;
  prefix: string;
  hash: string;
  created_at: Date;
  revoked_at: Date | null;
  last_used_at: Date | null;
  /** bigint: pg hands it over as a string. */
  limit_credits: string | null;
  limit_window: string | null;
}

function toKey(row: KeyRow): ApiKey {
  return {
    id: row.id,
    accountId: row.account_id,
    name: row.name,
    prefix: row.prefix,
    hash: row.hash,
    createdAt: row.created_at.toISOString(),
    revokedAt: row.revoked_at?.toISOString() ?? null,
    lastUsedAt: row.last_used_at?.toISOString() ?? null,
    limit: row.limit_credits === null ? null : { credits: Number(row.limit_credits), window: row.limit_window as KeyLimitWindow },
  };
}

function first(rows: KeyRow[]): ApiKey | null {
  return rows[0] ? toKey(rows[0]) : null;
}

export class PostgresKeyStore implements KeyStore {
  constructor(private readonly pool: pg.Pool) {}

  async create(key: NewApiKey): Promise<ApiKey> {
    const { rows } = await this.pool.query<KeyRow>(
      `INSERT INTO api_keys (id, account_id, name, prefix, hash, created_at, limit_credits, limit_window)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
      [key.id, key.accountId, key.name, key.prefix, key.hash, key.createdAt, key.limit?.credits ?? null, key.limit?.window ?? null],
    );
    return toKey(rows[0] as KeyRow);
  }

  async findByHash(hash: string): Promise<ApiKey | null> {
    return first((await this.pool.query<KeyRow>('SELECT * FROM api_keys WHERE hash = $1', [hash])).rows);
  }

  async get(id: string): Promise<ApiKey | null> {
    if (unstorable(id)) return null;
    return first((await this.pool.query<KeyRow>('SELECT * FROM api_keys WHERE id = $1', [id])).rows);
  }

  async listByAccount(accountId: string): Promise<ApiKey[]> {
    if (unstorable(accountId)) return [];
    // COLLATE "C": byte order for the id tie-break, as in SQLite, whatever the database locale.
    const { rows } = await this.pool.query<KeyRow>(
      'SELECT * FROM api_keys WHERE account_id = $1 ORDER BY created_at, id COLLATE "C"',
      [accountId],
    );
    return rows.map(toKey);
  }

  async revoke(id: string, at: string): Promise<ApiKey | null> {
    if (unstorable(id)) return null;
    const { rows } = await this.pool.query<KeyRow>(
      'UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING *',
      [id, at],
    );
    return first(rows);
  }

  async setLimit(id: string, limit: KeyLimit | null): Promise<ApiKey | null> {
    if (unstorable(id)) return null;
    const { rows } = await this.pool.query<KeyRow>(
      'UPDATE api_keys SET limit_credits = $2, limit_window = $3 WHERE id = $1 RETURNING *',
      [id, limit?.credits ?? null, limit?.window ?? null],
    );
    return first(rows);
  }

  async touchLastUsed(id: string, at: string): Promise<void> {
    // One statement, so out-of-order settles cannot move it back; the WHERE also skips writing a
    // new row version (this runs on every request) when the time would not advance.
    await this.pool.query(
      `UPDATE api_keys SET last_used_at = $2
       WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)`,
      [id, at],
    );
  }
}
