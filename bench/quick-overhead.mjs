#!/usr/bin/env node
// Quick overhead benchmark: Tollgate vs a bare undici pass-through proxy, both in front of the same
// fast fake OpenAI upstream. Each server runs in its own child process; this process is only the
// load generator (50 requests in flight, undici Pool). Run `npm run build` first (or `npm run bench:quick`).
//
//   node bench/quick-overhead.mjs [--seconds N] [--concurrency C] [--no-info] [--profile]
//
// Internal roles (spawned by the bench itself): --role upstream | --role proxy --target URL
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);
const CLI = join(ROOT, 'dist/cli/tollgate.js');

const { values: args } = parseArgs({
  options: {
    role: { type: 'string' },
    target: { type: 'string' },
    seconds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '50' },
    'no-info': { type: 'boolean', default: false },
    'no-pin': { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
  },
  strict: true,
});

// ---------------------------------------------------------------------------------------------
// Role: fake upstream. Fixed chat.completion JSON; for stream:true, 5 content chunks + finish chunk
// + usage chunk + [DONE], one write per event.
// ---------------------------------------------------------------------------------------------
const USAGE = { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 };

function runUpstream() {
  const words = ['Hello', ' from', ' the', ' fake', ' upstream.'];
  const base = { id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1727000000, model: 'gpt-4o-mini', system_fingerprint: 'fp_bench' };
  const chunk = (choices, extra = {}) => `data: ${JSON.stringify({ ...base, choices, ...extra })}\n\n`;
  const events = [
    chunk([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]),
    ...words.map((w) => chunk([{ index: 0, delta: { content: w }, logprobs: null, finish_reason: null }])),
    chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }]),
    chunk([], { usage: USAGE }),
    'data: [DONE]\n\n',
  ];
  const completion = JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: 1727000000,
    model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', content: words.join(''), refusal: null }, logprobs: null, finish_reason: 'stop' }],
    usage: USAGE,
    system_fingerprint: 'fp_bench',
  });

  const server = http.createServer((req, res) => {
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', async () => {
      if (req.method !== 'POST' || !req.url.endsWith('/chat/completions')) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found"}}');
        return;
      }
      let body = {};
      try {
        body = JSON.parse(Buffer.concat(parts).toString('utf8'));
      } catch {}
      if (body.stream === true) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        for (const e of events) {
          res.write(e);
          await new Promise((r) => setImmediate(r)); // separate writes, like a real token stream
        }
        res.end();
      } else {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(completion) }).end(completion);
      }
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
}

// ---------------------------------------------------------------------------------------------
// Role: bare pass-through proxy (the floor for any Node gateway): node:http in, undici Pool out,
// response body piped back.
// ---------------------------------------------------------------------------------------------
function runProxy(target) {
  const pool = new Pool(target, { connections: 128 });
  const server = http.createServer(async (req, res) => {
    try {
      const up = await pool.request({
        method: req.method,
        path: req.url,
        headers: { 'content-type': req.headers['content-type'] ?? 'application/json', ...(req.headers['content-length'] && { 'content-length': req.headers['content-length'] }) },
        body: req,
      });
      const headers = { 'content-type': up.headers['content-type'] ?? 'application/json' };
      if (up.headers['content-length']) headers['content-length'] = up.headers['content-length'];
      res.writeHead(up.statusCode, headers);
      for await (const c of up.body) res.write(c);
      res.end();
    } catch (err) {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: String(err) } }));
    }
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
}


