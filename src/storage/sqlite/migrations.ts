// Versioned schema for the SQLite store. Migrations are append-only: never edit a shipped entry,
// add the next version. Each one runs in its own IMMEDIATE transaction that re-reads the version,
// so two processes opening the same file at once cannot both apply it.
import type Database from 'better-sqlite3';
import { SchemaTooNewError, type Migration } from '../migration.js';

export { SchemaTooNewError, type Migration };

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'accounts, api keys, usage ledger',
    sql: `
      CREATE TABLE accounts (
        id                 TEXT PRIMARY KEY,
        -- stored lowercased, so UNIQUE is case-insensitive; NULLs never collide
        email              TEXT UNIQUE,
        plan               TEXT NOT NULL,
        balance            INTEGER NOT NULL DEFAULT 0,
        has_payment_method INTEGER NOT NULL DEFAULT 0,
        created_at         TEXT NOT NULL
      );

      CREATE TABLE api_keys (
        id           TEXT PRIMARY KEY,
        account_id   TEXT NOT NULL REFERENCES accounts(id),
        name         TEXT NOT NULL,
        prefix       TEXT NOT NULL,
        hash         TEXT NOT NULL UNIQUE,
        created_at   TEXT NOT NULL,
        revoked_at   TEXT,
        last_used_at TEXT
      );
      CREATE INDEX api_keys_account_id ON api_keys(account_id);

      -- Append-only (SPEC §7): daily totals are GROUP BY over this table, never hot UPDATE rows.
      CREATE TABLE usage_records (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id    TEXT NOT NULL,
        account_id    TEXT NOT NULL,
        key_id        TEXT,
        model         TEXT NOT NULL,
        surface       TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        credits       INTEGER NOT NULL,
        status        TEXT NOT NULL,
        http_status   INTEGER NOT NULL,
        -- canonical ISO 8601 UTC (…T…:…:….sssZ) so string order is time order
        created_at    TEXT NOT NULL,
        -- UTC 'YYYY-MM-DD' of created_at
        day           TEXT NOT NULL
      );
      CREATE INDEX usage_records_account_day ON usage_records(account_id, day);
      CREATE INDEX usage_records_day ON usage_records(day);
    `,
  },
  {
    version: 2,
    name: 'counter store; balances move out of accounts',
    sql: `
      -- Every number a limit is enforced on (storage/counters.ts). WITHOUT ROWID: the text key is
      -- the only lookup, so one b-tree instead of a rowid table plus a key index.
      CREATE TABLE counters (
        key        TEXT PRIMARY KEY,
        value      INTEGER NOT NULL,
        -- epoch ms after which sweep forgets the counter; NULL never
        expires_at INTEGER
      ) WITHOUT ROWID;
      CREATE INDEX counters_expires_at ON counters(expires_at);

      -- Live reservations: ops is JSON [[key, amount, settle, sign], …] (storage/counter-ops.ts).
      CREATE TABLE reservations (
        id         TEXT PRIMARY KEY,
        ops        TEXT NOT NULL,
        -- epoch ms; at or after it the amounts are given back
        expires_at INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX reservations_expires_at ON reservations(expires_at);

      -- Prepaid balances become never-expiring counters so that a charge is one atomic reserve with
      -- the other limits. Carried over, not dropped: they are money. The key must stay what
      -- core/balances.ts balanceKey() builds: 'tg:{<account id>}:balance'.
      INSERT INTO counters (key, value, expires_at)
        SELECT 'tg:{' || id || '}:balance', balance, NULL FROM accounts WHERE balance <> 0;
      ALTER TABLE accounts DROP COLUMN balance;
    `,
  },
  {
    version: 3,
    name: 'account password hashes for web sign-in',
    sql: `
      -- core/passwords.ts format (scrypt$N$r$p$salt$hash); NULL = the account cannot sign in.
      ALTER TABLE accounts ADD COLUMN password_hash TEXT NULL;
    `,
  },
  {
    version: 4,
    name: 'live reservations move to the server process',
    sql: `
      -- The embedded limiter holds live reservations in memory (storage/sqlite/counters.ts); the file
      -- keeps settled values only. Rows left here belong to a process that is gone: give their
      -- amounts back (ops is JSON [[key, amount, settle, sign], …]), as their TTL would have.
      UPDATE counters SET value = value - (
          SELECT SUM(json_extract(op.value, '$[1]')) FROM reservations r, json_each(r.ops) op
          WHERE json_extract(op.value, '$[0]') = counters.key)
        WHERE key IN (SELECT json_extract(op.value, '$[0]') FROM reservations r, json_each(r.ops) op);
      DROP TABLE reservations;
    `,
  },
  {
    version: 5,
    name: 'one server per database file',
    sql: `
      -- The server that holds the embedded limiter (storage/sqlite/lease.ts): at most one row.
      CREATE TABLE server_lease (
        id           INTEGER PRIMARY KEY CHECK (id = 1),
        owner        TEXT NOT NULL,
        host         TEXT NOT NULL,
        pid          INTEGER NOT NULL,
        -- epoch ms of the holder's last heartbeat
        heartbeat_at INTEGER NOT NULL
      );
    `,
  },
  {
    version: 6,
    name: 'a version number for cached credentials',
    sql: `
      -- Bumped by any change a cached key lookup depends on, from any connection or process (the
      -- CLI too), so the key cache (core/keys.ts) can keep entries until something changed instead
      -- of re-reading every key every keys.cacheTtlMs. Not bumped by last_used_at touches.
      CREATE TABLE credentials_version (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        v  INTEGER NOT NULL
      );
      INSERT INTO credentials_version (id, v) VALUES (1, 0);
      CREATE TRIGGER api_keys_changed AFTER UPDATE OF account_id, hash, revoked_at ON api_keys
        BEGIN UPDATE credentials_version SET v = v + 1; END;
      CREATE TRIGGER api_keys_deleted AFTER DELETE ON api_keys
        BEGIN UPDATE credentials_version SET v = v + 1; END;
      CREATE TRIGGER accounts_changed AFTER UPDATE ON accounts
        BEGIN UPDATE credentials_version SET v = v + 1; END;
      CREATE TRIGGER accounts_deleted AFTER DELETE ON accounts
        BEGIN UPDATE credentials_version SET v = v + 1; END;
    `,
  },
  {
    version: 7,
    name: 'pending log position',
    sql: `
      -- The highest line of the serving process's pending log (pending-log.ts) already applied to
      -- the tables, updated in the transaction that applies it: a replay after a crash skips it.
      CREATE TABLE pending_log_state (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        applied_seq INTEGER NOT NULL
      );
      INSERT INTO pending_log_state (id, applied_seq) VALUES (1, 0);
    `,
  },
  {
    version: 8,
    name: 'ledger indexes that serve its queries',
    sql: `
      -- Every ledger query filters on account_id and/or a created_at range; the day indexes served
      -- neither, so an account's usage scanned the whole table. The same two indexes as PostgreSQL.
      -- It builds both indexes once: about 2 s per million records on the 2-core bench machine.
      DROP INDEX usage_records_account_day;
      DROP INDEX usage_records_day;
      CREATE INDEX usage_records_account_created ON usage_records(account_id, created_at);
      CREATE INDEX usage_records_created ON usage_records(created_at);
    `,
  },
  {
    version: 9,
    name: 'ledger rows found by account through an index kept in batches',
    sql: `
      -- The (account_id, created_at) index put every new record on the last leaf page of its own
      -- account: about one b-tree page dirtied per record, written to the WAL and copied again by
      -- the checkpointer. The same entries now reach this table in batches (ledger.ts appends a
      -- catch-up write every few thousand records), where each page takes many of them: with 1,000
      -- accounts, 1.61 → 0.66 pages and 31.5 → 23.6 µs of apply per request (bench/sqlite-writes.mjs).
      -- A query reads the entries here plus the records past indexed_up_to, found by rowid.
      CREATE TABLE usage_records_by_account (
        account_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        record_id  INTEGER NOT NULL,
        PRIMARY KEY (account_id, created_at, record_id)
      ) WITHOUT ROWID;
      -- Every record with id <= indexed_up_to, and none above it, is in usage_records_by_account.
      -- It holds because record ids only grow (AUTOINCREMENT never reuses one): no record can
      -- arrive at or below indexed_up_to after the catch-up that passed it.
      CREATE TABLE usage_index_state (
        id            INTEGER PRIMARY KEY CHECK (id = 1),
        indexed_up_to INTEGER NOT NULL
      );
      INSERT INTO usage_index_state (id, indexed_up_to) VALUES (1, 0);
      -- Moving indexed_up_to forward indexes the records it passes, in the same statement.
      CREATE TRIGGER usage_index_catch_up AFTER UPDATE OF indexed_up_to ON usage_index_state
      BEGIN
        INSERT OR IGNORE INTO usage_records_by_account (account_id, created_at, record_id)
          SELECT account_id, created_at, id FROM usage_records
          WHERE id > OLD.indexed_up_to AND id <= NEW.indexed_up_to;
      END;
      UPDATE usage_index_state SET indexed_up_to = (SELECT COALESCE(MAX(id), 0) FROM usage_records);
      DROP INDEX usage_records_account_created;
    `,
  },
  {
    version: 10,
    name: 'counter changes a server makes after another took the file over',
    sql: `
      -- A server that stalled past its lease and resumes commits its in-flight requests' settlements
      -- straight to counters (writer.ts), where the new holder, which loaded those counters into
      -- memory already, would never see them. Each such change is also noted here, in the same
      -- transaction; the holder adds the rows to the counters it holds in memory on its heartbeat
      -- and deletes them (sqlite/counters.ts). Nearly always empty.
      CREATE TABLE late_counter_writes (
        id         INTEGER PRIMARY KEY,
        key        TEXT NOT NULL,
        -- the delta already added to counters.value
        amount     INTEGER NOT NULL,
        -- the write's expiry, already merged into counters.expires_at
        expires_at INTEGER
      );
      -- A counter loaded before the holder took the rows leaves their amounts out (they are added when taken).
      CREATE INDEX late_counter_writes_key ON late_counter_writes(key);
    `,
  },
  {
    version: 11,
    name: 'daily totals kept in batches with the by-account index',
    sql: `
      -- Daily totals were a GROUP BY over every record of the period, on the event loop: an account
      -- with 300,000 records today held /v1/usage (any key may call it) 390-500 ms. The totals of
      -- the records up to indexed_up_to are kept here instead, added by the same catch-up that
      -- indexes them (migration 9); a day-aligned query reads these rows plus the unindexed tail.
      CREATE TABLE usage_daily (
        account_id    TEXT NOT NULL,
        day           TEXT NOT NULL,
        model         TEXT NOT NULL,
        surface       TEXT NOT NULL,
        requests      INTEGER NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        credits       INTEGER NOT NULL,
        PRIMARY KEY (account_id, day, model, surface)
      ) WITHOUT ROWID;
      -- Every account's totals for a range of days (the admin API without an account).
      CREATE INDEX usage_daily_day ON usage_daily(day);
      DROP TRIGGER usage_index_catch_up;
      CREATE TRIGGER usage_index_catch_up AFTER UPDATE OF indexed_up_to ON usage_index_state
      BEGIN
        INSERT OR IGNORE INTO usage_records_by_account (account_id, created_at, record_id)
          SELECT account_id, created_at, id FROM usage_records
          WHERE id > OLD.indexed_up_to AND id <= NEW.indexed_up_to;
        INSERT INTO usage_daily (account_id, day, model, surface, requests, prompt_tokens, output_tokens, credits)
          SELECT account_id, day, model, surface, COUNT(*), SUM(prompt_tokens), SUM(output_tokens), SUM(credits)
          FROM usage_records WHERE id > OLD.indexed_up_to AND id <= NEW.indexed_up_to
          GROUP BY account_id, day, model, surface
          ON CONFLICT (account_id, day, model, surface) DO UPDATE SET
            requests = requests + excluded.requests,
            prompt_tokens = prompt_tokens + excluded.prompt_tokens,
            output_tokens = output_tokens + excluded.output_tokens,
            credits = credits + excluded.credits;
      END;
      INSERT INTO usage_daily (account_id, day, model, surface, requests, prompt_tokens, output_tokens, credits)
        SELECT account_id, day, model, surface, COUNT(*), SUM(prompt_tokens), SUM(output_tokens), SUM(credits)
        FROM usage_records WHERE id <= (SELECT indexed_up_to FROM usage_index_state WHERE id = 1)
        GROUP BY account_id, day, model, surface;
    `,
  },  {
    version: 12,
    name: 'account suspension, and accounts listed newest first',
    sql: `
      -- Set by the operator (admin API, CLI): the account's keys get 403 account_suspended and its
      -- web sign-in is refused. An UPDATE of accounts already moves credentials_version (migration
      -- 6), so every server's key cache drops the account within keys.cacheTtlMs.
      ALTER TABLE accounts ADD COLUMN suspended_at TEXT NULL;
      ALTER TABLE accounts ADD COLUMN suspended_reason TEXT NULL;
      -- The admin listing's order and page cursor: without them a page sorted every account.
      CREATE INDEX accounts_created ON accounts(created_at, id);
      CREATE INDEX accounts_suspended ON accounts(created_at, id) WHERE suspended_at IS NOT NULL;
    `,
  },
  {
    version: 13,
    name: 'a credit limit per API key',
    sql: `
      -- Set by the account (web app) or the operator: the most credits the key may spend per
      -- window (day, month or lifetime), on top of the plan's rules. Both NULL: none.
      ALTER TABLE api_keys ADD COLUMN limit_credits INTEGER NULL;
      ALTER TABLE api_keys ADD COLUMN limit_window TEXT NULL;
      -- A limit travels in the key cache: changing it moves credentials_version like a revocation.
      DROP TRIGGER api_keys_changed;
      CREATE TRIGGER api_keys_changed AFTER UPDATE OF account_id, hash, revoked_at, limit_credits, limit_window ON api_keys
        BEGIN UPDATE credentials_version SET v = v + 1; END;
    `,
  },
  {
    version: 14,
    name: 'API key expiry and model allowlist',
    sql: `
      -- Set by the account (web app) or the operator. expires_at: the instant (ISO 8601 UTC) from
      -- which the key answers 401 api_key_expired; models: a JSON array of the catalog's model ids
      -- the key may call. NULL: never, and every model the plan allows.
      ALTER TABLE api_keys ADD COLUMN expires_at TEXT NULL;
      ALTER TABLE api_keys ADD COLUMN models TEXT NULL;
      -- Both travel in the key cache: changing them moves credentials_version like a revocation.
      DROP TRIGGER api_keys_changed;
      CREATE TRIGGER api_keys_changed AFTER UPDATE OF account_id, hash, revoked_at, limit_credits, limit_window, expires_at, models ON api_keys
        BEGIN UPDATE credentials_version SET v = v + 1; END;
    `,
  },
  {
    version: 15,
    name: 'the provider that served each ledger record',
    sql: `
      -- The id of the provider whose answer was served and charged (a model's fallback when its own
      -- provider failed without doing the work), to reconcile the ledger with each provider's
      -- invoice. NULL: none was (a failure, charged nothing), or a record written before this.
      -- Not in usage_daily: the daily totals stay per model and surface.
      ALTER TABLE usage_records ADD COLUMN provider TEXT NULL;
    `,
  },
  {
    version: 16,
    name: 'the history of each prepaid balance',
    sql: `
      -- Every addition to a balance (the balance itself is a counter in the limiter's store): who
      -- made it (admin, cli, stripe, billing), how much, and the caller's reference. Unique per
      -- account, source and reference, so a retry that finds its credit made records it once.
      CREATE TABLE top_ups (
        id         TEXT PRIMARY KEY,
        account_id TEXT NOT NULL,
        credits    INTEGER NOT NULL,
        source     TEXT NOT NULL,
        reference  TEXT NULL,
        created_at TEXT NOT NULL
      );
      CREATE INDEX top_ups_account ON top_ups(account_id, created_at);
      CREATE UNIQUE INDEX top_ups_reference ON top_ups(account_id, source, reference) WHERE reference IS NOT NULL;
    `,
  },
  {
    version: 17,
    name: 'secrets the deployment made for itself',
    sql: `
      -- A secret the operator left empty in config (web.sessionSecret), made once by whichever start
      -- came first and read by every later start and every other instance.
      CREATE TABLE shared_secrets (
        name       TEXT PRIMARY KEY,
        value      TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
    `,
  },
];

