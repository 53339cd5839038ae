#!/usr/bin/env node
// Where a request's CPU goes, for Tollgate and the bare proxy side by side: Linux `perf` samples
// every thread of the server, kernel included, at a fixed request rate, and the samples are
// charged to the nearest JavaScript frame's file (a builtin or a V8 runtime call counts for the JS
// function that called it), to the kernel by system call, or to the garbage collector. Printed
// as microseconds of CPU per request, target by target, with the difference.
//
//   npm run bench:perf -- [--rate 2000] [--seconds 8] [--stream]      (builds, then runs this)
//                    [--target both|tollgate|proxy] [--folded DIR] [--cli dist/cli/tollgate.js] [--top 40]
//                    [--prompt short|conversation]   (conversation: a chat client's tenth turn, lib/load.mjs)
//        [--chunks N] [--upstream-model NAME]   (the fake upstream's stream length and model name: lib/upstream.mjs)
//
// Needs `perf` (Debian: linux-perf) and permission to profile (root, or kernel.perf_event_paranoid ≤ 1).
// --folded DIR writes each target's stacks in the folded format flame-graph tools read
// (speedscope, inferno, flamegraph.pl): DIR/<target>.folded.
//
// Why not V8's `--cpu-prof` for this: with the server pinned to one core (as every benchmark here
// pins it), V8's sampling thread shares that core and mostly runs when the event loop sleeps, so
// the profile is biased towards idle: the bare proxy at 2,000 req/s read 4–6 % busy in its
// `--cpu-prof`, against 20 % of a core in /proc. `perf` samples from the kernel's timer, on
// whichever thread is running, and sees the system calls' time as well.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchChatBody, closedLoop, conversationChatBody, openLoop } from './lib/load.mjs';
import { CLI, LIB, cpuOf, freePort, hasTaskset, installCleanupHandlers, pinSelf, spawnNode, stop, trackTempDir, waitReady } from './lib/proc.mjs';
import { SERVE_FLAGS, createAccounts, writeTollgateConfig } from './lib/tollgate.mjs';

const { values: args } = parseArgs({
  options: {
    target: { type: 'string', default: 'both' },
    rate: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '8' },
    stream: { type: 'boolean', default: false },
    folded: { type: 'string' },
    cli: { type: 'string', default: CLI },
    top: { type: 'string', default: '40' },
    accounts: { type: 'string', default: '1000' },
    prompt: { type: 'string', default: 'short' },
    chunks: { type: 'string', default: '5' },
    'upstream-model': { type: 'string', default: 'gpt-4o-mini' },
  },
  strict: true,
});

if (!['both', 'tollgate', 'proxy'].includes(args.target) || !(Number(args.rate) > 0) || !(Number(args.seconds) > 0)) {
  console.error('usage: node bench/perf-profile.mjs [--target both|tollgate|proxy] [--rate N > 0] [--seconds S > 0] [--stream] [--folded DIR]');
  process.exit(2);
}
try {
  execFileSync('perf', ['--version'], { stdio: 'ignore' });
} catch {
  console.error('perf is not installed (Debian: apt-get install linux-perf)');
  process.exit(2);
}

const FREQ = 1999; // samples per second per thread; odd, so it does not beat with 1 ms timers
const rate = Number(args.rate);
const seconds = Number(args.seconds);
installCleanupHandlers();
const pin = hasTaskset(false);
if (pin) pinSelf(0);
const tmp = trackTempDir(mkdtempSync(join(os.tmpdir(), 'tollgate-perf-')));
const upstream = await spawnNode([join(LIB, 'upstream.mjs'), '--chunks', args.chunks, '--model', args['upstream-model']], { core: 0, pin, waitJson: true });
const upstreamUrl = `http://127.0.0.1:${upstream.info.port}`;
if (args.prompt !== 'short' && args.prompt !== 'conversation') {
  console.error('--prompt: short or conversation');
  process.exit(2);
}
const body = args.prompt === 'conversation' ? conversationChatBody(args.stream) : benchChatBody(args.stream);
// --perf-basic-prof: V8 writes /tmp/perf-<pid>.map, which names JIT-compiled functions for perf;
// interpreted frames get a native frame of their own too. The map has no record of code that a
// full GC moved, so code space is not compacted: without that, hot functions were named after
// whatever start-up code (a YAML or JSON-schema module) had been at their new address. The
// servers run in the temp dir: these flags also make V8 write an isolate-*.log into the cwd.
const PERF_FLAGS = ['--perf-basic-prof', '--interpreted-frames-native-stack', '--no-compact-code-space'];

