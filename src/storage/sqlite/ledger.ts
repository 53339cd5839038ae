import type Database from 'better-sqlite3';
import { BatchClosedError } from '../batcher.js';
import type { Surface } from '../../core/types.js';
import { cursorMillisecond, decodeCursor, encodeCursor } from '../cursor.js';
import type { DailyUsage, Ledger, UsagePage, UsageQuery, UsageRecord, UsageStatus } from '../ports.js';
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
  provider: string | null;
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
    provider: row.provider,
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

/** A usage_records row in INSERT column order (the `record` write). */
type RowValues = [string, string, string | null, string, string, number, number, number, string, number, string, string, string | null];

/** `WHERE` and the conditions, or nothing when there are none. */
const where = (conds: readonly string[]) => (conds.length ? `WHERE ${conds.join(' AND ')}` : '');

/**
 * The conditions for a query's time range, on the created_at of `table`. Only set filters are
 * written (not `@x IS NULL OR …`, which SQLite cannot answer from an index).
 */
function rangeOf(q: UsageQuery, table = ''): string[] {
  const conds: string[] = [];
  if (q.from !== undefined) conds.push(`${table}created_at >= @from`);
  if (q.to !== undefined) conds.push(`${table}created_at < @to`);
  return conds;
}

/**
 * The records usage_records_by_account does not hold yet (migration 9): the newest, a rowid range.
 * Read NOT INDEXED, or SQLite walks the whole created_at index to merge them in order.
 */
const UNINDEXED = 'id > (SELECT indexed_up_to FROM usage_index_state WHERE id = 1)';

/**
 * The newest records first. An account's are a seek on usage_records_by_account (its newest
 * @limit entries, in order) plus the few records past indexed_up_to; a time range over every
 * account is a seek on usage_records(created_at). /v1/usage and the web app run these on the
 * event loop, so no query scans the ledger for one account, whatever its size.
 */
export function recordsSql(q: UsageQuery): string {
  const order = 'ORDER BY created_at DESC, id DESC LIMIT @limit';
  // A row value, which SQLite answers as one range on an index whose columns are these two (the
  // rowid ends every index): https://sqlite.org/rowvalue.html#row_value_comparisons
  const after = (id: string) => (q.before === undefined ? [] : [`(created_at, ${id}) < (@beforeAt, @beforeId)`]);
  if (q.accountId === undefined) return `SELECT * FROM usage_records ${where([...rangeOf(q), ...after('id')])} ${order}`;
  return `SELECT * FROM (
      SELECT * FROM usage_records WHERE id IN (
        SELECT record_id FROM usage_records_by_account ${where(['account_id = @accountId', ...rangeOf(q), ...after('record_id')])}
        ORDER BY created_at DESC, record_id DESC LIMIT @limit)
      UNION ALL
      SELECT * FROM usage_records NOT INDEXED ${where([UNINDEXED, 'account_id = @accountId', ...rangeOf(q), ...after('id')])}
    ) ${order}`;
}

/** Whether a bound is absent or a UTC midnight, so that it falls between two days' totals. */
const dayAligned = (bound: string | undefined) => bound === undefined || canonicalInstant(bound).endsWith('T00:00:00.000Z');

/**
 * Totals per day, account, model and surface. Over whole days (every query the server makes), the
 * totals kept in usage_daily (migration 11) plus the unindexed tail's records, grouped again; over
 * any other range, the records themselves.
 */
export function dailySql(q: UsageQuery): string {
  if (dayAligned(q.from) && dayAligned(q.to)) {
    const days: string[] = [];
    if (q.from !== undefined) days.push('day >= substr(@from, 1, 10)');
    if (q.to !== undefined) days.push('day < substr(@to, 1, 10)');
    const account = q.accountId === undefined ? [] : ['account_id = @accountId'];
    return `SELECT day, account_id, model, surface, SUM(requests) AS requests,
           SUM(prompt_tokens) AS prompt_tokens, SUM(output_tokens) AS output_tokens, SUM(credits) AS credits
         FROM (SELECT day, account_id, model, surface, requests, prompt_tokens, output_tokens, credits
                 FROM usage_daily ${where([...account, ...days])}
               UNION ALL
               SELECT day, account_id, model, surface, 1, prompt_tokens, output_tokens, credits
                 FROM usage_records NOT INDEXED ${where([UNINDEXED, ...account, ...rangeOf(q)])})
         GROUP BY day, account_id, model, surface
         ORDER BY day DESC, account_id, model, surface LIMIT @limit`;
  }
  const source =
    q.accountId === undefined
      ? `usage_records ${where(rangeOf(q))}`
      : `(SELECT r.* FROM usage_records_by_account a CROSS JOIN usage_records r ON r.id = a.record_id
            ${where(['a.account_id = @accountId', ...rangeOf(q, 'a.')])}
          UNION ALL
          SELECT * FROM usage_records NOT INDEXED ${where([UNINDEXED, 'account_id = @accountId', ...rangeOf(q)])})`;
  return `SELECT day, account_id, model, surface, COUNT(*) AS requests,
         SUM(prompt_tokens) AS prompt_tokens, SUM(output_tokens) AS output_tokens, SUM(credits) AS credits
       FROM ${source}
       GROUP BY day, account_id, model, surface
       ORDER BY day DESC, account_id, model, surface LIMIT @limit`;
}

