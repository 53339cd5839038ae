// A throwaway PostgreSQL server for tests: initdb into a temp dir, start `postgres` on a free
// loopback port with durability switched off (a test server is disposable, so fsync buys nothing),
// hand back a URL. PostgreSQL refuses to run as root, so as root every server command runs through
// `runuser -u postgres`.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { chown } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:<port>/tollgate` */
  url: string;
  port: number;
  /** The postmaster's PID (not runuser's: runuser forks and waits for its child). */
  pid: number;
  stop(): Promise<void>;
  /**
   * A fast shutdown (clients disconnected), then, `downMs` later, the same data directory served
   * again on the same port.
   */
  restart(downMs?: number): Promise<void>;
}

/** The directory holding initdb and postgres: the newest /usr/lib/postgresql/<v>/bin, else PATH. */
function findBinDir(): string {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, 'bin', 'postgres')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0] !== undefined) return join(root, versions[0], 'bin');
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres'))) return dir;
  }
  throw new Error(
    'PostgreSQL server binaries (initdb, postgres) not found in /usr/lib/postgresql/*/bin or on PATH; ' +
      'install them with `apt-get install postgresql`',
  );
}

interface RunAs {
  /** Prefix for every server command: `runuser -u postgres --` as root, nothing otherwise. */
  prefix: string[];
  /** uid/gid to chown the temp dir to, when running through runuser. */
  owner: { uid: number; gid: number } | null;
}

async function runAs(): Promise<RunAs> {
  const uid = process.getuid?.();
  if (uid !== 0) return { prefix: [], owner: null };
  const [u, g] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]).catch(
    (err: unknown) => {
      throw new Error('running as root but there is no `postgres` user to run the server as', { cause: err });
    },
  );
  return {
    prefix: ['runuser', '-u', 'postgres', '--'],
    owner: { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) },
  };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function command(as: RunAs, bin: string, args: string[]): [string, string[]] {
  const [head, ...rest] = [...as.prefix, bin, ...args];
  return [head as string, rest];
}

function serverUrl(port: number, database: string): string {
  return `postgres://postgres@127.0.0.1:${port}/${database}`;
}

/** Resolves once a client can connect; rejects early if the server process dies. */
async function waitReady(port: number, child: ChildProcess, log: () => string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`postgres exited (${child.exitCode ?? child.signalCode}) before accepting connections:\n${log()}`);
    }
    const client = new pg.Client({ connectionString: serverUrl(port, 'postgres'), connectionTimeoutMillis: 1000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return;
    } catch (err) {
      lastError = err;
    } finally {
      await client.end().catch(() => {});
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`postgres did not accept connections within ${timeoutMs} ms:\n${log()}`, { cause: lastError });
}

function readPostmasterPid(dataDir: string): number {
  const first = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0] ?? '';
  const pid = Number(first.trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`unreadable postmaster.pid in ${dataDir}: '${first}'`);
  return pid;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (alive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

export async function startPostgres(): Promise<PostgresServer> {
  const bin = findBinDir();
  const as = await runAs();
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-pg-'));
  try {
    if (as.owner) await chown(dir, as.owner.uid, as.owner.gid);
    const dataDir = join(dir, 'data');
    const [initCmd, initArgs] = command(as, join(bin, 'initdb'), [
      '-D', dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8',
    ]);
    await run(initCmd, initArgs, { cwd: dir }).catch((err: { stderr?: string }) => {
      throw new Error(`initdb failed: ${err.stderr ?? String(err)}`, { cause: err });
    });

    // One postgres process on `port`; resolves once it accepts connections.
    const launch = async (port: number) => {
      const [cmd, args] = command(as, join(bin, 'postgres'), [
        '-D', dataDir, '-k', dir, '-p', String(port),
        '-c', 'listen_addresses=127.0.0.1',
        '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
      ]);
      const child = spawn(cmd, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
      let log = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        log = (log + chunk.toString()).slice(-8000);
      });
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      try {
        await waitReady(port, child, () => log);
      } catch (err) {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        return { ok: false as const, err, log };
      }
      return { ok: true as const, exited, pid: readPostmasterPid(dataDir) };
    };
    /** Fast shutdown (SIGINT: disconnect clients, abort their transactions, checkpoint, exit). */
    const halt = async (pid: number, exited: Promise<void>) => {
      if (alive(pid)) process.kill(pid, 'SIGINT');
      if (!(await waitGone(pid, 15_000))) {
        process.kill(pid, 'SIGKILL');
        await waitGone(pid, 5_000);
      }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
    };

    // A free port can be taken between probing and binding; retry a few times on that race.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const launched = await launch(port);
      if (!launched.ok) {
        if (attempt < 3 && /could not bind|address already in use/i.test(launched.log)) continue;
        throw launched.err;
      }
      let { pid, exited } = launched;
      // If the test process dies without afterAll, don't leave the server behind (immediate shutdown).
      const onExit = () => {
        try {
          process.kill(pid, 'SIGQUIT');
        } catch {
          // already gone
        }
      };
      process.once('exit', onExit);

      const admin = new pg.Client({ connectionString: serverUrl(port, 'postgres') });
      await admin.connect();
      try {
        await admin.query('CREATE DATABASE tollgate');
      } finally {
        await admin.end();
      }

      let stopping: Promise<void> | undefined;
      const server: PostgresServer = {
        url: serverUrl(port, 'tollgate'),
        port,
        pid,
        stop() {
          stopping ??= (async () => {
            process.removeListener('exit', onExit);
            await halt(pid, exited);
            rmSync(dir, { recursive: true, force: true });
          })();
          return stopping;
        },
        async restart(downMs = 0) {
          await halt(pid, exited);
          await new Promise((r) => setTimeout(r, downMs));
          const again = await launch(port);
          if (!again.ok) throw again.err;
          ({ pid, exited } = again);
          server.pid = pid;
        },
      };
      return server;
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

let dbCounter = 0;

/** Creates a new, empty database on the server behind `url`; returns its URL. */
export async function freshDatabase(url: string): Promise<string> {
  const name = `tollgate_${process.pid}_${++dbCounter}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    // The name is built above from [a-z0-9_] only, so quoting it is enough.
    await client.query(`CREATE DATABASE "${name}"`);
  } finally {
    await client.end();
  }
  const fresh = new URL(url);
  fresh.pathname = `/${name}`;
  return fresh.toString();
}
