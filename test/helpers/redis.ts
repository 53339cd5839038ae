// A throwaway redis-server for tests and benchmarks: 127.0.0.1, a port the OS picked, nothing
// persisted, files in a temp dir. Needs the redis-server binary (Debian: apt-get install redis-server).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisServer {
  url: string;
  port: number;
  /** The current process's pid (changes on restart). */
  pid: number;
  /** SIGTERM, then waits until the process has exited. */
  stop(): Promise<void>;
  /** stop, then a new server on the same port. */
  restart(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** True when something on the port answers PING with +PONG. */
async function pings(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let data = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      data += chunk.toString();
      if (data.includes('\r\n')) done(data.startsWith('+PONG'));
    });
  });
}

function spawnServer(port: number, dir: string, persistent: boolean): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', persistent ? 'yes' : 'no', '--appendfsync', 'everysec', '--dir', dir, '--daemonize', 'no'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    const keep = (c: Buffer) => (output = (output + c.toString()).slice(-4000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'ENOENT'
          ? new Error('redis-server not found on PATH: install it (Debian/Ubuntu: apt-get install redis-server)')
          : err,
      );
    });
    child.once('exit', (code, signal) => {
      reject(new Error(`redis-server exited before answering PING (code ${code}, signal ${signal}):\n${output.slice(-2000)}`));
    });
    const deadline = Date.now() + START_TIMEOUT_MS;
    const poll = async (): Promise<void> => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (await pings(port)) {
        child.removeAllListeners('exit');
        // Keep draining its output so a full pipe never blocks it.
        resolve(child);
        return;
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        reject(new Error(`redis-server on port ${port} did not answer PING within ${START_TIMEOUT_MS} ms:\n${output.slice(-2000)}`));
        return;
      }
      setTimeout(() => void poll(), 25);
    };
    child.once('spawn', () => void poll());
  });
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid!, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
  }, STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

/**
 * `persistent`: append-only file on, as production runs it (balances live in Redis), so a restart
 * keeps every counter and balance.
 */
export async function startRedis(opts: { persistent?: boolean } = {}): Promise<RedisServer> {
  const persistent = opts.persistent ?? false;
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-redis-'));
  const port = await freePort();
  let child: ChildProcess;
  try {
    child = await spawnServer(port, dir, persistent);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    async stop() {
      await stopProcess(child);
    },
    async restart() {
      await stopProcess(child);
      child = await spawnServer(port, dir, persistent);
      server.pid = child.pid!;
    },
  };
  // A server and its temp dir never outlive the test process, even one that forgot stop().
  process.once('exit', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  return server;
}

/**
 * One command on a connection of its own, its reply's first bytes: for what a test does to the
 * server behind the client's back (CLIENT PAUSE), without going through the client under test.
 */
export function redisCommand(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(port, '127.0.0.1');
    sock.once('error', reject);
    sock.once('data', (d) => {
      resolve(d.toString());
      sock.end();
    });
    sock.write(`${command}\r\n`);
  });
}
