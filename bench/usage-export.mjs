#!/usr/bin/env node
// Reading a whole ledger range page by page (Ledger.page, storage/cursor.ts), as the admin API's
// `before=<next>`, `tollgate usage --records` and the web app's CSV export do: time per page and
// per record, and the CLI's export end to end with its peak memory, against an account with
// --records records among --others of other accounts (bench/README.md).
//
//   npm run build && node bench/usage-export.mjs [--records 200000] [--others 200000] [--page 10000]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openSqliteStorage } from '../dist/src/storage/sqlite/index.js';
import { CLI } from './lib/proc.mjs';

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '200000' },
    others: { type: 'string', default: '200000' },
    page: { type: 'string', default: '10000' },
  },
  strict: true,
});
const RECORDS = Number(args.records);
const OTHERS = Number(args.others);
const PAGE = Number(args.page);

const dir = mkdtempSync(join(os.tmpdir(), 'tollgate-usage-export-'));
const url = `sqlite:${join(dir, 'tollgate.db')}`;
const config = join(dir, 'tollgate.yaml');
writeFileSync(config, `storage: { url: "${url}" }\nadmin: { token: bench }\n`);
try {
  const storage = openSqliteStorage(url);
  const account = 'acct_export';
  await storage.accounts.create({ id: account, email: null, plan: 'free', createdAt: new Date().toISOString() });
  const start = Date.parse('2026-11-01T00:00:00.000Z');
  // Five records per millisecond: pages end among records of the same time.
  const record = (i, accountId) => ({
    requestId: `${accountId}-${i}`, accountId, keyId: null, model: 'gpt-4o-mini', surface: 'api', promptTokens: 12, outputTokens: 34,
    credits: 56, status: 'ok', httpStatus: 200, createdAt: new Date(start + Math.floor(i / 5)).toISOString(), provider: 'openai',
  });
  for (let i = 0; i < Math.max(RECORDS, OTHERS); i += 5000) {
    const batch = [];
    for (let j = i; j < Math.min(i + 5000, Math.max(RECORDS, OTHERS)); j++) {
      if (j < RECORDS) batch.push(storage.ledger.append(record(j, account)));
      if (j < OTHERS) batch.push(storage.ledger.append(record(j, `acct_other${j % 1000}`)));
    }
    await Promise.all(batch);
  }

  const walk = async (q) => {
    const times = [];
    let seen = 0;
    let before;
    const t0 = performance.now();
    do {
      const t = performance.now();
      const page = await storage.ledger.page({ ...q, limit: PAGE, ...(before !== undefined && { before }) });
      times.push(performance.now() - t);
      seen += page.records.length;
      before = page.next ?? undefined;
    } while (before !== undefined);
    const total = performance.now() - t0;
    times.sort((a, b) => a - b);
    return { seen, pages: times.length, total, median: times[Math.floor(times.length / 2)], max: times.at(-1) };
  };
  const rows = [];
  for (const [name, q] of [['one account', { accountId: account }], ['every account', {}]]) {
    const r = await walk(q);
    rows.push(`| ${name} | ${r.seen.toLocaleString('en-US')} | ${r.pages} | ${r.median.toFixed(1)} | ${r.max.toFixed(1)} | ${((r.total * 1000) / r.seen).toFixed(2)} |`);
  }
  await storage.close();

  // The CLI's export of the account, end to end: its own process, its peak memory.
  const t = performance.now();
  const out = execFileSync('/usr/bin/time', ['-f', '%M', process.execPath, CLI, 'usage', account, '--records', '--csv', '--config', config], { maxBuffer: 1 << 30, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const seconds = (performance.now() - t) / 1000;
  const lines = out.split('\r\n').length - 2;
  // /usr/bin/time writes the peak RSS (KB) last on stderr: run again to read it without the output.
  const peak = execFileSync('/bin/sh', ['-c', `/usr/bin/time -f %M "${process.execPath}" "${CLI}" usage ${account} --records --csv --config "${config}" 2>&1 >/dev/null | tail -1`], { encoding: 'utf8' }).trim();

  console.log(`Ledger paging — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, node ${process.version}, ${os.cpus().length} cores; ${RECORDS.toLocaleString('en-US')} records of the account among ${OTHERS.toLocaleString('en-US')} of 1,000 others, pages of ${PAGE.toLocaleString('en-US')}`);
  console.log('');
  console.log('| range | records | pages | median page ms | slowest page ms | µs per record |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const r of rows) console.log(r);
  console.log('');
  console.log(`\`tollgate usage ${'ACCOUNT'} --records --csv\`: ${lines.toLocaleString('en-US')} lines in ${seconds.toFixed(1)} s (${Math.round(lines / seconds).toLocaleString('en-US')} records/s), peak RSS ${Math.round(Number(peak) / 1024)} MB`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
