#!/usr/bin/env node
// Who takes the core from a server's event loop: the scheduler's switches on the server's core are
// recorded with `perf sched record` for a few seconds, and every time the event loop was switched
// out while it could still run (preempted, state R) the wait until it ran again is charged to the
// thread that took its place. A request that arrives meanwhile waits as long: these waits are in
// the tail latency. Some are the server's own threads (its SQLite file's worker, V8's GC and
// compiler threads), some the machine's: on this VM, once, its agent (tokio-rt-worker, nice −10)
// for 13 ms (bench/README.md).
//
//   taskset -c 0 node bench/lib/sched-steal.mjs <pid> [--seconds 4] [--cpu 1]
//
// Linux only; needs `perf` (Debian: linux-perf) and root. Run it under load, from the load
// generator's core. --cpu is the core the server is pinned to (the benchmarks pin it to 1).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: args, positionals } = parseArgs({
  options: { seconds: { type: 'string', default: '4' }, cpu: { type: 'string', default: '1' } },
  allowPositionals: true,
});
const pid = Number(positionals[0]);
if (!Number.isInteger(pid) || pid <= 0 || !(Number(args.seconds) > 0)) {
  console.error('usage: node bench/lib/sched-steal.mjs <pid> [--seconds 4] [--cpu 1]');
  process.exit(2);
}

const name = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
const dir = mkdtempSync(join(os.tmpdir(), 'sched-steal-'));
const data = join(dir, 'sched.data');
try {
  execFileSync('perf', ['sched', 'record', '-C', args.cpu, '-o', data, '--', 'sleep', args.seconds], { stdio: 'ignore' });
  const text = execFileSync('perf', ['script', '-i', data, '-F', 'time,event,trace'], { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] });
  report(text);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

function report(text) {
  const field = (line, name) => new RegExp(`(?:^|\\s)${name}=(\\S+)`).exec(line)?.[1];
  let preemptedAt;
  let by;
  let ranMs = 0;
  let inAt;
  const waits = [];
  const byThread = new Map();
  for (const line of text.split('\n')) {
    if (!line.includes('sched_switch')) continue;
    const t = Number(/^\s*([\d.]+):/.exec(line)?.[1]) * 1000;
    const prev = Number(field(line, 'prev_pid'));
    const next = Number(field(line, 'next_pid'));
    if (prev === pid) {
      if (inAt !== undefined) ranMs += t - inAt;
      inAt = undefined;
      if (field(line, 'prev_state')?.startsWith('R')) {
        preemptedAt = t;
        // Threads of the server itself (its V8 helpers, the SQLite file's worker) are marked.
        by = `${field(line, 'next_comm')}[${next}]${existsSync(`/proc/${pid}/task/${next}`) ? ' (the server\'s own thread)' : ''}`;
      }
    }
    if (next === pid) {
      inAt = t;
      if (preemptedAt !== undefined) {
        const ms = t - preemptedAt;
        waits.push(ms);
        const s = byThread.get(by) ?? { n: 0, ms: 0, max: 0 };
        s.n++;
        s.ms += ms;
        s.max = Math.max(s.max, ms);
        byThread.set(by, s);
        preemptedAt = undefined;
      }
    }
  }
  waits.sort((a, b) => a - b);
  const pct = (p) => (waits.length ? waits[Math.min(waits.length - 1, Math.floor((p / 100) * waits.length))].toFixed(2) : '–');
  console.log(`${name}[${pid}] on core ${args.cpu} for ${args.seconds} s: ran ${ranMs.toFixed(0)} ms; preempted ${waits.length} times, waited ${waits.reduce((a, b) => a + b, 0).toFixed(1)} ms (p50 ${pct(50)}, p90 ${pct(90)}, p99 ${pct(99)}, max ${pct(100)} ms)`);
  console.log('\n| taken by (the thread that ran next) | times | waited ms | longest ms |\n|---|---:|---:|---:|');
  for (const [k, s] of [...byThread].sort((a, b) => b[1].ms - a[1].ms)) {
    console.log(`| ${k} | ${s.n} | ${s.ms.toFixed(1)} | ${s.max.toFixed(2)} |`);
  }
}
