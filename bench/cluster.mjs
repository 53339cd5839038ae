#!/usr/bin/env node
// Cluster benchmark: N Tollgate instances (N = 1, then 3) sharing one redis-server (the limiter,
// append-only file on, fsync every second, as production) and one PostgreSQL (accounts, keys,
// ledger), in front of a fast fake OpenAI upstream. This process is the load generator: an undici
// Pool per instance, connections spread round-robin over the instances, 1,000 accounts/keys on
// the `paid` plan used in rotation. Besides req/s and latency it counts Redis commands per request
// (INFO commandstats) and PostgreSQL statements / transactions per request (pg_stat_statements,
// pg_stat_database). Run `npm run build` first (or `npm run bench:cluster`).
//
//   node bench/cluster.mjs [--seconds 10] [--warmup 2] [--concurrency 50,100] [--instances 1,3]
//                          [--accounts 1000] [--pin]
//
// Internal role (spawned by the bench itself): --role upstream
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import Redis from 'ioredis';
import { ADMIN, SERVE_FLAGS, writeTollgateConfig } from './lib/tollgate.mjs';
import { startPostgres as startPostgres_ } from './lib/postgres.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);
const CLI = join(ROOT, 'dist/cli/tollgate.js');

const { values: args } = parseArgs({
  options: {
    role: { type: 'string' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '50,100' },
    instances: { type: 'string', default: '1,3' },
    accounts: { type: 'string', default: '1000' },
    pin: { type: 'boolean', default: false },
  },
  strict: true,
});

// ---------------------------------------------------------------------------------------------
// Role: fake upstream (non-streaming only): a fixed chat.completion with usage 12/7.
// ---------------------------------------------------------------------------------------------
const USAGE = { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 };

function runUpstream() {
  const completion = JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: 1727000000,
    model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', content: 'Hello from the fake upstream.', refusal: null }, logprobs: null, finish_reason: 'stop' }],
    usage: USAGE,
    system_fingerprint: 'fp_bench',
  });
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.method !== 'POST' || !req.url.endsWith('/chat/completions')) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found"}}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(completion) }).end(completion);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
}

// ---------------------------------------------------------------------------------------------
// Process plumbing.
// ---------------------------------------------------------------------------------------------
/** Everything started, for cleanup: { name, child?, pid?, kill(sig) }. */
const procs = [];
let tmp = null;

function track(name, child, extra = {}) {
  const p = { name, child, pid: child?.pid, ...extra };
  procs.push(p);
  return p;
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

async function waitGone(pid, ms) {
  const end = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > end) return false;
    await sleep(20);
  }
  return true;
}

/** SIGTERM (postgres: SIGINT = fast shutdown), then SIGKILL after 5 s; waits for the exit. */
async function stopProc(p) {
  const pid = p.stopPid ?? p.pid;
  if (!pid || !alive(pid)) return;
  try {
    process.kill(pid, p.stopSignal ?? 'SIGTERM');
  } catch {}
  if (!(await waitGone(pid, 8000))) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
    await waitGone(pid, 3000);
  }
  if (p.child && p.child.exitCode === null && p.child.signalCode === null) {
    await Promise.race([new Promise((r) => p.child.once('exit', r)), sleep(2000)]);
  }
}

let cleaning = null;
function cleanup() {
  cleaning ??= (async () => {
    // Gateways first (they hold Redis/PG connections), then the stores, then the upstream.
    const order = (p) => (p.name.startsWith('tollgate') ? 0 : p.name === 'upstream' ? 2 : 1);
    for (const rank of [0, 1, 2]) await Promise.all(procs.filter((p) => order(p) === rank).map(stopProc));
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  })();
  return cleaning;
}

