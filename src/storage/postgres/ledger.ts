// The usage ledger on PostgreSQL: append-only rows, daily totals kept by a trigger in the inserting
// transaction (migration 6; a GROUP BY over the records for part of a day), and appends group-committed by a Batcher so a busy gateway writes one INSERT per few ms instead of
// one per request. append() resolves only after its batch is committed, so every query or daily
// issued after an append() resolved sees that record (each statement reads a fresh snapshot).
import type pg from 'pg';
import type { Surface } from '../../core/types.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import type { DailyUsage, Ledger, OwedCharge, OwedCharges, UsagePage, UsageQuery, UsageRecord, UsageStatus } from '../ports.js';
import { canonicalInstant, clampLimit } from '../time.js';
import { Batcher, type BatcherOptions, type BatcherStats } from '../batcher.js';
import { unstorable } from './text.js';

interface RecordRow {
  request_id: string;
  account_id: string;
  key_id: string | null;
  model: string;
  surface: string;
  prompt_tokens: string; // bigint arrives as a string from pg
  output_tokens: string;
  credits: string;
  status: string;
  http_status: number;
  created_at: Date;
  provider: string | null;
}

interface DailyRow {
  day: string;
  account_id: string;
  model: string;
  surface: string;
  requests: string;
  prompt_tokens: string;
  output_tokens: string;
  credits: string;
}

function toRecord(row: RecordRow): UsageRecord {
  return {
    requestId: row.request_id,
    accountId: row.account_id,
    keyId: row.key_id,
    model: row.model,
    surface: row.surface as Surface,
    promptTokens: Number(row.prompt_tokens),
    outputTokens: Number(row.output_tokens),
    credits: Number(row.credits),
    status: row.status as UsageStatus,
    httpStatus: row.http_status,
    createdAt: row.created_at.toISOString(),
    provider: row.provider,
  };
}

function toDaily(row: DailyRow): DailyUsage {
  return {
    day: row.day,
    accountId: row.account_id,
    model: row.model,
    surface: row.surface as Surface,
    requests: Number(row.requests),
    promptTokens: Number(row.prompt_tokens),
    outputTokens: Number(row.output_tokens),
    credits: Number(row.credits),
  };
}

/** A bound at a UTC midnight (or none): a daily query of whole days reads the kept totals. */
const dayAligned = (bound: string | undefined) => bound === undefined || canonicalInstant(bound).endsWith('T00:00:00.000Z');

/** WHERE clause and parameters for a query's filters; the limit is the last parameter. */
function where(q: UsageQuery): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const conds: string[] = [];
  if (q.accountId !== undefined) conds.push(`account_id = $${params.push(q.accountId)}`);
  if (q.from !== undefined) conds.push(`created_at >= $${params.push(canonicalInstant(q.from))}`);
  if (q.to !== undefined) conds.push(`created_at < $${params.push(canonicalInstant(q.to))}`);
  if (q.before !== undefined) {
    const at = decodeCursor(q.before);
    const time = `$${params.push(at.createdAt)}::timestamptz`;
    // The plain bound is what the created_at indexes seek on (no index has id after created_at);
    // the row value then drops the records of that millisecond at or after the cursor's.
    conds.push(`created_at <= ${time}`, `(created_at, id) < (${time}, $${params.push(at.id)}::bigint)`);
  }
  const sql = conds.length > 0 ? `WHERE ${conds.join(' AND ')}` : '';
  return { sql, params };
}

// One statement whatever the batch size: 12 array parameters instead of 12 × n scalars, so the
// 65,535-parameter limit never applies and the text is the same for every batch.
// https://www.postgresql.org/docs/15/functions-array.html (unnest with several arrays)
const INSERT = `INSERT INTO usage_records (request_id, account_id, key_id, model, surface,
    prompt_tokens, output_tokens, credits, status, http_status, created_at, provider)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
    $6::bigint[], $7::bigint[], $8::bigint[], $9::text[], $10::integer[], $11::timestamptz[], $12::text[])
  ON CONFLICT (request_id) DO NOTHING`;

// The same records and, in the same statement (so in one transaction), the charges they owe.
// Data-modifying statements in WITH: https://www.postgresql.org/docs/15/queries-with.html#QUERIES-WITH-MODIFYING
const INSERT_OWING = `WITH records AS (${INSERT})
  INSERT INTO owed_charges (request_id, account_id, charges, created_at)
  SELECT * FROM unnest($13::text[], $14::text[], $15::jsonb[], $16::timestamptz[])
  ON CONFLICT (request_id) DO NOTHING`;

interface OwedRow {
  request_id: string;
  account_id: string;
  charges: OwedCharge['charges'];
  created_at: Date;
}

const INTEGER_FIELDS = ['promptTokens', 'outputTokens', 'credits', 'httpStatus'] as const;

/**
 * Refuses a record the INSERT would fail on, before it joins a batch: otherwise one bad record
 * would reject every other record of its batch.
 */