async function startTarget(name) {
  if (name === 'proxy') {
    const p = await spawnNode([...SERVE_FLAGS, ...PERF_FLAGS, join(LIB, 'proxy.mjs'), upstreamUrl], { core: 1, pin, waitJson: true, cwd: tmp });
    return { child: p.child, url: `http://127.0.0.1:${p.info.port}`, headers: [{ 'content-type': 'application/json' }] };
  }
  const cfg = join(tmp, 'tollgate.yaml');
  writeTollgateConfig(cfg, { storageUrl: `sqlite:${join(tmp, 'tollgate.db')}`, upstreamUrl });
  const port = await freePort();
  const p = await spawnNode([...SERVE_FLAGS, ...PERF_FLAGS, resolve(args.cli), 'serve', '--config', cfg, '--port', String(port)], { core: 1, pin, cwd: tmp });
  const url = `http://127.0.0.1:${port}`;
  await waitReady(`${url}/readyz`, { child: p.child });
  const accounts = await createAccounts(url, Number(args.accounts));
  return { child: p.child, url, headers: accounts.map((a) => ({ 'content-type': 'application/json', authorization: `Bearer ${a.secret}` })) };
}

/** perf record of every thread of pid for `secs` seconds; resolves with the data file. */
function record(pid, secs, file) {
  return new Promise((res, rej) => {
    const p = spawn('perf', ['record', '-F', String(FREQ), '-g', '-p', String(pid), '-o', file, '--', 'sleep', String(secs)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.once('exit', (code) => (code === 0 ? res(file) : rej(new Error(`perf record failed (${code}): ${err}`))));
  });
}

/**
 * Names JIT code by V8's map file (/tmp/perf-<pid>.map, one `START SIZE NAME` line per code object,
 * appended as code is made). V8 moves and frees code, so an address may be listed several times;
 * the latest entry covering it names the code there during the recording (taken after warm-up),
 * whereas perf's own lookup can pick a start-up entry (a config parser's function for a hot path).
 */
function jitNamer(pid) {
  let text = '';
  try {
    text = readFileSync(`/tmp/perf-${pid}.map`, 'utf8');
  } catch {
    return (_ip, sym) => sym;
  }
  const entries = [];
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line);
    if (m) entries.push({ start: parseInt(m[1], 16), end: parseInt(m[1], 16) + parseInt(m[2], 16), name: m[3], order: entries.length });
  }
  const byStart = [...entries].sort((a, b) => a.start - b.start);
  const maxSize = Math.max(0, ...entries.map((e) => e.end - e.start));
  return (ip, sym) => {
    let lo = 0;
    let hi = byStart.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (byStart[mid].start <= ip) lo = mid + 1;
      else hi = mid;
    }
    let best;
    for (let i = lo - 1; i >= 0 && byStart[i].start > ip - maxSize; i--) {
      const e = byStart[i];
      if (e.end > ip && (best === undefined || e.order > best.order)) best = e;
    }
    return best?.name ?? sym;
  };
}

