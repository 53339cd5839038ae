// What a day's totals cost to read (`/v1/usage`, the web app, the admin API): a ledger of
// --records records over 1,000 accounts, one of which has a tenth of them, all on one day. Times the
// ledger's daily() for that account's day and for every account's day, in this build or another
// (--root). SQLite (the default): the by-account catch-up 1,000 records behind (the unindexed tail).
// --postgres: a throwaway PostgreSQL server (bench/lib/postgres.mjs), the records inserted in one
// statement; the time is the database's answer as the gateway awaits it.
//
//   npm run build && node bench/daily-totals.mjs [--records 3000000] [--postgres] [--root <another checkout with dist/>]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from './lib/proc.mjs';
import { startPostgres } from './lib/postgres.mjs';

const { values: args } = parseArgs({
  options: { records: { type: 'string', default: '3000000' }, root: { type: 'string', default: ROOT }, postgres: { type: 'boolean', default: false } },
});
const N = Number(args.records);
const dir = mkdtempSync(join(tmpdir(), 'tollgate-daily-'));
let storage;
let server;
if (args.postgres) {
  server = await startPostgres(dir);
  const { openPostgresStorage } = await import(join(resolve(args.root), 'dist/src/storage/postgres/index.js'));
  storage = await openPostgresStorage(server.url);
  await server.client.query(
    `INSERT INTO usage_records (request_id, account_id, key_id, model, surface, prompt_tokens, output_tokens, credits, status, http_status, created_at)
     SELECT 'r' || i, CASE WHEN i % 10 = 0 THEN 'acc_big' ELSE 'acc_' || (i % 1000) END, NULL,
       CASE WHEN i % 3 = 0 THEN 'gpt-4.1' ELSE 'gpt-4o-mini' END, 'api', 10, 5, 12, 'ok', 200,
       timestamptz '2026-12-05T00:00:00Z' + (i * 86399.0 / $1) * interval '1 second'
     FROM generate_series(0, $1 - 1) AS i`,
    [N],
  );
  await server.client.query('ANALYZE');
} else {
  const { openSqliteStorage, sqliteDatabaseOf } = await import(join(resolve(args.root), 'dist/src/storage/sqlite/index.js'));
  storage = openSqliteStorage(`sqlite:${join(dir, 'tollgate.db')}`);
  const { db } = sqliteDatabaseOf(storage);
  const insert = db.prepare(`INSERT INTO usage_records (request_id, account_id, key_id, model, surface, prompt_tokens,
    output_tokens, credits, status, http_status, created_at, day) VALUES (?, ?, NULL, ?, 'api', 10, 5, 12, 'ok', 200, ?, '2026-12-05')`);
  db.transaction(() => {
    for (let i = 0; i < N; i++) {
      const hour = String(Math.floor((i * 24) / N)).padStart(2, '0');
      insert.run(`r${i}`, i % 10 === 0 ? 'acc_big' : `acc_${i % 1000}`, i % 3 ? 'gpt-4o-mini' : 'gpt-4.1', `2026-12-05T${hour}:00:00.000Z`);
    }
  })();
  // The catch-up, as the server runs it, up to 1,000 records before the last.
  db.prepare('UPDATE usage_index_state SET indexed_up_to = (SELECT MAX(id) FROM usage_records) - 1000').run();
}
const day = { from: '2026-12-05', to: '2026-12-06' };
const times = [];
for (let i = 0; i < 7; i++) {
  const t = performance.now();
  await storage.ledger.daily({ accountId: 'acc_big', ...day });
  times.push(performance.now() - t);
}
times.sort((a, b) => a - b);
const t = performance.now();
const rows = await storage.ledger.daily({ ...day, limit: 10_000 });
const all = performance.now() - t;
const requests = rows.reduce((sum, r) => sum + r.requests, 0);
console.log(
  `${args.root} (${args.postgres ? `PostgreSQL ${server.version}` : 'SQLite'}): ${N} records (${N / 10} of one account): its day ${times[3].toFixed(2)} ms (median of 7), ` +
    `every account's day ${all.toFixed(1)} ms (${rows.length} rows, ${requests} requests)`,
);
await storage.close();
if (server) {
  await server.client.end();
  process.kill(server.pid, 'SIGINT');
  for (let i = 0; i < 100 && server.child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
}
rmSync(dir, { recursive: true, force: true });