function checked(record: UsageRecord): UsageRecord {
  for (const field of INTEGER_FIELDS) {
    if (!Number.isSafeInteger(record[field])) {
      throw new RangeError(`usage record ${record.requestId}: ${field} must be an integer, got ${record[field]}`);
    }
  }
  if (record.httpStatus < -2_147_483_648 || record.httpStatus > 2_147_483_647) {
    throw new RangeError(`usage record ${record.requestId}: httpStatus out of range: ${record.httpStatus}`);
  }
  return { ...record, createdAt: canonicalInstant(record.createdAt) };
}

/** A record row as a page reads it: its row id, and its time to the microsecond as text. */
type PagedRow = RecordRow & { id: string; created_at_us: string };

/** `2026-11-25T10:00:00.000500Z`: every digit a timestamptz keeps (https://www.postgresql.org/docs/15/functions-formatting.html). */
const MICROSECOND_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"';

/**
 * A stored time as a cursor holds it: canonical when its microseconds are zero (every record the
 * gateway writes), else with them, so that a page ending on it keeps the rest of its millisecond.
 */
const cursorTime = (micro: string) => (micro.endsWith('000Z') ? `${micro.slice(0, 23)}Z` : micro);

export class PostgresLedger implements Ledger {
  private readonly batcher: Batcher<UsageRecord>;
  /** Records that owe a charge, group-committed apart: only an outage fills it, so append() stays as it was. */
  private readonly owing: Batcher<{ record: UsageRecord; owed: OwedCharge }>;
  readonly owed: OwedCharges;

  constructor(
    private readonly pool: pg.Pool,
    batch: BatcherOptions = {},
  ) {
    this.batcher = new Batcher((records) => this.insert(INSERT, records), batch);
    this.owing = new Batcher((items) => this.insert(INSERT_OWING, items.map((i) => i.record), items.map((i) => i.owed)), batch);
    this.owed = {
      append: async (record, owed) => this.owing.add({ record: checked(record), owed: { ...owed, createdAt: canonicalInstant(owed.createdAt) } }),
      settle: (limit, apply) => this.settleOwed(limit, apply),
    };
  }

  /**
   * Resolves once the record is committed. Rejects if its batch's INSERT fails; the record is then
   * not stored and not retried (see batcher.ts). Rejects after close().
   */
  async append(record: UsageRecord): Promise<void> {
    return this.batcher.add(checked(record));
  }

  /** append() already ignores a request id the table holds (its unique index, ON CONFLICT DO NOTHING). */
  async appendMissing(records: readonly UsageRecord[]): Promise<number> {
    const { rows } = await this.pool.query<{ request_id: string }>('SELECT request_id FROM usage_records WHERE request_id = ANY($1::text[])', [
      records.map((r) => r.requestId),
    ]);
    const stored = new Set(rows.map((r) => r.request_id));
    const missing = records.filter((r) => !stored.has(r.requestId));
    await Promise.all(missing.map((r) => this.append(r)));
    return missing.length;
  }

  async query(q: UsageQuery): Promise<UsageRecord[]> {
    return (await this.rows(q, clampLimit(q.limit))).map(toRecord);
  }

  async page(q: UsageQuery): Promise<UsagePage> {
    const limit = clampLimit(q.limit);
    // One row more than the page tells whether another page follows.
    const rows = await this.rows(q, limit + 1);
    const last = rows.length > limit ? rows[limit - 1] : undefined;
    return {
      records: rows.slice(0, limit).map(toRecord),
      next: last ? encodeCursor({ createdAt: cursorTime(last.created_at_us), id: last.id }) : null,
    };
  }

  private async rows(q: UsageQuery, limit: number): Promise<PagedRow[]> {
    if (q.accountId !== undefined && unstorable(q.accountId)) return [];
    const { sql, params } = where(q);
    // created_at_us: the stored time to the microsecond (a JS Date, created_at, keeps milliseconds).
    const { rows } = await this.pool.query<PagedRow>(
      `SELECT *, to_char(created_at AT TIME ZONE 'UTC', '${MICROSECOND_FORMAT}') AS created_at_us
       FROM usage_records ${sql} ORDER BY created_at DESC, id DESC LIMIT $${params.length + 1}`,
      [...params, limit],
    );
    return rows;
  }