/**
 * Migrations that shipped and were then taken out of the list, by the version they held: a file
 * that recorded one has that version number without the migration now under it, and the next
 * migration that builds on it fails (9's trigger, dropped by 11: "no such trigger"), so the file no
 * longer opened. Each is undone and replaced by the version's current migration before migrating.
 */
const withdrawn: readonly { version: number; name: string; undo: string }[] = [
  {
    // e2f3b87 → 9b2aa0e (2026-12-04): CREATE UNIQUE INDEX usage_records_request ON
    // usage_records(request_id). The ledger dedupes drained receipts by lookup instead.
    version: 9,
    name: 'one ledger record per request',
    undo: 'DROP INDEX IF EXISTS usage_records_request;',
  },
];

export const latestVersion: number = migrations.reduce((max, m) => Math.max(max, m.version), 0);

/** The version `db` is at (0 for a new file) when migrate() would change it, else null. */
export function pendingFrom(db: Database.Database): number | null {
  const tracked = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
  const found = tracked === undefined ? 0 : currentVersion(db);
  return found < latestVersion ? found : null;
}

function currentVersion(db: Database.Database): number {
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
  return row.v ?? 0;
}

/** Brings `db` to the latest version; returns the versions it applied (empty when already current). */
export function migrate(
  db: Database.Database,
  list: readonly Migration[] = migrations,
  now: () => string = () => new Date().toISOString(),
): number[] {
  list.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration #${i} has version ${m.version}, expected ${i + 1}`);
  });
  const known = list.length;

  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
  )`);
  const recorded = db.prepare('SELECT 1 FROM schema_migrations WHERE version = ? AND name = ?');
  const replace = db.prepare('UPDATE schema_migrations SET name = ?, applied_at = ? WHERE version = ?');
  const applied: number[] = [];
  for (const w of withdrawn) {
    const current = list[w.version - 1];
    // Read first, so opening a current file takes no write lock (a CLI beside a busy server).
    if (current === undefined || recorded.get(w.version, w.name) === undefined) continue;
    // The version's current migration is applied in its place, not left to the loop below: a
    // start that failed on such a file has recorded the versions after it already.
    db.transaction(() => {
      if (recorded.get(w.version, w.name) === undefined) return;
      db.exec(w.undo);
      db.exec(current.sql);
      replace.run(current.name, now(), w.version);
      applied.push(w.version);
    }).immediate();
  }
  const found = currentVersion(db);
  if (found > known) throw new SchemaTooNewError(found, known);

  const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  for (const m of list) {
    if (m.version <= found) continue;
    const apply = db.transaction(() => {
      if (currentVersion(db) >= m.version) return; // another process got here first
      db.exec(m.sql);
      record.run(m.version, m.name, now());
      applied.push(m.version);
    });
    apply.immediate();
  }
  return applied;
}
