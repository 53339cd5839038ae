#!/usr/bin/env node
// How much of each request outlives V8's young generation: Tollgate (or the bare proxy) at a fixed
// rate, run with `--trace-gc-nvp`, and the bytes its scavenges promoted to the old generation per
// request. What is promoted is only reclaimed by full GCs, and it makes every scavenge slower: the
// figure behind a latency tail that `loop-watch.mjs` shows as GC pauses. Bisect a build with it.
//
//   npm run build && node bench/promotion.mjs [--stream] [--rate 800 | --saturate] [--seconds 20] [--accounts 1000]
//                                             [--target tollgate|proxy] [--cli dist/cli/tollgate.js]
//                                             [--node-args=…] [--keep-trace FILE]
//
// --saturate keeps 50 connections busy instead of a fixed rate (the memory run of run.mjs), and
// the RSS and V8's heap are printed at the start and the end of the window, to tell the heap's
// growth from the rest of the process's.
//
// Pinned like the other benchmarks: the server on core 1, this load generator and the fake
// upstream on core 0. Only the measured window's GCs count (after 3 s at saturation to warm up).
import { closeSync, copyFileSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchChatBody, closedLoop, openLoop, percentile } from './lib/load.mjs';
import { CLI, LIB, cleanup, cpuOf, memOf, freePort, hasTaskset, installCleanupHandlers, pinSelf, spawnNode, trackTempDir, waitReady } from './lib/proc.mjs';
import { SERVE_FLAGS, createAccounts, nodeArgs, writeTollgateConfig } from './lib/tollgate.mjs';

const { values: args } = parseArgs({
  options: {
    target: { type: 'string', default: 'tollgate' },
    stream: { type: 'boolean', default: false },
    rate: { type: 'string', default: '800' },
    saturate: { type: 'boolean', default: false },
    seconds: { type: 'string', default: '20' },
    accounts: { type: 'string', default: '1000' },
    cli: { type: 'string', default: CLI },
    'node-args': { type: 'string', default: '' },
    'keep-trace': { type: 'string' },
  },
  strict: true,
});

installCleanupHandlers();
const pin = hasTaskset(false);
if (pin) pinSelf(0);
const tmp = trackTempDir(mkdtempSync(join(os.tmpdir(), 'tollgate-promotion-')));
const traceFile = join(tmp, 'trace-gc.log');
const upstream = await spawnNode([join(LIB, 'upstream.mjs')], { core: 0, pin, waitJson: true });
const upstreamUrl = `http://127.0.0.1:${upstream.info.port}`;
const body = benchChatBody(args.stream);
// V8 writes --trace-gc-nvp to stdout; the server's stdout goes to a file read after the run.
const out = openSync(traceFile, 'w');
const flags = [...SERVE_FLAGS, '--trace-gc-nvp', ...nodeArgs(args['node-args'])];
let url;
let pid;
let headers;
if (args.target === 'proxy') {
  // Its port comes on stdout too, among V8's trace lines.
  const proxy = await spawnNode([...flags, join(LIB, 'proxy.mjs'), upstreamUrl], { core: 1, pin, stdout: out });
  let port;
  for (let i = 0; i < 200 && !port; i++) {
    port = /^\{"port":(\d+)\}$/m.exec(readFileSync(traceFile, 'utf8'))?.[1];
    if (!port) await new Promise((r) => setTimeout(r, 50));
  }
  if (!port) throw new Error('the proxy did not say its port');
  url = `http://127.0.0.1:${port}`;
  pid = proxy.child.pid;
  headers = [{ 'content-type': 'application/json' }];
} else {
  const cfg = join(tmp, 'tollgate.yaml');
  writeTollgateConfig(cfg, { storageUrl: `sqlite:${join(tmp, 'tollgate.db')}`, upstreamUrl });
  const port = await freePort();
  const tg = await spawnNode([...flags, resolve(args.cli), 'serve', '--config', cfg, '--port', String(port)], { core: 1, pin, stdout: out });
  url = `http://127.0.0.1:${port}`;
  pid = tg.child.pid;
  await waitReady(`${url}/readyz`, { child: tg.child });
  const accounts = await createAccounts(url, Number(args.accounts));
  headers = accounts.map((a) => ({ 'content-type': 'application/json', authorization: `Bearer ${a.secret}` }));
}

const traceText = () => readFileSync(traceFile, 'utf8');

await closedLoop(url, { headers, body, seconds: 3, warmup: 0, concurrency: 50 });
const mark = traceText().length;
const c0 = cpuOf(pid);
const rss0 = memOf(pid).rssMb;
const r = args.saturate
  ? await closedLoop(url, { headers, body, seconds: Number(args.seconds), warmup: 1, concurrency: 50 })
  : await openLoop(url, { headers, body, rate: Number(args.rate), seconds: Number(args.seconds), warmup: 1 });
const rss1 = memOf(pid).rssMb;
const cpuMs = (1000 * (cpuOf(pid) - c0)) / r.total;
// Only the main thread's GCs: the SQLite checkpointer's worker has its own, small, isolate.
const lines = traceText().slice(mark).split('\n').filter((l) => l.includes(' pause='));
const isolates = new Map();
for (const l of lines) {
  const id = /^\[\d+:(0x[0-9a-f]+)\]/.exec(l)?.[1];
  if (id) isolates.set(id, (isolates.get(id) ?? 0) + 1);
}
const main = [...isolates].sort((a, b) => b[1] - a[1])[0]?.[0];
const mine = lines.filter((l) => l.includes(main));
const field = (l, k) => Number(new RegExp(` ${k}=([\\d.]+)`).exec(l)?.[1] ?? NaN);
const scavenges = mine.filter((l) => / gc=s /.test(l));
const full = mine.filter((l) => / gc=(mc|mmc) /.test(l));
// The heap left after each full GC: flat across several of them means garbage, not a leak.
const heapMb = (l) => (l === undefined ? NaN : field(l, 'total_size_after') / 1e6);
const afterFull = full.map((l) => heapMb(l).toFixed(1));
const promoted = scavenges.reduce((a, l) => a + field(l, 'promoted'), 0);
const pauses = scavenges.map((l) => field(l, 'pause')).sort((a, b) => a - b);
closeSync(out);
if (args['keep-trace']) copyFileSync(traceFile, args['keep-trace']);

const mode = args.stream ? 'stream' : 'non-stream';
console.log(`${args.target} ${mode} at ${args.saturate ? 'saturation (50 connections)' : `${args.rate}/s`} for ${args.seconds} s (${r.total} requests, ${args.target === 'proxy' ? 'no' : args.accounts} accounts):`);
console.log(`  latency p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms; CPU ${cpuMs.toFixed(3)} ms per request`);
console.log(`  promoted to the old generation: ${(promoted / 1e6).toFixed(1)} MB = ${Math.round(promoted / r.total)} B per request`);
console.log(
  `  scavenges: ${scavenges.length}, pause median ${percentile(pauses, 50)?.toFixed(1)} ms, p90 ${percentile(pauses, 90)?.toFixed(1)} ms, max ${pauses.at(-1)?.toFixed(1)} ms; full GCs: ${full.length}${full.length ? ` (${full.map((l) => `${field(l, 'pause').toFixed(1)} ms`).join(', ')}; heap after each: ${afterFull.join(', ')} MB)` : ''}`,
);
console.log(
  `  RSS ${rss0.toFixed(1)} → ${rss1.toFixed(1)} MB; V8 heap after the first and the last scavenge ${heapMb(scavenges[0]).toFixed(1)} → ${heapMb(scavenges.at(-1)).toFixed(1)} MB`,
);
await cleanup();
process.exit(0);
