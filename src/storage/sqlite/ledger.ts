import type Database from 'better-sqlite3';
import { BatchClosedError } from '../batcher.js';
import type { Surface } from '../../core/types.js';
import type { DailyUsage, Ledger, UsageQuery, UsageRecord, UsageStatus } from '../ports.js';
import { canonicalInstant, clampLimit } from '../time.js';
import { writerFor, type SqliteWriter } from './writer.js';

interface RecordRow {
  request_id: string;
  account_id: string;
  key_id: string | null;
  model: string;
  surface: string;
  prompt_tokens: number;
  output_tokens: number;
  credits: number;
  status: string;
  http_status: number;
  created_at: string;
}

interface DailyRow {
  day: string;
  account_id: string;
  model: string;
  surface: string;
  requests: number;
  prompt_tokens: number;
  output_tokens: number;
  credits: number;
}

function toRecord(row: RecordRow): UsageRecord {
  return {
    requestId: row.request_id,
    accountId: row.account_id,
    keyId: row.key_id,
    model: row.model,
    surface: row.surface as Surface,
    promptTokens: row.prompt_tokens,
    outputTokens: row.output_tokens,
    credits: row.credits,
    status: row.status as UsageStatus,
    httpStatus: row.http_status,
    createdAt: row.created_at,
  };
}

function toDaily(row: DailyRow): DailyUsage {
  return {
    day: row.day,
    accountId: row.account_id,
    model: row.model,
    surface: row.surface as Surface,
    requests: row.requests,
    promptTokens: row.prompt_tokens,
    outputTokens: row.output_tokens,
    credits: row.credits,
  };
}

/** A usage_records row in INSERT column order. */
type RowValues = [string, string, string | null, string, string, number, number, number, string, number, string, string];

/**
 * The WHERE clause for the filters a query sets. Only set filters are written (not `@x IS NULL OR
 * …`, which SQLite cannot answer from an index), so an account's usage is a seek on
 * usage_records(account_id, created_at) and a time range on usage_records(created_at) (migration
 * 8), whatever the size of the ledger: /v1/usage and the web app's meter run this on the event
 * loop.
 */
function filterOf(q: UsageQuery): string {
  const conds: string[] = [];
  if (q.accountId !== undefined) conds.push('account_id = @accountId');
  if (q.from !== undefined) conds.push('created_at >= @from');
  if (q.to !== undefined) conds.push('created_at < @to');
  return conds.length ? `WHERE ${conds.join(' AND ')}` : '';
}

/** The newest records first. */
export function recordsSql(q: UsageQuery): string {
  return `SELECT * FROM usage_records ${filterOf(q)} ORDER BY created_at DESC, id DESC LIMIT @limit`;
}

/** Totals per day, account, model and surface. */
export function dailySql(q: UsageQuery): string {
  return `SELECT day, account_id, model, surface, COUNT(*) AS requests,
         SUM(prompt_tokens) AS prompt_tokens, SUM(output_tokens) AS output_tokens, SUM(credits) AS credits
       FROM usage_records ${filterOf(q)}
       GROUP BY day, account_id, model, surface
       ORDER BY day DESC, account_id, model, surface LIMIT @limit`;
}

function params(q: UsageQuery) {
  return {
    ...(q.accountId !== undefined && { accountId: q.accountId }),
    ...(q.from !== undefined && { from: canonicalInstant(q.from) }),
    ...(q.to !== undefined && { to: canonicalInstant(q.to) }),
    limit: clampLimit(q.limit),
  };
}

/**
 * Appends are grouped: records appended in the same turn of the event loop are written together
 * with the embedded limiter's settlements on this connection (writer.ts) — one SQLite transaction,
 * or in the serving process one line of the pending log (pending-log.ts) — instead of a commit
 * each, which was the largest single cost on the request path. append() still resolves only once
 * its record is durable, so the durability promise is unchanged; queries apply the pending log
 * first, so they see every record appended.
 */
export class SqliteLedger implements Ledger {
  private readonly writer: SqliteWriter;
  private closed = false;
  /** Prepared queries by SQL text: one per combination of filters (at most eight each). */
  private readonly statements = new Map<string, Database.Statement>();

  constructor(private readonly db: Database.Database) {
    this.writer = writerFor(db);
    this.writer.define('ledger', [
      {
        sql: `INSERT INTO usage_records (request_id, account_id, key_id, model, surface, prompt_tokens,
                output_tokens, credits, status, http_status, created_at, day)
              VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      },
    ]);
  }

  async append(record: UsageRecord): Promise<void> {
    // Validated before it joins a batch, so one bad record cannot fail the others.
    if (this.closed) throw new BatchClosedError();
    const createdAt = canonicalInstant(record.createdAt);
    // Positional parameters: binding a dozen by name cost more than the insert itself.
    const row: RowValues = [
      record.requestId,
      record.accountId,
      record.keyId,
      record.model,
      record.surface,
      record.promptTokens,
      record.outputTokens,
      record.credits,
      record.status,
      record.httpStatus,
      createdAt,
      createdAt.slice(0, 10),
    ];
    await this.writer.write(['ledger', row]);
  }

  /**
   * Looks each record up by its created_at and request id (the created_at index finds it) and
   * appends the missing ones. No unique index on request_id: one cost 5–6 % of a request's CPU
   * (bench/ab.mjs, UUIDv7 ids) for a path only receipts take, and this file has one writing process, so the
   * lookup cannot race another writer.
   */
  async appendMissing(records: readonly UsageRecord[]): Promise<number> {
    if (this.closed) throw new BatchClosedError();
    this.writer.sync();
    const stored = this.statement('SELECT 1 FROM usage_records WHERE created_at = ? AND request_id = ?');
    const missing = records.filter((r) => stored.get(canonicalInstant(r.createdAt), r.requestId) === undefined);
    await Promise.all(missing.map((r) => this.append(r)));
    return missing.length;
  }

  /** Writes whatever is queued; later appends are refused. */
  async close(): Promise<void> {
    this.closed = true;
    await this.writer.flush();
  }

  private statement(sql: string): Database.Statement {
    let stmt = this.statements.get(sql);
    if (!stmt) this.statements.set(sql, (stmt = this.db.prepare(sql)));
    return stmt;
  }

  async query(q: UsageQuery): Promise<UsageRecord[]> {
    this.writer.sync();
    return (this.statement(recordsSql(q)).all(params(q)) as RecordRow[]).map(toRecord);
  }

  async daily(q: UsageQuery): Promise<DailyUsage[]> {
    this.writer.sync();
    return (this.statement(dailySql(q)).all(params(q)) as DailyRow[]).map(toDaily);
  }
}
