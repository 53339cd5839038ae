import type Database from 'better-sqlite3';
import type { ApiKey, KeyLimitWindow, KeyPatch, KeyStore, NewApiKey } from '../ports.js';
import { writerFor, type SqliteWriter } from './writer.js';

interface KeyRow {
  id: string;
  account_id: string;
  name: string;
  prefix: string;
  hash: string;
  created_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
  limit_credits: number | null;
  limit_window: string | null;
  expires_at: string | null;
  /** A JSON array of model ids. */
  models: string | null;
}

function toKey(row: KeyRow): ApiKey {
  return {
    id: row.id,
    accountId: row.account_id,
    name: row.name,
    prefix: row.prefix,
    hash: row.hash,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
    limit: row.limit_credits === null ? null : { credits: row.limit_credits, window: row.limit_window as KeyLimitWindow },
    expiresAt: row.expires_at,
    models: row.models === null ? null : (JSON.parse(row.models) as string[]),
  };
}

function toKeyOrNull(row: unknown): ApiKey | null {
  return row ? toKey(row as KeyRow) : null;
}

export class SqliteKeyStore implements KeyStore {
  private readonly insert: Database.Statement;
  private readonly byHash: Database.Statement;
  private readonly byId: Database.Statement;
  private readonly byAccount: Database.Statement;
  private readonly revokeStmt: Database.Statement;
  private readonly updateStmt: Database.Statement;
  private readonly writer: SqliteWriter;

  constructor(db: Database.Database) {
    this.writer = writerFor(db);
    this.insert = db.prepare(
      `INSERT INTO api_keys (id, account_id, name, prefix, hash, created_at, limit_credits, limit_window, expires_at, models)
       VALUES (@id, @accountId, @name, @prefix, @hash, @createdAt, @limitCredits, @limitWindow, @expiresAt, @models) RETURNING *`,
    );
    // One statement whatever the patch holds: a field is written only when its flag is 1.
    this.updateStmt = db.prepare(
      `UPDATE api_keys SET
         limit_credits = CASE WHEN @setLimit THEN @limitCredits ELSE limit_credits END,
         limit_window = CASE WHEN @setLimit THEN @limitWindow ELSE limit_window END,
         expires_at = CASE WHEN @setExpiresAt THEN @expiresAt ELSE expires_at END,
         models = CASE WHEN @setModels THEN @models ELSE models END
       WHERE id = @id RETURNING *`,
    );
    this.byHash = db.prepare('SELECT * FROM api_keys WHERE hash = ?');
    this.byId = db.prepare('SELECT * FROM api_keys WHERE id = ?');
    this.byAccount = db.prepare('SELECT * FROM api_keys WHERE account_id = ? ORDER BY created_at, id');
    this.revokeStmt = db.prepare(
      'UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? RETURNING *',
    );
    // Concurrent requests may settle out of order; last_used_at only moves forward. A write is [id, at].
    this.writer.define('touch', [
      { sql: 'UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, ?), ?) WHERE id = ?', args: [1, 1, 0] },
    ]);
  }

  async create(key: NewApiKey): Promise<ApiKey> {
    const { limit, expiresAt, models, ...fields } = key;
    return toKey(
      this.insert.get({
        ...fields,
        limitCredits: limit?.credits ?? null,
        limitWindow: limit?.window ?? null,
        expiresAt: expiresAt ?? null,
        models: models ? JSON.stringify(models) : null,
      }) as KeyRow,
    );
  }

  // The authentication lookup reads the table as it is: the pending log (writer.ts) holds only
  // last_used_at touches for keys, which authentication does not read, and applying the log on
  // every cache miss made a burst of misses (a cold start, the cache cleared by a revocation
  // anywhere) one transaction each. The other reads wait for the log to be applied first
  // (writer.caughtUp), so the admin API and the web app show every touch.
  async findByHash(hash: string): Promise<ApiKey | null> {
    return toKeyOrNull(this.byHash.get(hash));
  }

  async get(id: string): Promise<ApiKey | null> {
    await this.writer.caughtUp();
    return toKeyOrNull(this.byId.get(id));
  }

  async listByAccount(accountId: string): Promise<ApiKey[]> {
    await this.writer.caughtUp();
    return (this.byAccount.all(accountId) as KeyRow[]).map(toKey);
  }

  async revoke(id: string, at: string): Promise<ApiKey | null> {
    await this.writer.caughtUp();
    return toKeyOrNull(this.revokeStmt.get(at, id));
  }

  async update(id: string, patch: KeyPatch): Promise<ApiKey | null> {
    await this.writer.caughtUp();
    return toKeyOrNull(
      this.updateStmt.get({
        id,
        setLimit: patch.limit === undefined ? 0 : 1,
        limitCredits: patch.limit?.credits ?? null,
        limitWindow: patch.limit?.window ?? null,
        setExpiresAt: patch.expiresAt === undefined ? 0 : 1,
        expiresAt: patch.expiresAt ?? null,
        setModels: patch.models === undefined ? 0 : 1,
        models: patch.models ? JSON.stringify(patch.models) : null,
      }),
    );
  }

  /**
   * Joins the connection's group transaction (writer.ts) rather than committing on its own: a
   * gateway that started with many keys touches them all about once a minute, and as one
   * autocommit each they came in a burst of commits on the event loop.
   */
  touchLastUsed(id: string, at: string): Promise<void> {
    return this.writer.write(['touch', [id, at]]);
  }
}
