import type pg from 'pg';
import type { ApiKey, KeyLimitWindow, KeyPatch, KeyStore, NewApiKey } from '../ports.js';
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
  expires_at: Date | null;
  models: string[] | null;
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
    expiresAt: row.expires_at?.toISOString() ?? null,
    models: row.models,
  };
}

function first(rows: KeyRow[]): ApiKey | null {
  return rows[0] ? toKey(rows[0]) : null;
}

export class PostgresKeyStore implements KeyStore {
  constructor(private readonly pool: pg.Pool) {}

  async create(key: NewApiKey): Promise<ApiKey> {
    const { rows } = await this.pool.query<KeyRow>(
      `INSERT INTO api_keys (id, account_id, name, prefix, hash, created_at, limit_credits, limit_window, expires_at, models)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *`,
      [key.id, key.accountId, key.name, key.prefix, key.hash, key.createdAt, key.limit?.credits ?? null, key.limit?.window ?? null, key.expiresAt ?? null, key.models ?? null],
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

  async update(id: string, patch: KeyPatch): Promise<ApiKey | null> {
    if (unstorable(id)) return null;
    // One statement whatever the patch holds: a field is written only when its flag is true.
    const { rows } = await this.pool.query<KeyRow>(
      `UPDATE api_keys SET
         limit_credits = CASE WHEN $2 THEN $3::bigint ELSE limit_credits END,
         limit_window = CASE WHEN $2 THEN $4::text ELSE limit_window END,
         expires_at = CASE WHEN $5 THEN $6::timestamptz ELSE expires_at END,
         models = CASE WHEN $7 THEN $8::text[] ELSE models END
       WHERE id = $1 RETURNING *`,
      [
        id,
        patch.limit !== undefined,
        patch.limit?.credits ?? null,
        patch.limit?.window ?? null,
        patch.expiresAt !== undefined,
        patch.expiresAt ?? null,
        patch.models !== undefined,
        patch.models ?? null,
      ],
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
