#!/usr/bin/env node
// A/B of two Tollgate builds, interleaved: how a change moves the CPU a request costs, which is the
// figure that survives this VM's noise (req/s moves ±20 % between runs; two builds measured side
// by side, alternating, move together).
//
//   git worktree add /tmp/base <rev> && ln -s "$PWD/node_modules" /tmp/base/ && (cd /tmp/base && npx tsc -p .)
//   npm run build && node bench/ab.mjs --a /tmp/base/dist/cli/tollgate.js [--b dist/cli/tollgate.js]
//        [--stream] [--rate 1100] [--rounds 4] [--accounts 1000] [--a-node-args '…'] [--b-node-args '…']
//        [--prompt short|conversation]
//        [--chunks N] [--upstream-model NAME]   (the fake upstream's stream length and model name: lib/upstream.mjs)
//
// --prompt conversation sends a chat client's tenth turn (conversationChatBody in lib/load.mjs:
// ~9 KB, ~2,000 prompt tokens, the last question unique per request) instead of 'Say hello.'.
//
// Both run with the node flags of `npm start` (SERVE_FLAGS); --a-node-args / --b-node-args come
// after them, and for a flag given twice V8 keeps the last.
// The same build twice with different node flags compares a runtime setting (--a dist/cli/tollgate.js
// --b-node-args=--v8-pool-size=1; the `=` form, since the value starts with dashes).
//
// Both servers run pinned to core 1 (the load generator and the fake upstream on core 0), each with
// its own SQLite file and the free tier over --accounts accounts with a key each, warmed up at
// saturation. Each round, per build (order alternating): a fixed rate (open loop, 1 s warm-up + 6 s)
// then saturation (50 connections, 1 s + 5 s). Prints CPU ms per request (utime+stime ÷ requests)
// per round and the medians.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchChatBody, closedLoop, conversationChatBody, openLoop } from './lib/load.mjs';
import { CLI, LIB, cleanup, cpuOf, freePort, hasTaskset, installCleanupHandlers, pinSelf, spawnNode, trackTempDir, waitReady } from './lib/proc.mjs';
import { SERVE_FLAGS, createAccounts, nodeArgs, writeTollgateConfig } from './lib/tollgate.mjs';

const { values: args } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string', default: CLI },
    stream: { type: 'boolean', default: false },
    rate: { type: 'string', default: '1100' },
    rounds: { type: 'string', default: '4' },
    accounts: { type: 'string', default: '1000' },
    prompt: { type: 'string', default: 'short' },
    chunks: { type: 'string', default: '5' },
    'upstream-model': { type: 'string', default: 'gpt-4o-mini' },
    'a-node-args': { type: 'string', default: '' },
    'b-node-args': { type: 'string', default: '' },
  },
  strict: true,
});
if (!args.a) {
  console.error('usage: node bench/ab.mjs --a <base dist/cli/tollgate.js> [--b <cli>] [--stream] [--rate N] [--rounds N] [--accounts N]');
  process.exit(2);
}
const RATE = Number(args.rate);
if (args.prompt !== 'short' && args.prompt !== 'conversation') {
  console.error('--prompt: short or conversation');
  process.exit(2);
}
const body = args.prompt === 'conversation' ? conversationChatBody(args.stream) : benchChatBody(args.stream);
const median = (xs) => xs.slice().sort((x, y) => x - y)[xs.length >> 1];

installCleanupHandlers();
const pin = hasTaskset(false);
if (pin) pinSelf(0);
const upstream = await spawnNode([join(LIB, 'upstream.mjs'), '--chunks', args.chunks, '--model', args['upstream-model']], { core: 0, pin, waitJson: true });
const upstreamUrl = `http://127.0.0.1:${upstream.info.port}`;

const servers = {};
for (const [name, cli, flags] of [['A', resolve(args.a), nodeArgs(args['a-node-args'])], ['B', resolve(args.b), nodeArgs(args['b-node-args'])]]) {
  const tmp = trackTempDir(mkdtempSync(join(os.tmpdir(), 'tollgate-ab-')));
  const cfg = join(tmp, 'tollgate.yaml');
  writeTollgateConfig(cfg, { storageUrl: `sqlite:${join(tmp, 'tollgate.db')}`, upstreamUrl });
  const port = await freePort();
  const tg = await spawnNode([...SERVE_FLAGS, ...flags, cli, 'serve', '--config', cfg, '--port', String(port)], { core: 1, pin, stdout: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  await waitReady(`${url}/readyz`, { child: tg.child });
  const accounts = await createAccounts(url, Number(args.accounts));
  const headers = accounts.map((a) => ({ 'content-type': 'application/json', authorization: `Bearer ${a.secret}` }));
  await closedLoop(url, { headers, body, seconds: 3, warmup: 1, concurrency: 50 }); // JIT and caches
  servers[name] = { cli: [...flags, cli].join(' '), url, pid: tg.child.pid, headers, rate: [], sat: [], p99: [] };
}

for (let round = 0; round < Number(args.rounds); round++) {
  for (const name of round % 2 ? ['B', 'A'] : ['A', 'B']) {
    const s = servers[name];
    let c0 = cpuOf(s.pid);
    const r = await openLoop(s.url, { headers: s.headers, body, rate: RATE, seconds: 6, warmup: 1 });
    const rateCpu = (1000 * (cpuOf(s.pid) - c0)) / r.total;
    c0 = cpuOf(s.pid);
    const q = await closedLoop(s.url, { headers: s.headers, body, seconds: 5, warmup: 1, concurrency: 50 });
    const satCpu = (1000 * (cpuOf(s.pid) - c0)) / q.total;
    s.rate.push(rateCpu);
    s.p99.push(r.p99);
    s.sat.push(satCpu);
    console.log(
      `round ${round} ${name}: ${RATE}/s p50 ${r.p50.toFixed(2)} p99 ${r.p99.toFixed(2)} ms, ${rateCpu.toFixed(3)} CPU ms/req | saturation ${Math.round(q.rps)} req/s, ${satCpu.toFixed(3)} CPU ms/req`,
    );
  }
}
const { A, B } = servers;
console.log(`\n${args.stream ? 'stream' : 'non-stream'}, CPU ms per request, median of ${args.rounds} rounds:`);
for (const [n, x] of [['A', A], ['B', B]]) {
  console.log(`${n} ${x.cli}: fixed rate ${median(x.rate).toFixed(3)}, saturation ${median(x.sat).toFixed(3)}; fixed-rate p99 per round ${x.p99.map((v) => v.toFixed(1)).join(' / ')} ms`);
}
const pct = (b, a) => `${b <= a ? '−' : '+'}${Math.abs((100 * (b - a)) / a).toFixed(1)}%`;
console.log(`B vs A: fixed rate ${pct(median(B.rate), median(A.rate))}, saturation ${pct(median(B.sat), median(A.sat))}`);
await cleanup();
process.exit(0);