/** The largest rowid SQLite can give (https://sqlite.org/autoinc.html). */
const MAX_ROWID = 9_223_372_036_854_775_807n;

function params(q: UsageQuery, limit = clampLimit(q.limit)) {
  const before = q.before === undefined ? undefined : decodeCursor(q.before);
  return {
    ...(q.accountId !== undefined && { accountId: q.accountId }),
    ...(q.from !== undefined && { from: canonicalInstant(q.from) }),
    ...(q.to !== undefined && { to: canonicalInstant(q.to) }),
    // SQLite keeps milliseconds: a PostgreSQL cursor's time with microseconds comes after every
    // record of its millisecond, so all of them are before it.
    ...(before && {
      beforeAt: cursorMillisecond(before.createdAt),
      beforeId: before.createdAt === cursorMillisecond(before.createdAt) ? BigInt(before.id) : MAX_ROWID,
    }),
    limit,
  };
}

export interface SqliteLedgerOptions {
  /**
   * Records between two catch-ups of usage_records_by_account (migration 9). Larger writes fewer
   * pages per record; smaller keeps the unindexed tail an account's query reads by rowid shorter.
   */
  indexEvery?: number;
}

/**
 * Appends are grouped: records appended in the same turn of the event loop are written together
 * with the embedded limiter's settlements on this connection (writer.ts) — one SQLite transaction,
 * or in the serving process one line of the pending log (pending-log.ts) — instead of a commit
 * each, which was the largest single cost on the request path. append() still resolves only once
 * its record is durable, so the durability promise is unchanged; queries wait until the pending
 * log is applied (writer.caughtUp), so they see every record appended.
 */
export class SqliteLedger implements Ledger {
  private readonly writer: SqliteWriter;
  private closed = false;
  /** Prepared queries by SQL text: one per combination of filters (at most eight each). */
  private readonly statements = new Map<string, Database.Statement>();
  private readonly indexEvery: number;
  /** Records appended since the last catch-up was queued (at start: those the file left unindexed). */
  private unindexed: number;

  constructor(
    private readonly db: Database.Database,
    opts: SqliteLedgerOptions = {},
  ) {
    this.indexEvery = opts.indexEvery ?? 4096;
    this.writer = writerFor(db);
    // A kind's arguments are its format in the pending log. Records are written as `record`, with
    // the provider last; `ledger` is the format before the provider (migration 15), kept so that
    // lines a server left in the log before its upgrade replay, their provider NULL. One kind for
    // both would not do: a 12-argument line on the 13-parameter INSERT fails ("Too few parameter
    // values"), which is no refused write (apply-writes.ts) but a failed replay: the server could
    // not start on the file.
    this.writer.define('record', [
      {
        sql: `INSERT INTO usage_records (request_id, account_id, key_id, model, surface, prompt_tokens,
                output_tokens, credits, status, http_status, created_at, day, provider)
              VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      },
    ]);
    this.writer.define('ledger', [
      {
        sql: `INSERT INTO usage_records (request_id, account_id, key_id, model, surface, prompt_tokens,
                output_tokens, credits, status, http_status, created_at, day)
              VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      },
    ]);
    // The catch-up is a write like the records, logged behind them: moving indexed_up_to to the
    // last record fires the trigger that indexes every record it passes (migration 9).
    this.writer.define('ledger-index', [
      {
        sql: `UPDATE usage_index_state
                SET indexed_up_to = MAX(indexed_up_to, (SELECT COALESCE(MAX(id), 0) FROM usage_records))
              WHERE id = 1`,
      },
    ]);
    this.unindexed = db
      .prepare('SELECT (SELECT COALESCE(MAX(id), 0) FROM usage_records) - indexed_up_to FROM usage_index_state WHERE id = 1')
      .pluck()
      .get() as number;
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
      record.provider,
    ];
    if (++this.unindexed < this.indexEvery) return this.writer.write(['record', row]);
    this.unindexed = 0;
    return this.writer.write(['record', row], ['ledger-index', []]);
  }

  /**
   * Looks each record up by its created_at and request id (the created_at index finds it) and
   * appends the missing ones. No unique index on request_id: one cost 5–6 % of a request's CPU
   * (bench/ab.mjs, UUIDv7 ids) for a path only receipts take, and this file has one writing process, so the
   * lookup cannot race another writer.
   */
  async appendMissing(records: readonly UsageRecord[]): Promise<number> {
    if (this.closed) throw new BatchClosedError();
    await this.writer.caughtUp();
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
    await this.writer.caughtUp();
    return (this.statement(recordsSql(q)).all(params(q)) as RecordRow[]).map(toRecord);
  }

  async page(q: UsageQuery): Promise<UsagePage> {
    await this.writer.caughtUp();
    const limit = clampLimit(q.limit);
    // One row more than the page tells whether another page follows.
    const rows = this.statement(recordsSql(q)).all(params(q, limit + 1)) as (RecordRow & { id: number })[];
    const last = rows.length > limit ? rows[limit - 1] : undefined;
    return {
      records: rows.slice(0, limit).map(toRecord),
      next: last ? encodeCursor({ createdAt: last.created_at, id: String(last.id) }) : null,
    };
  }

  async daily(q: UsageQuery): Promise<DailyUsage[]> {
    await this.writer.caughtUp();
    // A page's cursor is for records, not totals.
    const { before: _records, ...range } = q;
    return (this.statement(dailySql(range)).all(params(range)) as DailyRow[]).map(toDaily);
  }
}
