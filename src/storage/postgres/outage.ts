// Which pg failures mean "the database cannot serve now" (StorageUnavailableError, a 503) rather
// than a bug or a constraint (which keep their meaning). Codes: https://www.postgresql.org/docs/current/errcodes-appendix.html
import type pg from 'pg';
import { StorageUnavailableError } from '../ports.js';

/** SQLSTATEs of an outage: connection exceptions (class 08), too many connections, shutting down, starting up. */
const OUTAGE_STATES = /^(08|53300|57P0[1-3])/;
/** Errors node or pg raise without a SQLSTATE when the connection fails or a query times out. */
const OUTAGE_SYSCALLS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EPIPE', 'EAI_AGAIN']);
const OUTAGE_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Query read timeout|not queryable|Connection ended/i;

export function isOutage(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (OUTAGE_STATES.test(code) || OUTAGE_SYSCALLS.has(code))) return true;
  return OUTAGE_MESSAGES.test(err.message);
}

/** Makes the pool's queries fail with StorageUnavailableError on an outage; every other error is left as it is. */
export function reportOutages(pool: pg.Pool): pg.Pool {
  const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
  (pool as { query: unknown }).query = (...args: unknown[]) =>
    query(...args).catch((err: unknown) => {
      throw isOutage(err) ? new StorageUnavailableError(`database unavailable: ${(err as Error).message}`, { cause: err }) : err;
    });
  return pool;
}
