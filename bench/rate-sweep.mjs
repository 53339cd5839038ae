#!/usr/bin/env node
// Latency added by Tollgate over the bare proxy across fixed request rates, not only at the one
// rate `npm run bench` measures (half of Tollgate's saturation): the figure an operator reads
// against their own load. Same setup as bench/run.mjs (fake upstream and this load generator on
// core 0; the bare proxy and Tollgate on core 1, the one not measured stopped with SIGSTOP;
// Tollgate with the free tier over --accounts accounts, requests spread over --active of them).
//
//   npm run build && node bench/rate-sweep.mjs [--rates 400,800,1200,1600] [--rounds 3] [--seconds 6]
//                                              [--stream] [--accounts 10000] [--active 1000] [--no-pin] [--node-args=…]
//
// Each round measures every rate, low to high, for both servers (order alternating by round): an
// open loop (latency from each request's scheduled start), 1 s warm-up + --seconds measured.
// Prints a markdown table of medians across rounds, with the CPU each server spent per request at
// that rate (utime+stime ÷ requests: at low rates it is far above the saturation figure, for both).
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchChatBody, closedLoop, fixed, median, openLoop } from './lib/load.mjs';
import { SERVE_FLAGS, createAccounts, nodeArgs, writeTollgateConfig } from './lib/tollgate.mjs';
import { CLI, LIB, cleanup, focus, freePort, hasTaskset, installCleanupHandlers, pinSelf, quiesce, spawnNode, thaw, trackTempDir, waitReady, withCpu } from './lib/proc.mjs';

const { values: args } = parseArgs({
  options: {
    rates: { type: 'string', default: '400,800,1200,1600' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '6' },
    stream: { type: 'boolean', default: false },
    accounts: { type: 'string', default: '10000' },
    active: { type: 'string', default: '1000' },
    'no-pin': { type: 'boolean', default: false },
    // Extra node flags for Tollgate only, after SERVE_FLAGS (e.g. --node-args="--cpu-prof --import=./bench/lib/loop-watch.mjs").
    'node-args': { type: 'string', default: '' },
  },
  strict: true,
});
const RATES = args.rates.split(',').map(Number);
if (RATES.some((r) => !(r > 0))) throw new Error(`--rates: positive numbers separated by commas, got ${args.rates}`);
const ROUNDS = Number(args.rounds);
const SECONDS = Number(args.seconds);
const ACCOUNTS = Number(args.accounts);
const ACTIVE = Math.min(Number(args.active), ACCOUNTS);
const body = benchChatBody(args.stream);
const log = (m) => process.stderr.write(`[sweep] ${m}\n`);
const f = fixed;

installCleanupHandlers();
const pin = hasTaskset(args['no-pin']);
if (pin) pinSelf(0);
const upstream = await spawnNode([join(LIB, 'upstream.mjs')], { core: 0, pin, waitJson: true });
const upstreamUrl = `http://127.0.0.1:${upstream.info.port}`;
const proxy = await spawnNode([...SERVE_FLAGS, join(LIB, 'proxy.mjs'), upstreamUrl], { core: 1, pin, waitJson: true });

const tmp = trackTempDir(mkdtempSync(join(os.tmpdir(), 'tollgate-sweep-')));
const cfg = join(tmp, 'tollgate.yaml');
writeTollgateConfig(cfg, { storageUrl: `sqlite:${join(tmp, 'tollgate.db')}`, upstreamUrl });
const port = await freePort();
const tg = await spawnNode([...SERVE_FLAGS, ...nodeArgs(args['node-args']), CLI, 'serve', '--config', cfg, '--port', String(port)], { core: 1, pin, stdout: 'ignore' });
const tgUrl = `http://127.0.0.1:${port}`;
await waitReady(`${tgUrl}/readyz`, { child: tg.child });
const accounts = await createAccounts(tgUrl, ACCOUNTS);
const stride = Math.max(1, Math.floor(ACCOUNTS / ACTIVE));
const active = Array.from({ length: ACTIVE }, (_, i) => accounts[i * stride]);