// ---------------------------------------------------------------------------------------------
// Orchestrator + load generator.
// ---------------------------------------------------------------------------------------------
function hasTaskset() {
  if (args['no-pin'] || os.cpus().length < 2) return false;
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Spawns `node ...argv`, optionally pinned to a core; resolves with the child and its first stdout JSON line (if waitJson). */
function spawnNode(argv, { core, pin, waitJson = false, stdout = 'pipe' } = {}) {
  const cmd = pin ? 'taskset' : process.execPath;
  const full = pin ? ['-c', String(core), process.execPath, ...argv] : argv;
  const child = spawn(cmd, full, { stdio: ['ignore', stdout, 'inherit'], cwd: ROOT });
  if (!waitJson) return Promise.resolve({ child, info: null });
  return new Promise((res, rej) => {
    let buf = '';
    child.once('exit', (code) => rej(new Error(`${argv.join(' ')} exited early (${code})`)));
    child.stdout.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        child.stdout.resume();
        child.stdout.removeAllListeners('data');
        child.stdout.on('data', () => {});
        res({ child, info: JSON.parse(buf.slice(0, nl)) });
      }
    });
  });
}

async function stop(child) {
  if (child.exitCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([done, sleep(5000).then(() => child.kill('SIGKILL'))]);
}

function freePort() {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

async function waitReady(url, timeoutMs = 15_000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      const r = await fetch(url);
      await r.arrayBuffer();
      if (r.ok) return;
    } catch {}
    await sleep(100);
  }
  throw new Error(`not ready: ${url}`);
}

function cli(argv) {
  return execFileSync(process.execPath, [CLI, ...argv], { cwd: ROOT, encoding: 'utf8' });
}

/** utime+stime of a process, seconds (Linux). */
function cpuOf(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // clock ticks; USER_HZ is 100 on Linux
  } catch {
    return NaN;
  }
}

function memOf(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
    return { hwmMb: kb('VmHWM') / 1024, rssMb: kb('VmRSS') / 1024 };
  } catch {
    return null;
  }
}

const CHAT = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello.' }] });
const CHAT_STREAM = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello.' }], stream: true, stream_options: { include_usage: true } });

/** One request, body fully consumed. Returns [status, text] when check is set. */
async function once(pool, headers, body, check = false) {
  const r = await pool.request({ method: 'POST', path: '/v1/chat/completions', headers, body });
  if (check) return [r.statusCode, await r.body.text()];
  for await (const _ of r.body);
  return r.statusCode;
}

/** Keeps `concurrency` requests in flight for warm-up + measure seconds; only requests started and finished inside the measure window count. */
async function load(url, { stream, secret, seconds, warmup, concurrency }) {
  const pool = new Pool(url, { connections: concurrency, pipelining: 1 });
  const headers = { 'content-type': 'application/json', ...(secret && { authorization: `Bearer ${secret}` }) };
  const body = stream ? CHAT_STREAM : CHAT;
  // Sanity check: a real answer with usage.
  const [status, text] = await once(pool, headers, body, true);
  if (status !== 200 || !text.includes('"completion_tokens":7')) throw new Error(`${url} answered ${status}: ${text.slice(0, 300)}`);

  const t0 = performance.now();
  const measureStart = t0 + warmup * 1000;
  const end = measureStart + seconds * 1000;
  const lat = [];
  let errors = 0;
  let firstError = null;
  const worker = async () => {
    while (performance.now() < end) {
      const s = performance.now();
      let st;
      try {
        st = await once(pool, headers, body);
      } catch (err) {
        st = err;
      }
      const e = performance.now();
      if (s >= measureStart && e <= end) {
        if (st === 200) lat.push(e - s);
        else {
          errors++;
          firstError ??= st;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  await pool.close();
  lat.sort((a, b) => a - b);
  const pct = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))] : NaN);
  return { rps: lat.length / seconds, p50: pct(50), p99: pct(99), n: lat.length, errors, firstError };
}

