// Scenario: Redis goes away while requests are in flight on two instances sharing it and one
// PostgreSQL. The requests settle during the outage (answered 200, recorded in the ledger); the
// instance that served them then dies (SIGKILL) or stops (SIGTERM) before Redis is back. SPEC §7:
// the counters still end up equal to the ledger — the charge was kept with the record, and the
// surviving instance applies it — instead of the reservation lapsing and giving the worst case back.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { startPostgres } from '../helpers/postgres.js';
import { startRedis } from '../helpers/redis.js';
import { killAll, serve, sharedStoresConfig, type Server } from '../helpers/serve.js';

const ADMIN = 'owed-admin-token';
const TTL_MS = 1500;
/** Long enough for Redis to be stopped while every request waits on the upstream. */
const UPSTREAM_MS = 1500;
const TOP_UP = 10_000_000;

let redis: Awaited<ReturnType<typeof startRedis>>;
let postgres: Awaited<ReturnType<typeof startPostgres>>;
let upstream: FakeOpenAI;
let db: pg.Client;
let dir: string;
let configFile: string;
/** [survivor, victim]: the victim serves the requests caught by the outage. */
let servers: Server[] = [];

async function admin(method: string, path: string, body?: unknown) {
  const res = await fetch(`${servers[0]!.url}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function newAccount(plan: string) {
  const acct = await admin('POST', '/accounts', { plan });
  const key = await admin('POST', `/accounts/${acct.body.id}/keys`, {});
  return { accountId: acct.body.id as string, secret: key.body.key as string };
}

function chat(server: Server, secret: string) {
  return fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
  });
}

async function ledgerSum(accountId: string): Promise<{ rows: number; credits: number }> {
  const rows = (await admin('GET', `/usage?account=${accountId}&limit=10000`)).body.data as Array<{ credits: number }>;
  return { rows: rows.length, credits: rows.reduce((a, r) => a + r.credits, 0) };
}

/** The free plan's daily credits used; NaN while the survivor has not reconnected (503). */
async function used(secret: string): Promise<number> {
  const res = await fetch(`${servers[0]!.url}/v1/usage`, { headers: { authorization: `Bearer ${secret}` } });
  if (res.status !== 200) return Number.NaN;
  return ((await res.json()) as { rules: Array<{ id: string; used: number }> }).rules.find((r) => r.id === 'api_token')!.used;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function owedRows(): Promise<number> {
  return Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM owed_charges')).rows[0]!.n);
}

beforeAll(async () => {
  [redis, postgres, upstream] = await Promise.all([startRedis({ persistent: true }), startPostgres(), startFakeOpenAI({ delayMs: UPSTREAM_MS })]);
  upstream.setDefault({
    kind: 'json',
    body: {
      id: 'chatcmpl-o', object: 'chat.completion', created: 1, model: 'gpt-4o-mini',
      choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 12, completion_tokens: 400, total_tokens: 412 },
    },
  });
  dir = mkdtempSync(join(tmpdir(), 'tollgate-owed-'));
  configFile = join(dir, 'tollgate.yaml');
  writeFileSync(
    configFile,
    sharedStoresConfig({
      publicUrl: 'http://owed.test',
      storageUrl: postgres.url,
      limiterUrl: redis.url,
      adminToken: ADMIN,
      reservationTtlMs: TTL_MS,
      providers: [`{ id: openai, type: openai, baseUrl: "${upstream.url}", apiKey: sk-fake }`],
      models: ['{ id: gpt-4o-mini, kind: chat, provider: openai, price: { input: 0.15, output: 0.60 } }'],
    }),
  );
  servers = await Promise.all([serve(configFile), serve(configFile)]);
  db = new pg.Client({ connectionString: postgres.url });
  await db.connect();
}, 60_000);

afterAll(async () => {
  killAll();
  await db?.end().catch(() => {});
  await Promise.allSettled([redis?.stop(), postgres?.stop(), upstream?.close()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * Sends requests for a paid and a free account to the victim, stops Redis while they wait on the
 * upstream, and returns once all were answered (settled during the outage).
 */
async function servedThroughOutage(n: number) {
  const paid = await newAccount('paid');
  await admin('POST', `/accounts/${paid.accountId}/credits`, { amount: TOP_UP });
  const free = await newAccount('free');
  // One before the outage on each: the counters already hold something that must stay.
  for (const a of [paid, free]) expect((await chat(servers[1]!, a.secret)).status).toBe(200);
  const pending = [paid, free].flatMap((a) => Array.from({ length: n }, () => chat(servers[1]!, a.secret)));
  await sleep(UPSTREAM_MS / 3);
  await redis.stop();
  const statuses = await Promise.all(pending.map(async (r) => (await r).status));
  expect(statuses).toEqual(statuses.map(() => 200));
  // Every request has its record; the charges are owed.
  expect((await ledgerSum(paid.accountId)).rows).toBe(n + 1);
  expect((await ledgerSum(free.accountId)).rows).toBe(n + 1);
  expect(await owedRows()).toBe(2 * n);
  return { paid, free };
}

/** Waits until the counters equal the ledger (or the deadline), then asserts it. */
async function expectCountersEqualLedger(paid: { accountId: string }, free: { accountId: string; secret: string }) {
  const deadline = Date.now() + TTL_MS + 8000;
  let balance = 0;
  let freeUsed = 0;
  for (;;) {
    balance = (await admin('GET', `/accounts/${paid.accountId}`)).body.balance;
    freeUsed = await used(free.secret);
    const settled = balance === TOP_UP - (await ledgerSum(paid.accountId)).credits && freeUsed === (await ledgerSum(free.accountId)).credits;
    if ((settled && (await owedRows()) === 0) || Date.now() > deadline) break;
    await sleep(200);
  }
  expect(balance).toBe(TOP_UP - (await ledgerSum(paid.accountId)).credits);
  expect(freeUsed).toBe((await ledgerSum(free.accountId)).credits);
  expect(await owedRows()).toBe(0);
}

describe('charges owed to an unreachable Redis outlive the instance that owes them', () => {
  it('SIGKILL before Redis is back: the surviving instance applies them', async () => {
    const { paid, free } = await servedThroughOutage(4);
    const victim = servers[1]!;
    victim.proc.kill('SIGKILL');
    await victim.exited;
    await redis.restart();
    await expectCountersEqualLedger(paid, free);
    servers[1] = await serve(configFile);
  });

  it('a graceful stop with Redis still down: the charges stay in the ledger and are applied', async () => {
    const { paid, free } = await servedThroughOutage(3);
    const victim = servers[1]!;
    victim.proc.kill('SIGTERM');
    expect((await victim.exited).code).toBe(0);
    await redis.restart();
    await expectCountersEqualLedger(paid, free);
    servers[1] = await serve(configFile);
  });
});