// Last resort if the process exits some other way: SIGKILL whatever is left, remove the temp dir.
process.once('exit', () => {
  for (const p of procs) {
    const pid = p.stopPid ?? p.pid;
    if (pid && alive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
  }
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => cleanup().then(() => process.exit(130)));

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

function pinned(core, cmd, argv) {
  return args.pin ? ['taskset', ['-c', String(core), cmd, ...argv]] : [cmd, argv];
}

/** utime+stime of a process, seconds. */
function cpuOf(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

/** utime+stime of a process and its live descendants plus their reaped children (cutime+cstime), seconds. */
function cpuTree(rootPid) {
  const stats = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const f = readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1].split(' ');
      stats.set(Number(d), { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100 });
    } catch {}
  }
  let total = 0;
  const stack = [rootPid];
  while (stack.length) {
    const pid = stack.pop();
    total += stats.get(pid)?.cpu ?? 0;
    for (const [child, s] of stats) if (s.ppid === pid) stack.push(child);
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// Redis and PostgreSQL (the same recipe as test/helpers/redis.ts and postgres.ts, but durable).
// ---------------------------------------------------------------------------------------------
async function startRedis() {
  const dir = join(tmp, 'redis');
  execFileSync('mkdir', ['-p', dir]);
  const port = await freePort();
  const [cmd, argv] = pinned(1, 'redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec',
    '--dir', dir, '--daemonize', 'no',
  ]);
  const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'inherit'] });
  track('redis', child);
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  client.on('error', () => {});
  const end = Date.now() + 10_000;
  for (;;) {
    try {
      await client.connect();
      await client.ping();
      break;
    } catch (err) {
      if (Date.now() > end || child.exitCode !== null) throw new Error(`redis-server did not start: ${err}`);
      client.disconnect();
      await sleep(50);
    }
  }
  return { url: `redis://127.0.0.1:${port}`, client, pid: child.pid };
}

async function startPostgres() {
  let p;
  // The postmaster is the pid to stop (a taskset wrapper execs it, runuser does not).
  const db = await startPostgres_(tmp, { wrap: (cmd, argv) => pinned(1, cmd, argv), onSpawn: (child) => (p = track('postgres', child, { stopSignal: 'SIGINT' })) });
  p.stopPid = db.pid;
  return db;
}

/**
 * Commands a client sends itself (each one a network round trip). INFO commandstats also counts
 * the commands a Lua script runs (redis.call), with no mark of where they came from; Tollgate
 * sends every counter operation as one script, so everything not in this list ran inside one.
 */
const CLIENT_COMMANDS = new Set(['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro', 'ping', 'scan', 'config', 'script', 'client', 'hello', 'select', 'auth', 'quit', 'command', 'multi', 'exec', 'cluster']);
const isClientCommand = (name) => CLIENT_COMMANDS.has(name.split('|')[0]);

/** Commands Redis has run, by name (INFO commandstats), minus the INFO calls themselves. */
async function redisCommands(client) {
  const text = await client.info('commandstats');
  const out = {};
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (m[1] !== 'info') out[m[1]] = Number(m[2]);
  return out;
}

async function pgCounters(db) {
  const r = await db.client.query(
    "SELECT xact_commit::bigint AS c, xact_rollback::bigint AS r, tup_inserted::bigint AS ins FROM pg_stat_database WHERE datname = 'tollgate'",
  );
  return { commit: Number(r.rows[0].c), rollback: Number(r.rows[0].r), inserted: Number(r.rows[0].ins) };
}

async function pgStatements(db) {
  if (!db.pss) return null;
  const r = await db.client.query(
    `SELECT s.query, s.calls::bigint AS calls, s.rows::bigint AS rows
       FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
      WHERE d.datname = 'tollgate' AND s.query NOT ILIKE '%pg_stat%' AND s.calls > 0
      ORDER BY s.calls DESC`,
  );
  return r.rows.map((x) => ({ query: x.query.replace(/\s+/g, ' ').trim(), calls: Number(x.calls), rows: Number(x.rows) }));
}

// ---------------------------------------------------------------------------------------------
// Gateways.
// ---------------------------------------------------------------------------------------------
async function waitHealthy(url, child, timeoutMs = 20_000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`gateway exited (${child.exitCode}) before /healthz answered`);
    try {
      const r = await fetch(`${url}/healthz`);
      await r.arrayBuffer();
      if (r.ok) return;
    } catch {}
    await sleep(100);
  }
  throw new Error(`not healthy: ${url}`);
}

async function startGateways(n, config) {
  const out = [];
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const port = await freePort();
      const [cmd, argv] = pinned(1, process.execPath, [...SERVE_FLAGS, CLI, 'serve', '--config', config, '--port', String(port)]);
      const child = spawn(cmd, argv, { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
      const p = track(`tollgate-${n}-${i}`, child);
      const url = `http://127.0.0.1:${port}`;
      await waitHealthy(url, child);
      out[i] = { url, child, p };
    }),
  );
  return out;
}