async function summariseProfile(dir) {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (!files.length) return 'no .cpuprofile written';
  const prof = JSON.parse(readFileSync(join(dir, files[0]), 'utf8'));
  const dt = (prof.endTime - prof.startTime) / Math.max(1, prof.samples.length); // µs per sample
  const self = new Map();
  let total = 0;
  for (const n of prof.nodes) {
    const cf = n.callFrame;
    const url = cf.url.replace(`file://${ROOT}/`, '').replace(/^.*node_modules\//, '');
    const key = `${cf.functionName || '(anonymous)'}  ${url ? `${url}:${cf.lineNumber + 1}` : ''}`.trim();
    const us = (n.hitCount ?? 0) * dt;
    total += us;
    self.set(key, (self.get(key) ?? 0) + us);
  }
  const byPkg = new Map();
  for (const n of prof.nodes) {
    const url = n.callFrame.url;
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    const pkg = m ? m[1] : url.includes('/dist/') ? 'tollgate (dist/)' : url.startsWith('node:') ? 'node core (js)' : n.callFrame.functionName.startsWith('(') ? n.callFrame.functionName : 'native/other';
    byPkg.set(pkg, (byPkg.get(pkg) ?? 0) + (n.hitCount ?? 0) * dt);
  }
  const fmt = (m, k) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, k)
      .map(([name, us]) => `| ${(100 * us / total).toFixed(1)}% | \`${name}\` |`)
      .join('\n');
  return `Top self time (Tollgate, warn level, whole run incl. idle):\n\n| self | function |\n|---:|---|\n${fmt(self, 20)}\n\nBy package:\n\n| self | package |\n|---:|---|\n${fmt(byPkg, 10)}`;
}

