#!/usr/bin/env node
// What the serving process's durable writes cost SQLite once the pending log applies them: b-tree
// pages written (WAL frames) and time per request, for the real ledger and counter stores and their
// real statements — the figures behind schema and statement choices (bench/README.md). Each request
// is what the free tier writes: one ledger row and one settlement of an account's day counter.
//
//   npm run build && node bench/sqlite-writes.mjs [--ledger 100000] [--accounts 1000] [--per-apply 55] [--applies 400]
//     [--index-every 4096]
//
// --per-apply is the requests one apply takes: ~55 at 1,100 req/s with the default 50 ms, ~150 at
// saturation. The ledger is preloaded with --ledger rows first, spread over the same accounts.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openSqliteStorage, sqliteDatabaseOf } from '../dist/src/storage/sqlite/index.js';
import { openSqliteCounterStore } from '../dist/src/storage/sqlite/counters.js';
import { writerFor } from '../dist/src/storage/sqlite/writer.js';

const { values: args } = parseArgs({
  options: {
    ledger: { type: 'string', default: '100000' },
    accounts: { type: 'string', default: '1000' },
    'per-apply': { type: 'string', default: '55' },
    applies: { type: 'string', default: '400' },
    // Records between two catch-ups of the ledger's by-account index (SqliteLedger's indexEvery).
    'index-every': { type: 'string' },
  },
  strict: true,
});
const PER = Number(args['per-apply']);
const APPLIES = Number(args.applies);
const ACCOUNTS = Array.from({ length: Number(args.accounts) }, (_, i) => `acc_${crypto.randomUUID().slice(0, 18)}${i}`);

const dir = mkdtempSync(join(os.tmpdir(), 'tollgate-sqlite-writes-'));
const url = `sqlite:${join(dir, 'tollgate.db')}`;
const storage = openSqliteStorage(url, args['index-every'] ? { ledger: { indexEvery: Number(args['index-every']) } } : {});
const counters = openSqliteCounterStore(url, storage);
const { db, path } = sqliteDatabaseOf(storage);
const writer = writerFor(db);
// The pending log on, its timer out of the way: this script applies by hand (writer.sync()).
await counters.claimServer({ applyEveryMs: 2 ** 31 - 1 });

const now = Date.parse('2026-11-25T12:00:00Z');
const endOfDay = Date.parse('2026-11-26T00:00:00Z') + 3_600_000;
let n = 0;
async function request() {
  const account = ACCOUNTS[Math.floor(Math.random() * ACCOUNTS.length)];
  const id = `req_${++n}`;
  await counters.reserve(id, [{ key: `tg:{${account}}:api_token:2026-11-25`, amount: 20, max: 50_000, settle: 'actual', expiresAt: endOfDay }], now + 60_000, now);
  await Promise.all([
    counters.settle(id, 12),
    storage.ledger.append({
      requestId: crypto.randomUUID(), accountId: account, keyId: `key_${account}`, model: 'gpt-4o-mini', surface: 'api',
      promptTokens: 12, outputTokens: 7, credits: 12, status: 'ok', httpStatus: 200, createdAt: new Date(now + n).toISOString(), provider: 'openai',
    }),
  ]);
}
const turn = (count) => Promise.all(Array.from({ length: count }, request));

for (let left = Number(args.ledger); left > 0; left -= 1000) {
  await turn(Math.min(1000, left));
  writer.sync();
}
db.pragma('wal_checkpoint(TRUNCATE)');

const frameBytes = db.pragma('page_size', { simple: true }) + 24;
const wal0 = statSync(`${path}-wal`).size;
let applyNs = 0n;
for (let i = 0; i < APPLIES; i++) {
  await turn(PER);
  const t0 = process.hrtime.bigint();
  writer.sync();
  applyNs += process.hrtime.bigint() - t0;
}
const requests = PER * APPLIES;
const pages = (statSync(`${path}-wal`).size - wal0) / frameBytes;
console.log(
  `${requests} requests, ${PER} per apply, ledger ${args.ledger} rows before, ${ACCOUNTS.length} accounts: ` +
    `${(pages / requests).toFixed(2)} pages written per request, ${(Number(applyNs) / 1000 / requests).toFixed(1)} µs of apply per request`,
);
await counters.close();
await storage.close();
rmSync(dir, { recursive: true, force: true });
