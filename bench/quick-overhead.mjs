#!/usr/bin/env node
// Quick overhead benchmark: Tollgate vs a bare undici pass-through proxy, both in front of the same
// fast fake OpenAI upstream. Each server runs in its own child process; this process is only the
// load generator (50 requests in flight, undici Pool). Run `npm run build` first (or `npm run bench:quick`).
//
//   node bench/quick-overhead.mjs [--seconds N] [--concurrency C] [--no-info] [--profile] [--stack]
//
// --stack adds a row for bench/lib/json-proxy.mjs: Tollgate's HTTP stack (Fastify, its upstream
// client, JSON in and out) with none of the gateway's work, run with the same node flags.
//
// Children: bench/lib/upstream.mjs (fake upstream) and bench/lib/proxy.mjs (bare proxy), shared with bench/run.mjs.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { CHAT, CHAT_STREAM, closedLoop, once } from './lib/load.mjs';
import { SERVE_FLAGS } from './lib/tollgate.mjs';
import { CLI, LIB, ROOT, cleanup, cpuOf, freePort, hasTaskset, installCleanupHandlers, memOf, pinSelf, spawnNode, stop, trackTempDir, waitReady } from './lib/proc.mjs';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '50' },
    'no-info': { type: 'boolean', default: false },
    'no-pin': { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    stack: { type: 'boolean', default: false },
  },
  strict: true,
});

// The fake upstream (bench/lib/upstream.mjs) and the bare proxy (bench/lib/proxy.mjs) are shared
// with bench/run.mjs.

function cli(argv) {
  return execFileSync(process.execPath, [CLI, ...argv], { cwd: ROOT, encoding: 'utf8' });
}

/** Sanity check (a real answer with usage), then `concurrency` requests in flight for warm-up + measure seconds. */
async function load(url, { stream, secret, seconds, warmup, concurrency }) {
  const headers = { 'content-type': 'application/json', ...(secret && { authorization: `Bearer ${secret}` }) };
  const body = stream ? CHAT_STREAM : CHAT;
  const check = new Pool(url, { connections: 1 });
  const [status, text] = await once(check, headers, body, true);
  await check.close();
  if (status !== 200 || !text.includes('"completion_tokens":7')) throw new Error(`${url} answered ${status}: ${text.slice(0, 300)}`);
  const r = await closedLoop(url, { headers: [headers], body, seconds, warmup, concurrency });
  return { ...r, firstError: Object.keys(r.byStatus)[0] ?? null };
}

async function summariseProfile(dir) {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (!files.length) return 'no .cpuprofile written';
  const raw = readFileSync(join(dir, files[0]), 'utf8');
  // Kept for a closer look (chrome://inspect, speedscope, or an inclusive-time pass).
  mkdirSync(join(ROOT, 'artifacts'), { recursive: true });
  writeFileSync(join(ROOT, 'artifacts', 'tollgate.cpuprofile'), raw);
  const prof = JSON.parse(raw);
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
  const pin = hasTaskset(args['no-pin']);
  if (pin) pinSelf(0);
  installCleanupHandlers();

  const tmp = trackTempDir(mkdtempSync(join(os.tmpdir(), 'tollgate-bench-')));

  try {
    const upstream = await spawnNode([join(LIB, 'upstream.mjs')], { core: 0, pin, waitJson: true });
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
          // Every free-tier rule at work, but a day budget one account cannot spend in a bench run
          // (the real 50,000 runs out after ~4,000 requests and would turn the rest into 403s).
          'plans:',
          '  free: { preset: free-tier }',
          '  paid: { preset: pay-as-you-go }',
          '  bench: { preset: free-tier, rules: [ { id: api_token, limit: 1000000000 } ] }',
          '',
        ].join('\n'),
      );
      return file;
    };
    const warnCfg = writeConfig('warn');
    const account = JSON.parse(cli(['accounts', 'create', '--plan', 'bench', '--json', '--config', warnCfg]));
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
        if (r.errors) console.error(`${name} ${mode}: ${r.errors} errors: ${JSON.stringify(r.byStatus)}`);
        results.push({ target: name, mode, ...r, mem: pid ? memOf(pid) : null });
      }
    };

    // 1. Upstream alone (reference ceiling: what the load generator + fake can do).
    await runTarget('fake upstream (direct)', upstreamUrl, null, null);

    // 2. Bare proxy, with Tollgate's node flags (as in run.mjs).
    const proxy = await spawnNode([...SERVE_FLAGS, join(LIB, 'proxy.mjs'), upstreamUrl], { core: 1, pin, waitJson: true });
    await runTarget('bare undici proxy', `http://127.0.0.1:${proxy.info.port}`, proxy.child.pid, null);
    await stop(proxy.child);

    // 2b. Tollgate's HTTP stack alone (json-proxy.mjs), on request.
    if (args.stack) {
      const stackProxy = await spawnNode([...SERVE_FLAGS, join(LIB, 'json-proxy.mjs'), upstreamUrl], { core: 1, pin, waitJson: true });
      await runTarget('Fastify JSON proxy (stack only)', `http://127.0.0.1:${stackProxy.info.port}`, stackProxy.child.pid, null);
      await stop(stackProxy.child);
    }

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
      const { child } = await spawnNode([...SERVE_FLAGS, ...nodeArgs, CLI, 'serve', '--config', cfg, '--port', String(port)], { core: 1, pin, stdout: 'ignore' });
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
      const measured = r.target.startsWith('Tollgate') || r.target.startsWith('Fastify');
      const ratio = measured ? `${f((100 * r.rps) / proxyRps[r.mode], 0)}%` : r.target === 'bare undici proxy' ? '100%' : '';
      const cpuRatio = measured ? `${f(r.cpu / r.rps / proxyCpuPerReq[r.mode], 1)}×` : '';
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

await main();