async function stopGateways(gws) {
  await Promise.all(gws.map((g) => stopProc(g.p)));
  for (const g of gws) procs.splice(procs.indexOf(g.p), 1);
}

async function adminCall(url, method, path, body) {
  const r = await fetch(`${url}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const json = await r.json();
  if (r.status >= 300) throw new Error(`admin ${method} ${path}: ${r.status} ${JSON.stringify(json)}`);
  return json;
}

async function createAccounts(url, count) {
  const secrets = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      while (next < count) {
        const i = next++;
        const acct = await adminCall(url, 'POST', '/accounts', { plan: 'paid' });
        await adminCall(url, 'POST', `/accounts/${acct.id}/credits`, { amount: 1e12 });
        secrets[i] = (await adminCall(url, 'POST', `/accounts/${acct.id}/keys`, {})).key;
      }
    }),
  );
  return secrets;
}

// ---------------------------------------------------------------------------------------------
// Load.
// ---------------------------------------------------------------------------------------------
const CHAT = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello.' }], max_tokens: 64 });

async function once(pool, secret, check = false) {
  const r = await pool.request({
    method: 'POST',
    path: '/v1/chat/completions',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
    body: CHAT,
  });
  if (check) return [r.statusCode, await r.body.text()];
  for await (const _ of r.body);
  return r.statusCode;
}

/**
 * `concurrency` workers, worker c bound to instance c % N (so connections are spread round-robin),
 * each request with the next of the keys in rotation. Only requests started and finished inside
 * the measure window count for req/s and latency; `total` counts every completed request
 * (warm-up included) for the per-request Redis/PostgreSQL ratios.
 */
async function load(gws, secrets, { seconds, warmup, concurrency }) {
  const pools = gws.map((g, i) => new Pool(g.url, { connections: Math.ceil((concurrency - i) / gws.length), pipelining: 1 }));
  const t0 = performance.now();
  const measureStart = t0 + warmup * 1000;
  const end = measureStart + seconds * 1000;
  const lat = [];
  let errors = 0;
  let firstError = null;
  let total = 0;
  let k = 0;
  const worker = async (c) => {
    const pool = pools[c % pools.length];
    while (performance.now() < end) {
      const secret = secrets[k++ % secrets.length];
      const s = performance.now();
      let st;
      try {
        st = await once(pool, secret);
      } catch (err) {
        st = err;
      }
      const e = performance.now();
      total++;
      if (s >= measureStart && e <= end) {
        if (st === 200) lat.push(e - s);
        else {
          errors++;
          firstError ??= st;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, c) => worker(c)));
  await Promise.all(pools.map((p) => p.close()));
  lat.sort((a, b) => a - b);
  const pct = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))] : NaN);
  return { rps: lat.length / seconds, p50: pct(50), p99: pct(99), measured: lat.length, errors, firstError, total };
}

// ---------------------------------------------------------------------------------------------
// Main.
// ---------------------------------------------------------------------------------------------
async function main() {
  if (!existsSync(CLI)) {
    console.error('dist/cli/tollgate.js missing: run `npm run build` first');
    process.exit(1);
  }
  const seconds = Number(args.seconds);
  const warmup = Number(args.warmup);
  const concurrencies = args.concurrency.split(',').map(Number);
  const instanceCounts = args.instances.split(',').map(Number);
  const accountCount = Number(args.accounts);
  if (args.pin) execFileSync('taskset', ['-a', '-pc', '0', String(process.pid)], { stdio: 'ignore' });

  tmp = mkdtempSync(join(os.tmpdir(), 'tollgate-cluster-bench-'));
  const log = (m) => process.stderr.write(`[cluster-bench] ${m}\n`);
  const results = [];
  let redis;
  let db;
  try {
    [redis, db] = await Promise.all([startRedis(), startPostgres()]);
    const [ucmd, uargv] = pinned(0, process.execPath, [SELF, '--role', 'upstream']);
    const up = spawn(ucmd, uargv, { stdio: ['ignore', 'pipe', 'inherit'] });
    track('upstream', up);
    const upPort = await new Promise((res, rej) => {
      up.once('exit', (c) => rej(new Error(`upstream exited (${c})`)));
      let buf = '';
      up.stdout.on('data', (d) => {
        buf += d;
        if (buf.includes('\n')) res(JSON.parse(buf.slice(0, buf.indexOf('\n'))).port);
      });
    });
    up.stdout.resume();
    const config = join(tmp, 'tollgate.yaml');
    writeTollgateConfig(config, { storageUrl: db.url, limiterUrl: redis.url, upstreamUrl: `http://127.0.0.1:${upPort}` });
    log(`redis ${redis.url} (appendonly yes, everysec), postgres ${db.version} ${db.url} (fsync on), pg_stat_statements ${db.pss ? 'on' : 'off'}`);

    let secrets = null;
    for (const n of instanceCounts) {
      const gws = await startGateways(n, config);
      log(`${n} instance(s) up: ${gws.map((g) => g.url).join(' ')}`);
      if (!secrets) {
        const t = performance.now();
        secrets = await createAccounts(gws[0].url, accountCount);
        log(`${accountCount} paid accounts + keys created in ${((performance.now() - t) / 1000).toFixed(1)} s`);
      }
      // Sanity: every instance answers with usage.
      for (const g of gws) {
        const pool = new Pool(g.url, { connections: 1 });
        const [st, text] = await once(pool, secrets[0], true);
        await pool.close();
        if (st !== 200 || !text.includes('"completion_tokens":7')) throw new Error(`${g.url} answered ${st}: ${text.slice(0, 300)}`);
      }
      for (const concurrency of concurrencies) {
        await sleep(500);
        const r0 = await redisCommands(redis.client);
        const p0 = await pgCounters(db);
        if (db.pss) await db.client.query('SELECT pg_stat_statements_reset()');
        const cpu0 = {
          gateways: gws.reduce((a, g) => a + cpuOf(g.child.pid), 0),
          redis: cpuOf(redis.pid),
          postgres: cpuTree(db.pid),
          loadgen: cpuOf(process.pid),
          upstream: cpuOf(up.pid),
        };
        const w0 = performance.now();
        const r = await load(gws, secrets, { seconds, warmup, concurrency });
        const wall = (performance.now() - w0) / 1000;
        const cpu = {
          gateways: gws.reduce((a, g) => a + cpuOf(g.child.pid), 0) - cpu0.gateways,
          redis: cpuOf(redis.pid) - cpu0.redis,
          postgres: cpuTree(db.pid) - cpu0.postgres,
          loadgen: cpuOf(process.pid) - cpu0.loadgen,
          upstream: cpuOf(up.pid) - cpu0.upstream,
        };
        for (const k of Object.keys(cpu)) cpu[k] = (100 * cpu[k]) / wall;
        // Let batched ledger writes flush before reading counters. pg_stat_statements is exact at
        // once; pg_stat_database is flushed by idle backends only after ~10 s, so without
        // pg_stat_statements wait for that.
        await sleep(db.pss ? 1500 : 11_000);
        const r1 = await redisCommands(redis.client);
        const p1 = await pgCounters(db);
        const stmts = await pgStatements(db);
        const redisDelta = {};
        for (const [name, calls] of Object.entries(r1)) {
          const d = calls - (r0[name] ?? 0);
          if (d > 0) redisDelta[name] = d;
        }
        if (r.errors) log(`N=${n} c=${concurrency}: ${r.errors} errors, first: ${r.firstError instanceof Error ? r.firstError.message : r.firstError}`);
        results.push({
          n,
          concurrency,
          ...r,
          cpu,
          redisDelta,
          pg: { commit: p1.commit - p0.commit, rollback: p1.rollback - p0.rollback, inserted: p1.inserted - p0.inserted },
          stmts,
        });
        log(`N=${n} c=${concurrency}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, ${r.errors} errors`);
      }
      await stopGateways(gws);
    }
  } finally {
    await redis?.client.quit().catch(() => redis.client.disconnect());
    await db?.client.end().catch(() => {});
    await cleanup();
  }

  // Report.
  const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '–');
  const lines = [];
  lines.push(
    `Tollgate cluster bench — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, node ${process.version}, ` +
      `${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), PostgreSQL ${db?.version}, ${execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).split(' ')[2]}`,
  );
  lines.push(
    `${accountCount} paid accounts (balance 1e12 credits) used in rotation; non-streaming chat, max_tokens 64; ` +
      `${warmup}s warm-up + ${seconds}s measured per row; ${args.pin ? 'pinned: load generator + upstream on core 0, gateways + Redis + PostgreSQL on core 1' : 'not pinned'}.`,
  );
  lines.push('');
  const pgCol = results.some((r) => r.stmts) ? 'PG statements/req' : 'PG commits/req';
  lines.push(`| instances | connections | req/s | p50 ms | p99 ms | errors | Redis round trips/req | Redis cmds in scripts/req | ${pgCol} | CPU % gateways / Redis / PG / loadgen / upstream |`);
  lines.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const r of results) {
    const sumOf = (pred) => Object.entries(r.redisDelta).filter(([k]) => pred(k)).reduce((a, [, v]) => a + v, 0);
    const trips = sumOf(isClientCommand);
    const inner = sumOf((k) => !isClientCommand(k));
    const pgPerReq = r.stmts ? r.stmts.reduce((a, s) => a + s.calls, 0) / r.total : r.pg.commit / r.total;
    const c = r.cpu;
    lines.push(
      `| ${r.n} | ${r.concurrency} | ${f(r.rps, 0)} | ${f(r.p50)} | ${f(r.p99)} | ${r.errors} | ${f(trips / r.total, 2)} | ${f(inner / r.total, 1)} | ${f(pgPerReq, 2)} | ` +
        `${f(c.gateways, 0)} / ${f(c.redis, 0)} / ${f(c.postgres, 0)} / ${f(c.loadgen, 0)} / ${f(c.upstream, 0)} |`,
    );
  }
  lines.push('');
  lines.push(
    'Per-request ratios divide by every completed request of the run (warm-up included). Redis round trips = commands clients sent ' +
      '(EVALSHA/EVAL/PING/…); cmds in scripts = the redis.call()s those scripts ran (INFO commandstats counts both). ' +
      'CPU % = utime+stime over warm-up + measurement, 100% = one core; PG includes every backend.',
  );
  lines.push('');
  lines.push('Redis commands per request, by command:');
  lines.push('');
  const allNames = [...new Set(results.flatMap((r) => Object.keys(r.redisDelta)))].sort();
  const cmdNames = [...allNames.filter(isClientCommand), ...allNames.filter((k) => !isClientCommand(k)).map((k) => k)];
  lines.push('Client commands first, then (in italics) the commands run inside scripts; per request (total).');
  lines.push('');
  lines.push(`| instances | connections | requests | ${cmdNames.map((k) => (isClientCommand(k) ? `**${k}**` : `*${k}*`)).join(' | ')} |`);
  lines.push(`|---:|---:|---:|${cmdNames.map(() => '---:').join('|')}|`);
  for (const r of results) {
    lines.push(`| ${r.n} | ${r.concurrency} | ${r.total} | ${cmdNames.map((k) => (r.redisDelta[k] ? `${f(r.redisDelta[k] / r.total, 3)} (${r.redisDelta[k]})` : '0')).join(' | ')} |`);
  }
  if (results.some((r) => r.stmts)) {
    lines.push('');
    lines.push('PostgreSQL statements per request (pg_stat_statements, top 8 per row; calls, and rows per call):');
    for (const r of results) {
      lines.push('');
      lines.push(`N=${r.n}, ${r.concurrency} connections, ${r.total} requests:`);
      lines.push('');
      lines.push('| per req | calls | rows/call | statement |');
      lines.push('|---:|---:|---:|---|');
      for (const s of r.stmts.slice(0, 8)) {
        lines.push(`| ${f(s.calls / r.total, 3)} | ${s.calls} | ${f(s.rows / s.calls, 1)} | \`${s.query.slice(0, 110).replace(/\|/g, '\\|')}${s.query.length > 110 ? '…' : ''}\` |`);
      }
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (args.role === 'upstream') runUpstream();
else
  await main().catch(async (err) => {
    console.error(err);
    await cleanup();
    process.exit(1);
  });