  async daily(q: UsageQuery): Promise<DailyUsage[]> {
    if (q.accountId !== undefined && unstorable(q.accountId)) return [];
    // COLLATE "C": byte order, as SQLite sorts, whatever the database's locale.
    const order = 'ORDER BY day DESC, account_id COLLATE "C", model COLLATE "C", surface COLLATE "C"';
    if (dayAligned(q.from) && dayAligned(q.to)) {
      // Whole days: the totals the ledger's trigger keeps (migration 6), a row per group and database session.
      const params: unknown[] = [];
      const conds: string[] = [];
      if (q.accountId !== undefined) conds.push(`account_id = $${params.push(q.accountId)}`);
      if (q.from !== undefined) conds.push(`day >= $${params.push(canonicalInstant(q.from).slice(0, 10))}::date`);
      if (q.to !== undefined) conds.push(`day < $${params.push(canonicalInstant(q.to).slice(0, 10))}::date`);
      const { rows } = await this.pool.query<DailyRow>(
        `SELECT to_char(day, 'YYYY-MM-DD') AS day, account_id, model, surface, SUM(requests) AS requests,
           SUM(prompt_tokens) AS prompt_tokens, SUM(output_tokens) AS output_tokens, SUM(credits) AS credits
         FROM usage_daily ${conds.length > 0 ? `WHERE ${conds.join(' AND ')}` : ''}
         GROUP BY usage_daily.day, account_id, model, surface
         ${order.replace('day DESC', 'usage_daily.day DESC')} LIMIT $${params.length + 1}`,
        [...params, clampLimit(q.limit)],
      );
      return rows.map(toDaily);
    }
    // Part of a day: the records themselves (a page's cursor is for records, not totals).
    const { before: _records, ...range } = q;
    const { sql, params } = where(range);
    const { rows } = await this.pool.query<DailyRow>(
      `SELECT to_char(day, 'YYYY-MM-DD') AS day, account_id, model, surface, COUNT(*) AS requests,
         SUM(prompt_tokens) AS prompt_tokens, SUM(output_tokens) AS output_tokens, SUM(credits) AS credits
       FROM usage_records ${sql}
       GROUP BY usage_records.day, account_id, model, surface
       ${order.replace('day DESC', 'usage_records.day DESC')}
       LIMIT $${params.length + 1}`,
      [...params, clampLimit(q.limit)],
    );
    return rows.map(toDaily);
  }

  /** Stops accepting records and writes every queued one. */
  async close(): Promise<void> {
    await Promise.all([this.batcher.close(), this.owing.close()]);
  }

  stats(): BatcherStats {
    return this.batcher.stats();
  }

  /**
   * Row locks make the taking exclusive: SKIP LOCKED leaves rows another instance holds to it
   * (https://www.postgresql.org/docs/15/sql-select.html#SQL-FOR-UPDATE-SHARE), and a process that
   * dies mid-way rolls back, handing its rows to the next drain. The transaction stays open while
   * `apply` talks to the counter store: a handful of short calls, and only after an outage.
   */
  private async settleOwed(limit: number, apply: (owed: readonly OwedCharge[]) => Promise<readonly string[]>): Promise<number> {
    // Outside an outage's aftermath the table is empty: one read, no transaction, every drain.
    const { rows: any } = await this.pool.query<{ owed: boolean }>('SELECT EXISTS (SELECT 1 FROM owed_charges) AS owed');
    if (!any[0]?.owed) return 0;
    const client = await this.pool.connect();
    let broken: unknown;
    // While `apply` runs the session is idle in its transaction, and the server may end it then
    // (idle_in_transaction_session_timeout, a restart): pg reports that as an 'error' event on the
    // client, which the pool listens for only while the client is idle in the pool — unheard, it
    // crashed the process. The next statement (or COMMIT) fails with it, and nothing is forgotten.
    const ended = (err: Error) => (broken = err);
    client.on('error', ended);
    try {
      await client.query('BEGIN');
      try {
        // A drain whose host dies silently (no FIN reaches the server) would hold its rows until
        // TCP keepalive gives up, about 2 h: unless the operator set a limit of their own, the
        // server ends the session after a minute idle instead, and the next drain takes them
        // (applying twice is harmless: Receipts.charge remembers each id for a day).
        await client.query(
          "SELECT set_config('idle_in_transaction_session_timeout', '60s', true) WHERE current_setting('idle_in_transaction_session_timeout') IN ('0', '0ms')",
        );
        const { rows } = await client.query<OwedRow>(
          'SELECT request_id, account_id, charges, created_at FROM owed_charges ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED',
          [limit],
        );
        let forgotten = 0;
        if (rows.length > 0) {
          const applied = await apply(
            rows.map((r) => ({ requestId: r.request_id, accountId: r.account_id, charges: r.charges, createdAt: r.created_at.toISOString() })),
          );
          if (applied.length > 0) {
            forgotten = (await client.query('DELETE FROM owed_charges WHERE request_id = ANY($1::text[])', [applied])).rowCount ?? 0;
          }
        }
        await client.query('COMMIT');
        return forgotten;
      } catch (err) {
        await client.query('ROLLBACK').catch((rollbackErr: unknown) => (broken = rollbackErr));
        throw err;
      }
    } finally {
      client.off('error', ended);
      // A connection whose ROLLBACK failed (or that the server ended) is in an unknown state: the pool drops it.
      client.release(broken instanceof Error ? broken : undefined);
    }
  }

  private async insert(sql: string, records: UsageRecord[], owed: OwedCharge[] = []): Promise<void> {
    const col = <K extends keyof UsageRecord>(k: K) => records.map((r) => r[k]);
    const owing =
      owed.length === 0
        ? []
        : [owed.map((o) => o.requestId), owed.map((o) => o.accountId), owed.map((o) => JSON.stringify(o.charges)), owed.map((o) => o.createdAt)];
    await this.pool.query(sql, [
      col('requestId'),
      col('accountId'),
      col('keyId'),
      col('model'),
      col('surface'),
      col('promptTokens'),
      col('outputTokens'),
      col('credits'),
      col('status'),
      col('httpStatus'),
      col('createdAt'),
      col('provider'),
      ...owing,
    ]);
  }
}