async function main() {
  if (!existsSync(CLI)) {
    console.error('dist/cli/tollgate.js missing: run `npm run build` first');
    process.exit(1);
  }
  const seconds = Number(args.seconds);
  const warmup = Number(args.warmup);
  const concurrency = Number(args.concurrency);
  const pin = hasTaskset();
  if (pin) execFileSync('taskset', ['-a', '-pc', '0', String(process.pid)], { stdio: 'ignore' });

  const tmp = mkdtempSync(join(os.tmpdir(), 'tollgate-bench-'));
  const children = [];
  const cleanup = async () => {
    await Promise.all(children.map(stop));
    rmSync(tmp, { recursive: true, force: true });
  };
  process.once('SIGINT', () => cleanup().then(() => process.exit(130)));

  try {
    const upstream = await spawnNode([SELF, '--role', 'upstream'], { core: 0, pin, waitJson: true });
    children.push(upstream.child);
    const upstreamUrl = `http://127.0.0.1:${upstream.info.port}`;

    const writeConfig = (level) => {
      const file = join(tmp, `tollgate-${level}.yaml`);
      writeFileSync(
        file,
        [
          'server:',
          '  host: 127.0.0.1',
          'storage:',
          `  url: "sqlite:${join(tmp, 'tollgate.db')}"`,
          'logging:',
          `  level: ${level}`,
          'providers:',
          '  - id: openai',
          '    type: openai',
          `    baseUrl: "${upstreamUrl}/v1"`,
          '    apiKey: sk-bench',
          'models:',
          '  - id: gpt-4o-mini',
          '    kind: chat',
          '    provider: openai',
          '    price: { input: 0.15, output: 0.6 }',
          '',
        ].join('\n'),
      );
      return file;
    };
    const warnCfg = writeConfig('warn');
    const account = JSON.parse(cli(['accounts', 'create', '--json', '--config', warnCfg]));
    const key = JSON.parse(cli(['keys', 'create', account.id, '--json', '--config', warnCfg]));
    const secret = key.key;

    const results = []; // { target, mode, rps, p50, p99, mem }
    const modes = [
      ['non-stream', false],
      ['stream', true],
    ];
    const runTarget = async (name, url, pid, secretFor) => {
      for (const [mode, stream] of modes) {
        const cpu0 = pid ? cpuOf(pid) : NaN;
        const w0 = performance.now();
        const r = await load(url, { stream, secret: secretFor, seconds, warmup, concurrency });
        r.cpu = pid ? (100 * (cpuOf(pid) - cpu0)) / ((performance.now() - w0) / 1000) : NaN;
        if (r.errors) console.error(`${name} ${mode}: ${r.errors} errors, first: ${r.firstError instanceof Error ? r.firstError.message : r.firstError}`);
        results.push({ target: name, mode, ...r, mem: pid ? memOf(pid) : null });
      }
    };

    // 1. Upstream alone (reference ceiling: what the load generator + fake can do).
    await runTarget('fake upstream (direct)', upstreamUrl, null, null);

    // 2. Bare proxy.
    const proxy = await spawnNode([SELF, '--role', 'proxy', '--target', upstreamUrl], { core: 1, pin, waitJson: true });
    children.push(proxy.child);
    await runTarget('bare undici proxy', `http://127.0.0.1:${proxy.info.port}`, proxy.child.pid, null);
    await stop(proxy.child);

    // 3. Tollgate, at warn and (optionally) info logging.
    const profDir = join(tmp, 'prof');
    const levels = args['no-info'] ? ['warn'] : ['warn', 'info'];
    let profile = null;
    for (const level of levels) {
      const cfg = level === 'warn' ? warnCfg : writeConfig(level);
      const port = await freePort();
      const profiling = args.profile && level === 'warn';
      const nodeArgs = profiling ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [];
      // stdout to /dev/null: at info level pino still formats and writes every line.
      const { child } = await spawnNode([...nodeArgs, CLI, 'serve', '--config', cfg, '--port', String(port)], { core: 1, pin, stdout: 'ignore' });
      children.push(child);
      const url = `http://127.0.0.1:${port}`;
      await waitReady(`${url}/readyz`);
      await runTarget(`Tollgate (log ${level})`, url, child.pid, secret);
      await stop(child);
      if (profiling) profile = await summariseProfile(profDir);
    }

    // Report.
    const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '–');
    const proxyRows = results.filter((r) => r.target === 'bare undici proxy');
    const proxyRps = Object.fromEntries(proxyRows.map((r) => [r.mode, r.rps]));
    const proxyCpuPerReq = Object.fromEntries(proxyRows.map((r) => [r.mode, r.cpu / r.rps]));
    const lines = [];
    lines.push(`Tollgate quick overhead — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, node ${process.version}, ${os.cpus().length} cores (${os.cpus()[0]?.model.trim()})`);
    lines.push(
      `${concurrency} in flight, ${warmup}s warm-up + ${seconds}s measured per row; ` +
        (pin ? 'pinned with taskset: load generator + fake upstream on core 0, server under test on core 1.' : 'not pinned (taskset unavailable or --no-pin).'),
    );
    lines.push('');
    lines.push('| target | mode | req/s | p50 ms | p99 ms | vs bare proxy | server CPU | CPU ms/req | CPU/req vs proxy | errors | server RSS now / peak MB |');
    lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of results) {
      const ratio = r.target.startsWith('Tollgate') ? `${f((100 * r.rps) / proxyRps[r.mode], 0)}%` : r.target === 'bare undici proxy' ? '100%' : '';
      const cpuRatio = r.target.startsWith('Tollgate') ? `${f(r.cpu / r.rps / proxyCpuPerReq[r.mode], 1)}×` : '';
      const mem = r.mem ? `${f(r.mem.rssMb, 0)} / ${f(r.mem.hwmMb, 0)}` : '';
      lines.push(`| ${r.target} | ${r.mode} | ${f(r.rps, 0)} | ${f(r.p50)} | ${f(r.p99)} | ${ratio} | ${Number.isFinite(r.cpu) ? `${f(r.cpu, 0)}%` : ''} | ${Number.isFinite(r.cpu) ? f((r.cpu * 10) / r.rps, 2) : ''} | ${cpuRatio} | ${r.errors} | ${mem} |`);
    }
    lines.push(
      '',
      'server CPU = utime+stime of the server process over warm-up + measurement (100% = one core). ' +
        'CPU ms/req = that CPU divided by req/s: the per-request cost, which stays meaningful when the server is not the bottleneck.',
    );
    if (profile) lines.push('', profile);
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await cleanup();
  }
}

if (args.role === 'upstream') runUpstream();
else if (args.role === 'proxy') runProxy(args.target);
else await main();