/** The samples of a perf data file: [{ tid, frames: [leaf … root] }], JIT frames named by jitNamer. */
function samplesOf(file, pid) {
  const text = execFileSync('perf', ['script', '-i', file, '-F', 'tid,ip,sym,dso'], { maxBuffer: 1 << 30, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const name = jitNamer(pid);
  const out = [];
  for (const block of text.split('\n\n')) {
    const lines = block.split('\n').filter((l) => l.trim() !== '');
    if (lines.length === 0) continue;
    const tid = Number(lines[0].trim());
    const frames = lines.slice(1).map((l) => {
      const m = /^\s*([0-9a-f]+)\s+(.*?)\s+\((.*)\)$/.exec(l);
      if (!m) return l.trim();
      // JIT code is whatever perf found in the map file (or [unknown]): named again here.
      return m[3].includes('/perf-') || m[3] === '[unknown]' ? name(parseInt(m[1], 16), m[2]) : m[2];
    });
    out.push({ tid, frames });
  }
  return out;
}

const SYSCALLS = [
  [/do_writev|sock_write_iter|tcp_sendmsg/, 'kernel: socket writes (and the loopback delivery they run)'],
  [/ksys_read|sock_read_iter|tcp_recvmsg/, 'kernel: socket reads'],
  [/epoll/, 'kernel: epoll'],
  [/ext4|ksys_write|ksys_pwrite|ksys_pread|do_unlinkat|do_renameat|do_sys_openat|__x64_sys_close|fsync/, 'kernel: files (SQLite, pending log)'],
  [/futex/, 'kernel: futex (thread hand-offs)'],
];

/** The category a sample's CPU is charged to. */
function categoryOf(frames) {
  const sysIdx = frames.findIndex((f) => f.startsWith('entry_SYSCALL') || f.startsWith('do_syscall_64'));
  if (sysIdx > 0) {
    const inKernel = frames.slice(0, sysIdx).join(' ');
    for (const [re, name] of SYSCALLS) if (re.test(inKernel)) return name;
    return 'kernel: other system calls';
  }
  if (frames.some((f) => f.startsWith('asm_exc_page_fault'))) return 'kernel: page faults';
  // An interrupt (the network's softirqs, timers) taken while this thread ran: the kernel's time.
  if (frames.some((f) => /^asm_(sysvec|common_interrupt)/.test(f))) return 'kernel: interrupts';
  if (frames.some((f) => /Heap::|Scavenger|MarkCompact|MinorMC|ConcurrentMarking|Sweeper/.test(f))) return 'V8: garbage collection';
  const js = frames.find((f) => f.startsWith('JS:') || f.startsWith('Eval:'));
  if (js === undefined) return 'V8 / node native (no JS frame)';
  if (js.startsWith('JS:wasm')) return "wasm: llhttp (undici's HTTP/1.1 parser)";
  if (js.includes('[worker eval]')) return 'tollgate: the file worker (pending-log batches, checkpoints)';
  const loc = /^(?:JS|Eval):\S*\s+(\S+?)(?::\d+){0,2}$/.exec(js)?.[1] ?? js;
  const path = loc.replace(/^file:\/\//, '');
  const inRepo = path.indexOf('/dist/src/');
  if (inRepo >= 0) return `tollgate: src/${path.slice(inRepo + 10).split('/').slice(0, -1).join('/') || '.'}/`;
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const parts = path.slice(nm + 14).split('/');
    return `npm: ${parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]}`;
  }
  if (path.startsWith('node:')) return `node: ${path.slice(5).replace(/^internal\//, '').split('/')[0]}`;
  if (path.includes('/bench/lib/')) return 'bench: proxy.mjs';
  return `other JS (${path.split('/').pop()})`;
}

async function profile(name) {
  const t = await startTarget(name);
  const pid = t.child.pid;
  // Warm up (JIT, pools, caches) at saturation, then the measured rate: perf starts 1 s into it.
  await closedLoop(t.url, { headers: t.headers, body, seconds: 3, warmup: 0, concurrency: 50 });
  const file = join(tmp, `${name}.perf.data`);
  const load = openLoop(t.url, { headers: t.headers, body, rate, seconds: seconds + 1.5, warmup: 1 });
  await new Promise((r) => setTimeout(r, 1000));
  const c0 = cpuOf(pid);
  await record(pid, seconds, file);
  const cpuS = cpuOf(pid) - c0;
  const r = await load;
  await stop(t.child);
  const samples = samplesOf(file, pid);
  rmSync(`/tmp/perf-${pid}.map`, { force: true });
  const requests = rate * seconds;
  const perReq = 1e6 / FREQ / requests; // µs of CPU per request that one sample stands for
  const cats = new Map();
  const threads = new Map();
  const folded = new Map();
  for (const s of samples) {
    const thread = s.tid === pid ? 'event loop' : 'other threads';
    threads.set(thread, (threads.get(thread) ?? 0) + 1);
    const c = s.tid === pid ? categoryOf(s.frames) : `${categoryOf(s.frames)} [other threads]`;
    cats.set(c, (cats.get(c) ?? 0) + 1);
    if (args.folded) {
      const key = [thread, ...s.frames.slice().reverse()].map((f) => f.replace(/;/g, ',')).join(';');
      folded.set(key, (folded.get(key) ?? 0) + 1);
    }
  }
  if (args.folded) {
    mkdirSync(args.folded, { recursive: true });
    writeFileSync(join(args.folded, `${name}.folded`), [...folded].map(([k, v]) => `${k} ${v}`).join('\n') + '\n');
  }
  return {
    name,
    samples: samples.length,
    cpuUsPerReq: (1e6 * cpuS) / requests,
    sampledUsPerReq: samples.length * perReq,
    p99: r.p99,
    cats: new Map([...cats].map(([k, v]) => [k, v * perReq])),
    threads: new Map([...threads].map(([k, v]) => [k, v * perReq])),
  };
}

const names = args.target === 'both' ? ['proxy', 'tollgate'] : [args.target];
const results = [];
for (const n of names) results.push(await profile(n));

const mode = args.stream ? 'stream' : 'non-stream';
console.log(`\n${mode}, ${rate} req/s, ${seconds} s under perf (${FREQ} Hz, every thread), server pinned to core ${pin ? 1 : '(none)'}\n`);
for (const r of results) {
  const th = [...r.threads].map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ');
  console.log(`${r.name}: CPU ${r.cpuUsPerReq.toFixed(1)} µs/request (/proc), sampled ${r.sampledUsPerReq.toFixed(1)} µs/request (${th}); ${r.samples} samples; p99 ${r.p99.toFixed(2)} ms`);
}
const keys = [...new Set(results.flatMap((r) => [...r.cats.keys()]))];
const last = results.at(-1);
const first = results[0];
// By the difference (the target's own cost when there is one target), largest first.
const weight = (k) => (last.cats.get(k) ?? 0) - (results.length > 1 ? (first.cats.get(k) ?? 0) : 0);
keys.sort((a, b) => weight(b) - weight(a));
console.log(`\n| where (µs of CPU per request) | ${results.map((r) => r.name).join(' | ')} |${results.length > 1 ? ' difference |' : ''}`);
console.log(`|---|${results.map(() => '---:').join('|')}|${results.length > 1 ? '---:|' : ''}`);
for (const k of keys.slice(0, Number(args.top))) {
  const vals = results.map((r) => r.cats.get(k) ?? 0);
  console.log(`| ${k} | ${vals.map((v) => v.toFixed(1)).join(' | ')} |${results.length > 1 ? ` ${(vals.at(-1) - vals[0]).toFixed(1)} |` : ''}`);
}
const totals = results.map((r) => r.sampledUsPerReq);
console.log(`| **all sampled** | ${totals.map((v) => `**${v.toFixed(1)}**`).join(' | ')} |${results.length > 1 ? ` **${(totals.at(-1) - totals[0]).toFixed(1)}** |` : ''}`);
process.exit(0);
