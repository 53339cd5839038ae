// Versioned schema for the PostgreSQL store. Migrations are append-only: never edit a shipped entry,
// add the next version. Several gateway instances may start against one database at once, so each
// step runs in its own transaction holding a transaction-scoped advisory lock and re-reads the
// version under it: exactly one instance applies a migration, the others see it done.
// https://www.postgresql.org/docs/15/functions-admin.html#FUNCTIONS-ADVISORY-LOCKS
import type pg from 'pg';
import { SchemaTooNewError, type Migration } from '../migration.js';

export { SchemaTooNewError, type Migration };

/**
 * The body of the trigger function that adds a statement's records to their daily totals, one row
 * per database session (migration 6; migration 7 puts it on databases that took 6's first form).
 */
const USAGE_DAILY_ADD = `$$
        BEGIN
          INSERT INTO usage_daily AS d (account_id, day, model, surface, backend, requests, prompt_tokens, output_tokens, credits)
            SELECT account_id, day, model, surface, pg_backend_pid(), COUNT(*), SUM(prompt_tokens), SUM(output_tokens), SUM(credits)
            FROM inserted GROUP BY account_id, day, model, surface
          ON CONFLICT (account_id, day, model, surface, backend) DO UPDATE SET
            requests = d.requests + excluded.requests,
            prompt_tokens = d.prompt_tokens + excluded.prompt_tokens,
            output_tokens = d.output_tokens + excluded.output_tokens,
            credits = d.credits + excluded.credits;
          RETURN NULL;
        END;
      $$`;

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'accounts, api keys, usage ledger',
    sql: `
      CREATE TABLE accounts (
        id                 text PRIMARY KEY,
        -- stored lowercased, so UNIQUE is case-insensitive; NULLs never collide
        email              text UNIQUE,
        plan               text NOT NULL,
        has_payment_method boolean NOT NULL DEFAULT false,
        created_at         timestamptz NOT NULL
      );

      CREATE TABLE api_keys (
        id           text PRIMARY KEY,
        account_id   text NOT NULL REFERENCES accounts(id),
        name         text NOT NULL,
        prefix       text NOT NULL,
        hash         text NOT NULL UNIQUE,
        created_at   timestamptz NOT NULL,
        revoked_at   timestamptz,
        last_used_at timestamptz
      );
      CREATE INDEX api_keys_account_id ON api_keys (account_id, created_at, id);

      -- Append-only (SPEC §7): daily totals are GROUP BY over this table, never hot UPDATE rows.
      -- Counts are bigint: credits run at 2,000,000 per USD, past int4 for one large request.
      CREATE TABLE usage_records (
        id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        request_id    text NOT NULL,
        account_id    text NOT NULL,
        key_id        text,
        model         text NOT NULL,
        surface       text NOT NULL,
        prompt_tokens bigint NOT NULL,
        output_tokens bigint NOT NULL,
        credits       bigint NOT NULL,
        status        text NOT NULL,
        http_status   integer NOT NULL,
        created_at    timestamptz NOT NULL,
        -- the UTC date of created_at, whatever the session TimeZone
        day           date NOT NULL GENERATED ALWAYS AS ((created_at AT TIME ZONE 'UTC')::date) STORED
      );
      CREATE INDEX usage_records_account_created ON usage_records (account_id, created_at);
      CREATE INDEX usage_records_created ON usage_records (created_at);
    `,
  },
  {
    version: 2,
    name: 'account password hashes for web sign-in',
    sql: `
      -- core/passwords.ts format (scrypt$N$r$p$salt$hash); NULL = the account cannot sign in.
      ALTER TABLE accounts ADD COLUMN password_hash text NULL;
    `,
  },
  {
    version: 3,
    name: 'a version number for cached credentials',
    sql: `
      -- Bumped by any change a cached key lookup depends on, from any instance, so every instance's
      -- key cache (core/keys.ts) keeps entries until something changed instead of re-reading every
      -- key every keys.cacheTtlMs. Not bumped by last_used_at touches.
      CREATE TABLE credentials_version (
        id integer PRIMARY KEY CHECK (id = 1),
        v  bigint NOT NULL
      );
      INSERT INTO credentials_version (id, v) VALUES (1, 0);
      CREATE FUNCTION bump_credentials_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          UPDATE credentials_version SET v = v + 1 WHERE id = 1;
          RETURN NULL;
        END;
      $$;
      CREATE TRIGGER api_keys_changed AFTER UPDATE OF account_id, hash, revoked_at OR DELETE ON api_keys
        FOR EACH STATEMENT EXECUTE FUNCTION bump_credentials_version();
      CREATE TRIGGER accounts_changed AFTER UPDATE OR DELETE ON accounts
        FOR EACH STATEMENT EXECUTE FUNCTION bump_credentials_version();
    `,
  },
  {
    version: 4,
    name: 'one ledger record per request',
    sql: `
      -- A receipt left by a process that died after settling is written by another process
      -- (core/receipt-drain.ts), possibly while the first one's own write also lands: the ledger
      -- keeps one record per request id and ignores the second (INSERT … ON CONFLICT DO NOTHING).
      -- Request ids are UUIDv7s (lib/ids.ts), so the index grows at its right edge.
      CREATE UNIQUE INDEX usage_records_request ON usage_records (request_id);
    `,
  },
  {
    version: 5,
    name: 'charges owed to an unreachable limiter',
    sql: `
      -- A request that settled while Redis was unreachable: its charge (every counter of its plan
      -- and the amount to add, storage/counters.ts Charge[]) is written with its usage record in one
      -- statement, so it outlives the process that served it, and deleted by whichever instance
      -- applies it to Redis (core/receipt-drain.ts). Empty outside an outage.
      CREATE TABLE owed_charges (
        request_id text PRIMARY KEY,
        account_id text NOT NULL,
        charges    jsonb NOT NULL,
        created_at timestamptz NOT NULL
      );
      CREATE INDEX owed_charges_created ON owed_charges (created_at);
    `,
  },
  {
    version: 6,
    name: 'daily totals kept by the ledger insert',
    sql: `
      -- Daily totals were a GROUP BY over every record of the period: an account with 200,000
      -- records today cost each /v1/usage (any key may call it) 220 ms of database time, and every
      -- account's day grows with the whole day's traffic. They are kept here instead, added by a
      -- statement trigger in the transaction that inserts the records, from any instance and any
      -- version, so they are exactly the records' sums whenever those are visible.
      -- Each database session adds to rows of its own (backend = its pid): a row shared by every
      -- session is a lock each batch holds to its commit, so instances' batches over the same busy
      -- accounts would queue behind one another's fsync. Readers add the sessions' rows up: a few
      -- dozen per account and day.
      CREATE TABLE usage_daily (
        account_id    text NOT NULL,
        day           date NOT NULL,
        model         text NOT NULL,
        surface       text NOT NULL,
        backend       integer NOT NULL,
        requests      bigint NOT NULL,
        prompt_tokens bigint NOT NULL,
        output_tokens bigint NOT NULL,
        credits       bigint NOT NULL,
        PRIMARY KEY (account_id, day, model, surface, backend)
      );
      -- Every account's totals for a range of days (the admin API without an account).
      CREATE INDEX usage_daily_day ON usage_daily (day);
      CREATE FUNCTION usage_daily_add() RETURNS trigger LANGUAGE plpgsql AS ${USAGE_DAILY_ADD};
      -- Inserts wait from here to the commit (an instance of the previous version included), so
      -- the totals below and the trigger's additions see every record exactly once.
      LOCK TABLE usage_records IN SHARE MODE;
      -- Only the rows an INSERT … ON CONFLICT DO NOTHING actually inserted are in the transition table.
      CREATE TRIGGER usage_records_daily AFTER INSERT ON usage_records
        REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION usage_daily_add();
      INSERT INTO usage_daily (account_id, day, model, surface, backend, requests, prompt_tokens, output_tokens, credits)
        SELECT account_id, day, model, surface, 0, COUNT(*), SUM(prompt_tokens), SUM(output_tokens), SUM(credits)
        FROM usage_records GROUP BY account_id, day, model, surface;
    `,
  },
  {
    version: 7,
    name: 'daily totals per database session on databases that took migration 6 before it was',
    sql: `
      -- Migration 6 shipped first (faa6758, 2026-12-05 04:43) with one row per account, day, model
      -- and surface shared by every session, and was rewritten an hour later (63dbf02) to keep rows
      -- per session. A database migrated in between kept the shared rows, which every instance's
      -- ledger batch locks until its commit (434 against 1,787 req/s over three instances, busy
      -- machine). Its totals stay right; this gives it the per-session form. Current databases
      -- already have the column and are left alone.
      DO $migration$
      BEGIN
        IF EXISTS (SELECT 1 FROM information_schema.columns
                   WHERE table_schema = current_schema() AND table_name = 'usage_daily' AND column_name = 'backend') THEN
          RETURN;
        END IF;
        -- First: no insert is inside the old trigger (whose ON CONFLICT names the old key) when the
        -- key changes; those that wait here run the new function after the commit.
        LOCK TABLE usage_records IN SHARE MODE;
        ALTER TABLE usage_daily ADD COLUMN backend integer NOT NULL DEFAULT 0;
        ALTER TABLE usage_daily ALTER COLUMN backend DROP DEFAULT;
        ALTER TABLE usage_daily DROP CONSTRAINT usage_daily_pkey;
        ALTER TABLE usage_daily ADD PRIMARY KEY (account_id, day, model, surface, backend);
        CREATE OR REPLACE FUNCTION usage_daily_add() RETURNS trigger LANGUAGE plpgsql AS ${USAGE_DAILY_ADD};
      END
      $migration$;
    `,
  },  {
    version: 8,
    name: 'account suspension, and accounts listed newest first',
    sql: `
      -- Set by the operator (admin API, CLI): the account's keys get 403 account_suspended and its
      -- web sign-in is refused. An UPDATE of accounts already moves credentials_version (migration
      -- 3), so every instance's key cache drops the account within keys.cacheTtlMs.
      ALTER TABLE accounts ADD COLUMN suspended_at timestamptz NULL;
      ALTER TABLE accounts ADD COLUMN suspended_reason text NULL;
      -- The admin listing's order and page cursor: without them a page sorted every account.
      CREATE INDEX accounts_created ON accounts (created_at, id);
      CREATE INDEX accounts_suspended ON accounts (created_at, id) WHERE suspended_at IS NOT NULL;
    `,
  },
  {
    version: 9,
    name: 'a credit limit per API key',
    sql: `
      -- Set by the account (web app) or the operator: the most credits the key may spend per
      -- window (day, month or lifetime), on top of the plan's rules. Both NULL: none.
      ALTER TABLE api_keys ADD COLUMN limit_credits bigint NULL;
      ALTER TABLE api_keys ADD COLUMN limit_window text NULL;
      -- A limit travels in the key cache: changing it moves credentials_version like a revocation.
      DROP TRIGGER api_keys_changed ON api_keys;
      CREATE TRIGGER api_keys_changed AFTER UPDATE OF account_id, hash, revoked_at, limit_credits, limit_window OR DELETE ON api_keys
        FOR EACH STATEMENT EXECUTE FUNCTION bump_credentials_version();
    `,
  },
  {
    version: 10,
    name: 'API key expiry and model allowlist',
    sql: `
      -- Set by the account (web app) or the operator. expires_at: the instant from which the key
      -- answers 401 api_key_expired; models: the catalog's model ids the key may call. NULL: never,
      -- and every model the plan allows.
      ALTER TABLE api_keys ADD COLUMN expires_at timestamptz NULL;
      ALTER TABLE api_keys ADD COLUMN models text[] NULL;
      -- Both travel in the key cache: changing them moves credentials_version like a revocation.
      DROP TRIGGER api_keys_changed ON api_keys;
      CREATE TRIGGER api_keys_changed AFTER UPDATE OF account_id, hash, revoked_at, limit_credits, limit_window, expires_at, models OR DELETE ON api_keys
        FOR EACH STATEMENT EXECUTE FUNCTION bump_credentials_version();
    `,
  },
  {
    version: 11,
    name: 'the provider that served each ledger record',
    sql: `
      -- The id of the provider whose answer was served and charged (a model's fallback when its own
      -- provider failed without doing the work), to reconcile the ledger with each provider's
      -- invoice. NULL: none was (a failure, charged nothing), or a record written before this — or
      -- by an instance of the previous version during a rolling upgrade, whose INSERT names no
      -- provider. Nullable without a default: no table rewrite. Not in usage_daily.
      ALTER TABLE usage_records ADD COLUMN provider text NULL;
    `,
  },
  {
    version: 12,
    name: 'the history of each prepaid balance',
    sql: `
      -- Every addition to a balance (the balance itself is a counter in the limiter's store): who
      -- made it (admin, cli, stripe, billing), how much, and the caller's reference. Unique per
      -- account, source and reference, so a retry that finds its credit made records it once.
      CREATE TABLE top_ups (
        id         text PRIMARY KEY,
        account_id text NOT NULL,
        credits    bigint NOT NULL,
        source     text NOT NULL,
        reference  text NULL,
        created_at timestamptz NOT NULL
      );
      CREATE INDEX top_ups_account ON top_ups(account_id, created_at);
      CREATE UNIQUE INDEX top_ups_reference ON top_ups(account_id, source, reference) WHERE reference IS NOT NULL;
    `,
  },
  {
    version: 13,
    name: 'secrets the deployment made for itself',
    sql: `
      -- A secret the operator left empty in config (web.sessionSecret), made once by whichever start
      -- came first and read by every later start and every other instance.
      CREATE TABLE shared_secrets (
        name       text PRIMARY KEY,
        value      text NOT NULL,
        created_at timestamptz NOT NULL
      );
    `,
  },
];

