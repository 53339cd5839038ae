import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from './index.js';
import { latestVersion, migrate, migrations } from './migrations.js';
import { DatabaseInUseError, ServerLease, hostIdentity } from './lease.js';
import { allCheckpointersStopped } from './checkpointer.js';

const dir = mkdtempSync(join(tmpdir(), 'tollgate-lease-'));
let n = 0;
const freshFile = () => join(dir, `l${++n}.db`);
// The workers of closed databases remove their -wal and -shm files as they exit: wait for them,
// or the removal races them (ENOTEMPTY).
afterAll(async () => {
  await allCheckpointersStopped();
  rmSync(dir, { recursive: true, force: true });
});

/** The pid of a process that has exited (so no process runs under it now, barring reuse). */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid!;
}

describe('ServerLease (one server per database file)', () => {
  it('refuses a second holder while the first one lives, and lets it in once released', async () => {
    const file = freshFile();
    const a = openDatabase(`sqlite:${file}`);
    const b = openDatabase(`sqlite:${file}`);
    const first = new ServerLease(a, file, { heartbeatMs: 20 });
    await first.acquire();
    const second = new ServerLease(b, file, { heartbeatMs: 20 });
    const refused = await second.acquire().then(
      () => null,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(DatabaseInUseError);
    expect((refused as DatabaseInUseError).holder).toMatchObject({ pid: process.pid, host: hostIdentity() });
    expect((refused as Error).message).toMatch(/one server per SQLite file/);
    first.release();
    await second.acquire();
    second.release();
    a.close();
    b.close();
  });

  it('takes over at once from a holder on this host whose process is gone (kill -9)', async () => {
    const file = freshFile();
    const db = openDatabase(`sqlite:${file}`);
    const now = Date.now();
    db.prepare('INSERT INTO server_lease (id, owner, host, pid, heartbeat_at) VALUES (1, ?, ?, ?, ?)').run('dead', hostIdentity(), deadPid(), now);
    const lease = new ServerLease(db, file, { heartbeatMs: 60_000 });
    await lease.acquire();
    expect(db.prepare('SELECT pid FROM server_lease').pluck().get()).toBe(process.pid);
    lease.release();
    db.close();
  });

  it('takes over at once from an earlier process that ran under this very pid (a restarted container)', async () => {
    const file = freshFile();
    const db = openDatabase(`sqlite:${file}`);
    db.prepare('INSERT INTO server_lease (id, owner, host, pid, heartbeat_at) VALUES (1, ?, ?, ?, ?)').run('before-restart', hostIdentity(), process.pid, Date.now());
    const lease = new ServerLease(db, file, { heartbeatMs: 60_000 });
    await lease.acquire();
    expect(db.prepare('SELECT owner FROM server_lease').pluck().get()).not.toBe('before-restart');
    lease.release();
    db.close();
  });

  it('does not take over from a holder on this hostname in another pid namespace (its pid means nothing here)', async () => {
    const file = freshFile();
    const db = openDatabase(`sqlite:${file}`);
    let clock = 1_000_000;
    const insert = db.prepare('INSERT OR REPLACE INTO server_lease (id, owner, host, pid, heartbeat_at) VALUES (1, ?, ?, ?, ?)');
    // A container sharing the hostname (host networking) whose server runs under a pid not running here.
    const otherNamespace = `${hostname()} pid:[1]`;
    insert.run('neighbour', otherNamespace, deadPid(), clock);
    const lease = new ServerLease(db, file, {
      heartbeatMs: 10,
      staleMs: 30,
      now: () => {
        clock += 5;
        insert.run('neighbour', otherNamespace, deadPid(), clock);
        return clock;
      },
    });
    await expect(lease.acquire()).rejects.toBeInstanceOf(DatabaseInUseError);
    // This process's own identity names its namespace (Linux).
    expect(hostIdentity()).toMatch(/ pid:\[\d+\]$/);
    db.close();
  });

  it('waits for a holder on another host to go stale, and takes over then', async () => {
    const file = freshFile();
    const db = openDatabase(`sqlite:${file}`);
    let clock = 1_000_000;
    const insert = db.prepare('INSERT OR REPLACE INTO server_lease (id, owner, host, pid, heartbeat_at) VALUES (1, ?, ?, ?, ?)');
    // Heartbeating meanwhile: refused at its first heartbeat, not when the whole wait runs out.
    insert.run('other', 'elsewhere', 4242, clock);
    let reads = 0;
    const live = new ServerLease(db, file, {
      heartbeatMs: 10,
      staleMs: 30,
      now: () => {
        reads += 1;
        clock += 1;
        if (reads === 4) insert.run('other', 'elsewhere', 4242, clock);
        return clock;
      },
    });
    await expect(live.acquire()).rejects.toBeInstanceOf(DatabaseInUseError);
    expect(clock - 1_000_000).toBeLessThan(30); // well inside staleMs + heartbeatMs of its clock

    // Silent: taken over once its last heartbeat is staleMs old.
    const stale = new ServerLease(db, file, { heartbeatMs: 10, staleMs: 30, now: () => (clock += 5) });
    await stale.acquire();
    expect(db.prepare('SELECT host FROM server_lease').pluck().get()).toBe(hostIdentity());
    stale.release();
    db.close();
  });

  it('never waits on the write lock to heartbeat: it tries again once the holder (the file worker) lets go', async () => {
    const file = freshFile();
    const db = openDatabase(`sqlite:${file}`);
    const other = openDatabase(`sqlite:${file}`);
    const errors: unknown[] = [];
    const lease = new ServerLease(db, file, { heartbeatMs: 10, onError: (err) => errors.push(err) });
    await lease.acquire();
    const beatAt = () => db.prepare('SELECT heartbeat_at FROM server_lease').pluck().get() as number;
    // The lock is held by a connection of this same thread: a heartbeat that waited on it (the
    // connection's busy timeout is 5 s) would block the event loop, so this lock could never be let
    // go, and the wait would end in SQLITE_BUSY thrown out of the timer.
    other.prepare('BEGIN IMMEDIATE').run();
    const before = beatAt();
    await new Promise((r) => setTimeout(r, 100));
    expect(beatAt()).toBe(before);
    other.prepare('COMMIT').run();
    await new Promise((r) => setTimeout(r, 100));
    expect(beatAt()).toBeGreaterThan(before);
    expect(errors).toEqual([]);
    expect(db.pragma('busy_timeout', { simple: true })).toBe(5000);
    lease.release();
    other.close();
    db.close();
  });

  it('tells the holder when another server took the lease from it', async () => {
    const file = freshFile();
    const db = openDatabase(`sqlite:${file}`);
    const lost: unknown[] = [];
    const lease = new ServerLease(db, file, { heartbeatMs: 10, onLost: (h) => lost.push(h) });
    await lease.acquire();
    db.prepare("UPDATE server_lease SET owner = 'thief', host = 'elsewhere', pid = 7").run();
    await new Promise((r) => setTimeout(r, 50));
    expect(lost).toEqual([expect.objectContaining({ host: 'elsewhere', pid: 7 })]);
    lease.release();
    expect(db.prepare('SELECT owner FROM server_lease').pluck().get()).toBe('thief');
    db.close();
  });
});

describe('opening a file at an older schema version while a server serves from it', () => {
  /** A file at migration 8 (builds of 2026-11-25) whose lease row is `lease`, as its server left it. */
  function olderFile(lease: { host: string; pid: number; heartbeatAt: number }): string {
    const file = freshFile();
    const db = new Database(file);
    migrate(db, migrations.slice(0, 8));
    db.prepare('INSERT INTO server_lease (id, owner, host, pid, heartbeat_at) VALUES (1, ?, ?, ?, ?)').run('old', lease.host, lease.pid, lease.heartbeatAt);
    db.close();
    return file;
  }
  const versionOf = (file: string) => {
    const db = new Database(file, { readonly: true });
    const v = db.prepare('SELECT MAX(version) FROM schema_migrations').pluck().get();
    db.close();
    return v;
  };

  // Migrated under it, the older server ran on a schema it does not know, and could never start on
  // the file again (SchemaTooNewError) — though the new server then refused to start and the
  // operator upgraded nothing. A CLI command of the new version did the same.
  it('refuses, leaving the file as it was, while the holder heartbeats', async () => {
    const file = olderFile({ host: 'old-server', pid: 1, heartbeatAt: Date.now() });
    // The older server: another process heartbeating every 50 ms.
    const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
    const holder = spawn(process.execPath, ['-e', `
      const db = new (require(${JSON.stringify(sqlite)}))(${JSON.stringify(file)});
      db.pragma('busy_timeout = 5000');
      setInterval(() => db.prepare('UPDATE server_lease SET heartbeat_at = ?').run(Date.now()), 50);
      console.log('beating');`], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise((resolve) => holder.stdout!.once('data', resolve));
      const refused = (() => {
        try {
          openDatabase(`sqlite:${file}`).close();
          return null;
        } catch (err) {
          return err;
        }
      })();
      expect(refused).toBeInstanceOf(DatabaseInUseError);
      expect(refused).toMatchObject({ holder: { host: 'old-server', pid: 1 }, migration: { found: 8, latest: latestVersion } });
      expect((refused as Error).message).toMatch(/would migrate to version \d+ under it: stop that server first/);
      expect(versionOf(file)).toBe(8);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('migrates it at once when the holder on this host is gone (kill -9), or its heartbeat is stale', () => {
    for (const lease of [
      { host: hostIdentity(), pid: deadPid(), heartbeatAt: Date.now() },
      { host: 'old-server', pid: 1, heartbeatAt: Date.now() - 60_000 },
    ]) {
      const file = olderFile(lease);
      openDatabase(`sqlite:${file}`).close();
      expect(versionOf(file)).toBe(latestVersion);
    }
  });
});
