import type Database from 'better-sqlite3';
import type { ApiKey, KeyLimit, KeyLimitWindow, KeyStore, NewApiKey } from '../ports.js';
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
  private readonly limitStmt: Database.Statement;
  private readonly writer: SqliteWriter;

  constructor(db: Database.Database) {
    this.writer = writerFor(db);
    this.insert = db.prepare(
      `INSERT INTO api_keys (id, account_id, name, prefix, hash, created_at, limit_credits, limit_window)
       VALUES (@id, @accountId, @name, @prefix, @hash, @createdAt, @limitCredits, @limitWindow) RETURNING *`,
    );
    this.limitStmt = db.prepare('UPDATE api_keys SET limit_credits = ?, limit_window = ? WHERE id = ? RETURNING *');
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
    const { limit, ...fields } = key;
    return toKey(this.insert.get({ ...fields, limitCredits: limit?.credits ?? null, limitWindow: limit?.window ?? null }) as KeyRow);
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

  async setLimit(id: string, limit: KeyLimit | null): Promise<ApiKey | null> {
    await this.writer.caughtUp();
    return toKeyOrNull(this.limitStmt.get(limit?.credits ?? null, limit?.window ?? null, id));
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