export const latestVersion: number = migrations.reduce((max, m) => Math.max(max, m.version), 0);

/** Any fixed 64-bit number shared by every Tollgate instance; advisory locks are per database. */
export const MIGRATION_LOCK_KEY = 0x746f6c6c67617465n; // 'tollgate'

async function currentVersion(client: pg.PoolClient): Promise<number> {
  const { rows } = await client.query<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations');
  return rows[0]?.v ?? 0;
}

/** Brings the database to the latest version; returns the versions it applied (empty when current). */
export async function migrate(
  pool: pg.Pool,
  list: readonly Migration[] = migrations,
  now: () => string = () => new Date().toISOString(),
): Promise<number[]> {
  list.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration #${i} has version ${m.version}, expected ${i + 1}`);
  });
  const known = list.length;
  const applied: number[] = [];
  const client = await pool.connect();
  try {
    for (;;) {
      await client.query('BEGIN');
      try {
        await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY.toString()]);
        // Under the lock: concurrent CREATE TABLE IF NOT EXISTS can otherwise fail on the catalog.
        await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
          version    integer PRIMARY KEY,
          name       text NOT NULL,
          applied_at timestamptz NOT NULL
        )`);
        const found = await currentVersion(client);
        if (found > known) throw new SchemaTooNewError(found, known);
        const next = list[found];
        if (next === undefined) {
          await client.query('COMMIT');
          return applied;
        }
        await client.query(next.sql);
        await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
          next.version,
          next.name,
          now(),
        ]);
        await client.query('COMMIT');
        applied.push(next.version);
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      }
    }
  } finally {
    client.release();
  }
}