const json = { 'content-type': 'application/json' };
const targets = [
  { key: 'proxy', url: `http://127.0.0.1:${proxy.info.port}`, pid: proxy.child.pid, headers: [json] },
  { key: 'tollgate', url: tgUrl, pid: tg.child.pid, headers: active.map((a) => ({ ...json, authorization: `Bearer ${a.secret}` })) },
];

// Warm-up at saturation (JIT, caches), which also gives the rates a scale: Tollgate's capacity.
const saturation = {};
for (const t of targets) {
  focus(t, targets);
  await quiesce(targets);
  saturation[t.key] = (await closedLoop(t.url, { headers: t.headers, body, seconds: 5, warmup: 2, concurrency: 50 })).rps;
  log(`${t.key}: saturation ${f(saturation[t.key], 0)} req/s`);
}

const rows = []; // { round, rate, target, p50, p99, lateP99, cpuPct, cpuMsPerReq, bad }
for (let round = 0; round < ROUNDS; round++) {
  for (const rate of RATES) {
    for (const t of round % 2 ? [...targets].reverse() : targets) {
      focus(t, targets);
      await quiesce(targets);
      const r = await withCpu(t, () => openLoop(t.url, { headers: t.headers, body, rate, seconds: SECONDS, warmup: 1 }));
      const bad = Object.values(r.byStatus).reduce((a, n) => a + n, 0);
      rows.push({ round, rate, target: t.key, p50: r.p50, p99: r.p99, lateP99: r.lateP99, cpuPct: r.cpuPct, cpuMsPerReq: r.cpuMsPerReq, bad });
      log(`round ${round + 1} ${rate}/s ${t.key}: p50 ${f(r.p50, 2)} p99 ${f(r.p99, 2)} ms, CPU ${f(r.cpuPct, 0)}% ${f(r.cpuMsPerReq, 3)} ms/req, non-200 ${bad}`);
    }
  }
}
thaw(targets);

const of = (rate, target, field) => rows.filter((x) => x.rate === rate && x.target === target).map((x) => x[field]);
const added = (rate) => of(rate, 'tollgate', 'p99').map((v, i) => v - of(rate, 'proxy', 'p99')[i]);
const lines = [
  `## Latency added across rates (${args.stream ? 'stream' : 'non-stream'}) — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
  '',
  `Node ${process.version}, ${os.cpus().length} cores. ${pin ? 'Pinned: load generator + fake upstream on core 0, the two servers on core 1, the one not measured stopped.' : 'Not pinned.'} ` +
    `Tollgate: SQLite, free tier, ${ACCOUNTS.toLocaleString('en-US')} accounts, requests over ${ACTIVE.toLocaleString('en-US')}. ` +
    `Saturation after warm-up: bare proxy ${f(saturation.proxy, 0)} req/s, Tollgate ${f(saturation.tollgate, 0)} req/s. ` +
    `${ROUNDS} rounds of ${SECONDS} s per rate and server; medians across rounds ("p99 added" is the median of each round's difference).`,
  '',
  '| rate req/s | % of Tollgate saturation | proxy p50 / p99 ms | Tollgate p50 / p99 ms | p99 added ms | p99 added per round | CPU % proxy / Tollgate | CPU ms/req proxy / Tollgate | generator late p99 ms | non-200 |',
  '|---:|---:|---|---|---:|---|---|---|---:|---:|',
  ...RATES.map((rate) => {
    const m = (target, field, d) => f(median(of(rate, target, field)), d);
    return `| ${rate} | ${f((100 * rate) / saturation.tollgate, 0)}% | ${m('proxy', 'p50', 2)} / ${m('proxy', 'p99', 2)} | ${m('tollgate', 'p50', 2)} / ${m('tollgate', 'p99', 2)} | ${f(median(added(rate)), 2)} | ${added(rate).map((v) => f(v, 1)).join(' / ')} | ${m('proxy', 'cpuPct', 0)} / ${m('tollgate', 'cpuPct', 0)} | ${m('proxy', 'cpuMsPerReq', 3)} / ${m('tollgate', 'cpuMsPerReq', 3)} | ${f(median(rows.filter((x) => x.rate === rate).map((x) => x.lateP99)), 2)} | ${rows.filter((x) => x.rate === rate).reduce((a, x) => a + x.bad, 0)} |`;
  }),
];
console.log(lines.join('\n'));
await cleanup();
process.exit(0);
