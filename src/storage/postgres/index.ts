// The PostgreSQL store: what several gateway instances share (SPEC §11). A pg Pool behind the same
// async ports as SQLite; schema migrated on open under an advisory lock, so instances may start
// together; ledger appends group-committed (ledger.ts).
import pg from 'pg';
import type { Storage } from '../ports.js';
import { PostgresAccountStore } from './accounts.js';
import type { BatcherOptions, BatcherStats } from '../batcher.js';
import { PostgresKeyStore } from './keys.js';
import { PostgresTopUpStore } from './top-ups.js';
import { PostgresLedger } from './ledger.js';
import { migrate } from './migrations.js';
import { reportOutages } from './outage.js';
import { DatabaseOpenError, shownUrl } from '../open-error.js';

export interface PostgresStorageOptions {
  /** Pool size per gateway instance. Default 10. */
  maxConnections?: number;
  /** Ledger group commit: flush at `maxRecords` queued or after `maxDelayMs`. Defaults 200 / 5 ms. */
  ledgerBatch?: BatcherOptions;
  /** Give up connecting (or waiting for a free connection) after this long, ms. Default 5,000. */
  connectTimeoutMs?: number;
  /** Give up on a query the server has not answered after this long, ms. Default 10,000. */
  queryTimeoutMs?: number;
}

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//.test(url);
}

export class PostgresStorage implements Storage {
  readonly accounts: PostgresAccountStore;
  readonly keys: PostgresKeyStore;
  readonly ledger: PostgresLedger;
  readonly topUps: PostgresTopUpStore;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    opts: PostgresStorageOptions = {},
  ) {
    this.accounts = new PostgresAccountStore(pool);
    this.keys = new PostgresKeyStore(pool);
    this.ledger = new PostgresLedger(pool, opts.ledgerBatch);
    this.topUps = new PostgresTopUpStore(pool);
    this.queryTimeoutMs = opts.queryTimeoutMs ?? 10_000;
  }

  private readonly queryTimeoutMs: number;

  async credentialsVersion(): Promise<number> {
    // Every request with a cached key waits on this read once a second: a database that stops
    // answering fails them after 2 s (503 storage_unavailable), not after the 10 s of other queries.
    // pg reads a per-query query_timeout (lib/client.js) that its type declarations leave out.
    const query = { text: 'SELECT v FROM credentials_version WHERE id = 1', query_timeout: Math.min(2_000, this.queryTimeoutMs) } as pg.QueryConfig;
    const { rows } = await this.pool.query<{ v: string }>(query);
    return Number(rows[0]?.v ?? 0);
  }

  async sharedSecret(name: string, make: () => string): Promise<string> {
    // One statement: of two instances starting at once, the second's insert waits for the first's
    // row and, finding it, keeps it; the no-op update makes RETURNING give the row in either case.
    const { rows } = await this.pool.query<{ value: string }>(
      `INSERT INTO shared_secrets (name, value, created_at) VALUES ($1, $2, now())
       ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING value`,
      [name, make()],
    );
    return rows[0]!.value;
  }

  async ping(): Promise<void> {
    // /readyz: the read every request with a cached key waits on (credentialsVersion), with its 2 s
    // limit. `SELECT 1` answered while that table was locked, and on a database that stopped
    // answering each probe held a pool connection for the 10 s query timeout — a kubelet probing
    // every few seconds took the pool's connections from the requests.
    const query = { text: 'SELECT v FROM credentials_version WHERE id = 1', query_timeout: Math.min(2_000, this.queryTimeoutMs) } as pg.QueryConfig;
    await this.pool.query(query);
  }

  /** Writes every queued ledger record, then ends the pool. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.ledger.close().finally(() => this.pool.end());
    return this.closing;
  }

  /** Ledger batching counters (for tests and metrics). */
  stats(): { ledger: BatcherStats } {
    return { ledger: this.ledger.stats() };
  }
}

/** Connects, migrates to the latest schema, and returns the store. */
/**
 * Whether the server, or the way to it, refused: the network (ECONNREFUSED, ENOTFOUND, a timeout),
 * or a SQLSTATE of class 08 (connection), 28 (authorization), 3D (no such database), 53 (out of
 * connections), or 42501 (no privilege: the role may not create the tables).
 * https://www.postgresql.org/docs/15/errcodes-appendix.html
 */
function refusedByDatabase(err: unknown): err is Error {
  if (!(err instanceof Error)) return false;
  const { code, syscall } = err as { code?: unknown; syscall?: unknown };
  // pg's connect timeout; not a statement's ("canceling statement due to statement timeout"), which is a migration's.
  if (typeof syscall === 'string' || /^Connection terminated/.test(err.message)) return true;
  return typeof code === 'string' && (/^(08|28|3D|53)/.test(code) || code === '42501');
}

export async function openPostgresStorage(url: string, opts: PostgresStorageOptions = {}): Promise<PostgresStorage> {
  if (!isPostgresUrl(url)) throw new Error(`not a postgres:// storage url: '${url}'`);
  // Migrations on a pool of their own, without the serving timeouts: building an index on a large
  // ledger takes seconds per million records.
  const migrations = new pg.Pool({ connectionString: url, max: 1 });
  migrations.on('error', () => {});
  try {
    await migrate(migrations);
  } catch (err) {
    throw refusedByDatabase(err) ? new DatabaseOpenError(`PostgreSQL database ${shownUrl(url)} (storage.url)`, err) : err;
  } finally {
    await migrations.end().catch(() => {});
  }
  // A database that stops answering (a frozen host, a network partition) must fail requests, not
  // hold them: without these, every request waiting on a key or ledger read hung until it came back.
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.maxConnections ?? 10,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 5_000,
    query_timeout: opts.queryTimeoutMs ?? 10_000,
  });
  // An idle client whose connection drops emits 'error' on the pool; unhandled, that would crash the
  // process. The next query on a fresh client reports the outage (and /readyz sees it via ping).
  // https://node-postgres.com/apis/pool#events
  pool.on('error', () => {});
  return new PostgresStorage(reportOutages(pool), opts);
}
