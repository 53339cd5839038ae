// Scenario: `tollgate serve` on PostgreSQL whose URL carries the password where node-postgres reads
// it — percent-encoding forgotten (`p@ss`, it takes the last `@`) or as a `password=` parameter, as
// libpq allows. The `tollgate listening` line names the storage without either (SPEC §11: logs
// never carry a secret). A SIGTERM sent as soon as that line appears closes the server cleanly
// (exit 0): with Redis it used to arrive before the handlers were installed, and killed it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, startPostgres } from '../helpers/postgres.js';
import { startRedis } from '../helpers/redis.js';
import { killAll, serve } from '../helpers/serve.js';

let redis: Awaited<ReturnType<typeof startRedis>>;
let postgres: Awaited<ReturnType<typeof startPostgres>>;
let dir: string;

beforeAll(async () => {
  [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
  dir = mkdtempSync(join(tmpdir(), 'tollgate-listening-'));
}, 60_000);
afterAll(async () => {
  killAll();
  await Promise.all([redis?.stop(), postgres?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the tollgate listening line', () => {
  it('names the storage without its password, wherever the URL carries it, and closes cleanly on a SIGTERM right after', async () => {
    const db = new URL(await freshDatabase(postgres.url));
    const urls = [
      // node-postgres splits at the last `@`: the password is `raw@secret-1` (trust auth ignores it).
      `postgres://postgres:raw@secret-1@127.0.0.1:${db.port}${db.pathname}`,
      `postgres://postgres@127.0.0.1:${db.port}${db.pathname}?sslmode=disable&password=query-secret-2`,
    ];
    for (const [i, url] of urls.entries()) {
      const file = join(dir, `tollgate-${i}.yaml`);
      writeFileSync(file, [`storage: { url: "${url}" }`, `limiter: { url: "${redis.url}" }`, 'logging: { level: info }'].join('\n'));
      const server = await serve(file);
      const line = server.output().split('\n').find((l) => l.includes('"msg":"tollgate listening"'))!;
      server.proc.kill('SIGTERM');
      expect((await server.exited).code).toBe(0);
      expect(JSON.parse(line).storage).toBe(`postgres://…@127.0.0.1:${db.port}${db.pathname}${i === 1 ? '?…' : ''}`);
      expect(server.output()).not.toMatch(/secret-1|query-secret-2/);
    }
  });
});
