// Process plumbing shared by the benchmarks: spawning (optionally pinned with taskset) child node
// processes, readiness, /proc CPU and memory accounting, and cleanup of every child and temp dir on
// success, error, Ctrl-C or an unexpected exit.
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = join(ROOT, 'dist/cli/tollgate.js');
export const LIB = dirname(fileURLToPath(import.meta.url));

/** taskset present and at least 2 cores (and not disabled by the caller). */
export function hasTaskset(disabled = false) {
  if (disabled || os.cpus().length < 2) return false;
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Pins this process (all its threads) to one core. */
export function pinSelf(core) {
  execFileSync('taskset', ['-a', '-pc', String(core), String(process.pid)], { stdio: 'ignore' });
}

const children = new Set();
const tempDirs = new Set();

export function trackTempDir(dir) {
  tempDirs.add(dir);
  return dir;
}

/**
 * Spawns `node ...argv` (taskset execs node, so the pid is node's), optionally pinned to a core.
 * With waitJson, resolves once the child printed its first stdout line (parsed as JSON into info).
 */
export function spawnNode(argv, { core, pin = false, waitJson = false, stdout = 'pipe', cwd = ROOT, env = process.env } = {}) {
  const cmd = pin ? 'taskset' : process.execPath;
  const full = pin ? ['-c', String(core), process.execPath, ...argv] : argv;
  const child = spawn(cmd, full, { stdio: ['ignore', stdout, 'inherit'], cwd, env });
  children.add(child);
  child.once('exit', () => children.delete(child));
  if (!waitJson) {
    if (stdout === 'pipe') child.stdout.resume();
    return Promise.resolve({ child, info: null });
  }
  return new Promise((res, rej) => {
    let buf = '';
    const early = (code) => rej(new Error(`${argv.join(' ')} exited early (${code})`));
    child.once('exit', early);
    child.once('error', rej);
    const onData = (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        child.stdout.off('data', onData);
        child.stdout.resume();
        child.removeListener('exit', early);
        try {
          res({ child, info: JSON.parse(buf.slice(0, nl)) });
        } catch (err) {
          rej(err);
        }
      }
    };
    child.stdout.on('data', onData);
  });
}

/** SIGCONT + SIGTERM, SIGKILL after 5 s; waits for the exit. */
export async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGCONT'); // a benchmark may have stopped it (SIGSTOP); stopped, it would not see SIGTERM
  child.kill('SIGTERM');
  await Promise.race([done, sleep(5000).then(() => child.kill('SIGKILL'))]);
  await Promise.race([done, sleep(2000)]);
}

let cleaning = null;
/** Stops every child spawned through spawnNode and removes every tracked temp dir. Idempotent. */
export function cleanup() {
  cleaning ??= (async () => {
    await Promise.all([...children].map(stop));
    for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  })();
  return cleaning;
}

/** Ctrl-C / SIGTERM: clean up then exit 130. On any other exit path: SIGKILL what is left, remove the temp dirs. */
export function installCleanupHandlers() {
  for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => cleanup().then(() => process.exit(130)));
  process.once('exit', () => {
    for (const c of children) {
      try {
        c.kill('SIGKILL');
      } catch {}
    }
    for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  });
}

export function freePort() {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/** Polls url until it answers 2xx; fails early if child exits. */
export async function waitReady(url, { timeoutMs = 20_000, child } = {}) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) throw new Error(`process exited (${child.exitCode ?? child.signalCode}) before ${url} answered`);
    try {
      const r = await fetch(url);
      await r.arrayBuffer();
      if (r.ok) return;
    } catch {}
    await sleep(100);
  }
  throw new Error(`not ready: ${url}`);
}

/** utime+stime of a process, seconds (Linux; USER_HZ is 100). NaN if unknown. */
export function cpuOf(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

/** Resident set now and its peak (VmHWM), MB. null if unknown. */
export function memOf(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
    return { hwmMb: kb('VmHWM') / 1024, rssMb: kb('VmRSS') / 1024 };
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Servers under test that share a core (bench/run.mjs, bench/rate-sweep.mjs); each target is
// { pid, ... }.
// ---------------------------------------------------------------------------------------------

/**
 * Before a row: the target measured runs, the others are stopped (SIGSTOP) until their own rows.
 * They share core 1 with it, and an idle server is not idle for V8: a few seconds after its own
 * row it runs the memory reducer's full GCs — Portkey's after a fixed-rate row it could not keep up
 * with, hundreds of ms — on the core the next target is being measured on. Stopped, a server's
 * deferred work waits for its own rows. With `freeze` false (`--no-freeze`) they all keep running.
 */
export function focus(target, all, freeze = true) {
  if (!freeze) return;
  for (const t of all) if (t !== target) signal(t.pid, 'SIGSTOP');
  signal(target.pid, 'SIGCONT');
}

/** Lets every target run again. */
export function thaw(all) {
  for (const t of all) signal(t.pid, 'SIGCONT');
}

function signal(pid, sig) {
  try {
    process.kill(pid, sig);
  } catch {
    // Gone already: its row fails on its own.
  }
}

/**
 * Waits until no server under test is still busy (each under 5 % of a core over 250 ms; at most
 * 15 s): an overloaded target — Portkey at Tollgate's half load — can keep its core busy after its
 * row ended, and the next row on that core must not pay for it. Returns the seconds waited.
 */
export async function quiesce(all) {
  const t0 = performance.now();
  while (performance.now() - t0 < 15_000) {
    const before = all.map((t) => cpuOf(t.pid));
    await sleep(250);
    if (all.every((t, i) => (cpuOf(t.pid) - before[i]) / 0.25 < 0.05)) break;
  }
  return (performance.now() - t0) / 1000;
}

/** Runs fn while accounting the target's CPU (utime+stime) over the wall time; adds cpuPct and cpuMsPerReq. */
export async function withCpu(t, fn) {
  const c0 = cpuOf(t.pid);
  const w0 = performance.now();
  const r = await fn();
  const cpuS = cpuOf(t.pid) - c0;
  const wallS = (performance.now() - w0) / 1000;
  return { ...r, cpuPct: (100 * cpuS) / wallS, cpuMsPerReq: (1000 * cpuS) / r.total };
}
