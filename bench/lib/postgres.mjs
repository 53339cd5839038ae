// A throwaway PostgreSQL for a benchmark, from Debian's server binaries: initdb into `dir`, started
// on a free loopback port with durability as shipped (fsync on, synchronous_commit on), database
// `tollgate` created. As root it runs as the `postgres` user (PostgreSQL refuses root). The caller
// stops it: SIGINT to `pid` (the postmaster) is a fast shutdown.
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { freePort } from './proc.mjs';

export function pgBinDir() {
  const root = '/usr/lib/postgresql';
  const v = existsSync(root) ? readdirSync(root).filter((x) => /^\d+$/.test(x) && existsSync(join(root, x, 'bin', 'postgres'))).sort((a, b) => b - a)[0] : undefined;
  if (v) return join(root, v, 'bin');
  throw new Error('PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin');
}

/**
 * `tmp`: a temp dir the caller removes (its `pg/` is the cluster). `wrap(cmd, argv)` → [cmd, argv]
 * (e.g. taskset); `onSpawn(child)` sees the server process before it answers. pg_stat_statements is
 * loaded when installed (`pss`: the extension was created).
 */
export async function startPostgres(tmp, { wrap = (cmd, argv) => [cmd, argv], onSpawn = () => {} } = {}) {
  const bin = pgBinDir();
  const root = process.getuid?.() === 0;
  const prefix = root ? ['runuser', '-u', 'postgres', '--'] : [];
  const dir = join(tmp, 'pg');
  execFileSync('mkdir', ['-p', dir]);
  if (root) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(tmp, uid, gid); // runuser must be able to traverse the temp dir
    chownSync(dir, uid, gid);
  }
  const dataDir = join(dir, 'data');
  const [h, ...rest] = [...prefix, join(bin, 'initdb'), '-D', dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8'];
  execFileSync(h, rest, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const havePss = existsSync(join(bin, '..', 'lib', 'pg_stat_statements.so'));
  const port = await freePort();
  const pgArgs = [
    '-D', dataDir, '-k', dir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1',
    ...(havePss ? ['-c', 'shared_preload_libraries=pg_stat_statements', '-c', 'pg_stat_statements.track=all'] : []),
  ];
  const [head, ...tail] = [...prefix, join(bin, 'postgres'), ...pgArgs];
  const [cmd, argv] = wrap(head, tail);
  const child = spawn(cmd, argv, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (c) => (log = (log + c).slice(-4000)));
  onSpawn(child);
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const end = Date.now() + 20_000;
  for (;;) {
    const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 1000 });
    try {
      await c.connect();
      await c.query('SELECT 1');
      await c.query('CREATE DATABASE tollgate');
      await c.end();
      break;
    } catch (err) {
      await c.end().catch(() => {});
      if (Date.now() > end || child.exitCode !== null) throw new Error(`postgres did not start: ${err}\n${log}`);
      await sleep(100);
    }
  }
  const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const url = `postgres://postgres@127.0.0.1:${port}/tollgate`;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  let pss = false;
  if (havePss) {
    try {
      await client.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
      pss = true;
    } catch {}
  }
  const version = (await client.query('SHOW server_version')).rows[0].server_version;
  return { url, client, pid, pss, version, child };
}
