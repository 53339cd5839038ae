// Scenario: three gateway processes behind no balancer but the test's round-robin, sharing one
// Redis (the limiter) and one PostgreSQL (accounts, keys, ledger). SPEC §7, §11: the same exact
// limits as one instance — not three times the limit, not a race.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countChatPrompt } from '../../src/core/tokens.js';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { startPostgres } from '../helpers/postgres.js';
import { startRedis } from '../helpers/redis.js';
import { killAll, serve, sharedStoresConfig, type Server } from '../helpers/serve.js';

const ADMIN = 'cluster-admin-token';
const TTL_MS = 1500;
const messages = [{ role: 'user', content: 'hi' }];
const PROMPT = countChatPrompt({ messages });
/** gpt-4o-mini, output clamped to 512 on the free plan. */
const WORST = Math.ceil((PROMPT * 300_000 + 512 * 1_200_000) / 1e6);
/** The fake reports the real prompt count and 400 output tokens: actual below worst, so settlement refunds. */
const ACTUAL = Math.ceil((PROMPT * 300_000 + 400 * 1_200_000) / 1e6);

let redis: Awaited<ReturnType<typeof startRedis>>;
let pg: Awaited<ReturnType<typeof startPostgres>>;
let upstream: FakeOpenAI;
let soloUpstream: FakeOpenAI;
let dir: string;
let configFile: string;
let servers: Server[] = [];

const completion = (completionTokens: number) => ({
  kind: 'json' as const,
  body: {
    id: 'chatcmpl-c', object: 'chat.completion', created: 1, model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: PROMPT, completion_tokens: completionTokens, total_tokens: PROMPT + completionTokens },
  },
});

async function admin(method: string, path: string, body?: unknown, via = servers[0]!) {
  const res = await fetch(`${via.url}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function newAccount(plan = 'free') {
  const acct = await admin('POST', '/accounts', { plan });
  const key = await admin('POST', `/accounts/${acct.body.id}/keys`, {}, servers[1]);
  return { accountId: acct.body.id as string, keyId: key.body.id as string, secret: key.body.key as string };
}

function chat(server: Server, secret: string, model = 'gpt-4o-mini') {
  return fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages }),
  });
}

async function usedOf(server: Server, secret: string, rule = 'api_token'): Promise<number> {
  const res = await fetch(`${server.url}/v1/usage`, { headers: { authorization: `Bearer ${secret}` } });
  const json = (await res.json()) as { rules: Array<{ id: string; used: number }> };
  return json.rules.find((r) => r.id === rule)!.used;
}

async function ledger(accountId: string) {
  return (await admin('GET', `/usage?account=${accountId}&limit=10000`)).body.data as Array<{ requestId: string; credits: number; status: string }>;
}

const sum = (rows: Array<{ credits: number }>) => rows.reduce((a, r) => a + r.credits, 0);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  [redis, pg, upstream, soloUpstream] = await Promise.all([startRedis({ persistent: true }), startPostgres(), startFakeOpenAI({ delayMs: 20 }), startFakeOpenAI({ delayMs: 5 })]);
  upstream.setDefault(completion(400));
  soloUpstream.setDefault(completion(400));
  dir = mkdtempSync(join(tmpdir(), 'tollgate-cluster-'));
  configFile = join(dir, 'tollgate.yaml');
  writeFileSync(
    configFile,
    sharedStoresConfig({
      publicUrl: 'http://cluster.test',
      storageUrl: pg.url,
      limiterUrl: redis.url,
      adminToken: ADMIN,
      reservationTtlMs: TTL_MS,
      providers: [`{ id: openai, type: openai, baseUrl: "${upstream.url}", apiKey: sk-fake }`, `{ id: solo, type: openai, baseUrl: "${soloUpstream.url}", apiKey: sk-fake }`],
      models: ['{ id: gpt-4o-mini, kind: chat, provider: openai, price: { input: 0.15, output: 0.60 } }', '{ id: solo-model, kind: chat, provider: solo, price: { input: 0.15, output: 0.60 } }'],
      plans: ['solo: { rules: [ { id: one_at_a_time, measure: concurrent, limit: 1 } ] }'],
    }),
  );
  servers = await Promise.all([serve(configFile), serve(configFile), serve(configFile)]);
}, 60_000);

afterAll(async () => {
  killAll();
  await Promise.allSettled([redis?.stop(), pg?.stop(), upstream?.close(), soloUpstream?.close()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('three instances, one Redis, one PostgreSQL', () => {
  it('1,000 parallel requests spread over the instances: admitted ≤ limit, = ledger, refusals only when the worst case did not fit', async () => {
    const { accountId, secret } = await newAccount();
    const responses = await Promise.all(Array.from({ length: 1000 }, (_, i) => chat(servers[i % 3]!, secret)));
    let admittedCredits = 0;
    let admitted = 0;
    for (const res of responses) {
      if (res.status === 200) {
        admitted++;
        admittedCredits += Number(res.headers.get('x-tollgate-credits-used'));
      } else {
        expect(res.status).toBe(403);
        expect(((await res.json()) as any).error.code).toBe('resource_exhausted');
        expect(Number(res.headers.get('x-ratelimit-remaining-tokens'))).toBeLessThan(WORST);
      }
    }
    expect(admitted).toBeGreaterThan(0);
    expect(admittedCredits).toBeLessThanOrEqual(50_000);
    const rows = await ledger(accountId);
    expect(rows).toHaveLength(admitted);
    expect(sum(rows)).toBe(admittedCredits);
    for (const s of servers) expect(await usedOf(s, secret)).toBe(admittedCredits);
    // Probe one at a time until refused: then nothing more could fit.
    let used = admittedCredits;
    for (;;) {
      const res = await chat(servers[0]!, secret);
      if (res.status !== 200) break;
      used += Number(res.headers.get('x-tollgate-credits-used'));
    }
    expect(50_000 - used).toBeLessThan(WORST);
    expect(await usedOf(servers[2]!, secret)).toBe(used);
  });

  it('one request at a time holds across instances', async () => {
    const { accountId, secret } = await newAccount('solo');
    let admitted = 0;
    for (let wave = 0; wave < 10; wave++) {
      const responses = await Promise.all(Array.from({ length: 9 }, (_, i) => chat(servers[i % 3]!, secret, 'solo-model')));
      for (const res of responses) {
        if (res.status === 200) admitted++;
        else expect(((await res.json()) as any).error.code).toBe('concurrency_limit');
      }
    }
    expect(soloUpstream.maxInFlight).toBe(1);
    expect(admitted).toBeGreaterThanOrEqual(10);
    expect(await ledger(accountId)).toHaveLength(admitted);
    expect(soloUpstream.requests).toHaveLength(admitted);
  });

  it('a revoked key fails on every instance within one second; a plan change reaches every instance', async () => {
    const { accountId, keyId, secret } = await newAccount();
    for (const s of servers) expect((await chat(s, secret)).status).toBe(200);
    await admin('PATCH', `/accounts/${accountId}`, { plan: 'solo' }, servers[2]);
    const changedAt = Date.now();
    for (const s of servers) {
      for (;;) {
        const u = await fetch(`${s.url}/v1/usage`, { headers: { authorization: `Bearer ${secret}` } });
        if (((await u.json()) as any).plan === 'solo') break;
        expect(Date.now() - changedAt).toBeLessThan(1000);
        await sleep(25);
      }
    }
    await admin('DELETE', `/keys/${keyId}`, undefined, servers[1]);
    const revokedAt = Date.now();
    for (const s of servers) {
      for (;;) {
        if ((await chat(s, secret)).status === 401) break;
        expect(Date.now() - revokedAt).toBeLessThan(1000);
        await sleep(25);
      }
    }
  });

  it("a key's own limit holds across instances under 300 parallel requests, and a change of it reaches every instance within a second", async () => {
    const { accountId, keyId, secret } = await newAccount();
    const LIMIT = 20 * WORST;
    expect((await admin('PATCH', `/keys/${keyId}`, { limit: { credits: LIMIT, window: 'day' } }, servers[2])).status).toBe(200);
    const setAt = Date.now();
    // Every instance counts under it within a second (the PostgreSQL trigger moves the credentials version).
    for (const s of servers) {
      for (;;) {
        const u = (await (await fetch(`${s.url}/v1/usage`, { headers: { authorization: `Bearer ${secret}` } })).json()) as any;
        if (u.rules.some((r: { id: string }) => r.id === 'key_limit')) break;
        expect(Date.now() - setAt).toBeLessThan(1000);
        await sleep(25);
      }
    }
    const responses = await Promise.all(Array.from({ length: 300 }, (_, i) => chat(servers[i % 3]!, secret)));
    let admittedCredits = 0;
    for (const res of responses) {
      if (res.status === 200) admittedCredits += Number(res.headers.get('x-tollgate-credits-used'));
      else expect(((await res.json()) as any).error.code).toBe('key_limit_exceeded');
    }
    expect(admittedCredits).toBeGreaterThan(0);
    expect(admittedCredits).toBeLessThanOrEqual(LIMIT);
    expect(sum(await ledger(accountId))).toBe(admittedCredits);
    for (const s of servers) expect(await usedOf(s, secret, 'key_limit')).toBe(admittedCredits);
    // Lifted on one instance: served on every one within a second.
    await admin('PATCH', `/keys/${keyId}`, { limit: null }, servers[0]);
    const liftedAt = Date.now();
    for (;;) {
      const statuses = await Promise.all(servers.map(async (s) => (await chat(s, secret)).status));
      if (statuses.every((st) => st === 200)) break;
      expect(Date.now() - liftedAt).toBeLessThan(1000);
      await sleep(25);
    }
  });

  it('a payment method marked on one instance while another changes the plan: the plan change stands', async () => {
    // Either order of the two calls ends on `solo` (a payment method moves only a free account to
    // paid); one read the plan, the other wrote solo, then the first wrote paid over it.
    for (let i = 0; i < 20; i++) {
      const { accountId } = await newAccount();
      const [plan, card] = await Promise.all([
        admin('PATCH', `/accounts/${accountId}`, { plan: 'solo' }, servers[0]),
        admin('PATCH', `/accounts/${accountId}`, { paymentMethod: true }, servers[1]),
      ]);
      expect([plan.status, card.status]).toEqual([200, 200]);
      const after = (await admin('GET', `/accounts/${accountId}`, undefined, servers[2])).body;
      expect({ plan: after.plan, paymentMethod: after.paymentMethod }).toEqual({ plan: 'solo', paymentMethod: true });
    }
  });

  it('a top-up under one Idempotency-Key, sent 60 times across the three instances at once, adds once', async () => {
    const { accountId } = await newAccount('paid');
    const answers = await Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        const res = await fetch(`${servers[i % 3]!.url}/admin/v1/accounts/${accountId}/credits`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json', 'idempotency-key': 'wire-2026-12-05' },
          body: JSON.stringify({ amount: 40_000 }),
        });
        return { status: res.status, replayed: res.headers.get('idempotent-replayed') === 'true' };
      }),
    );
    expect(answers.filter((a) => a.status === 200 && !a.replayed)).toHaveLength(1);
    expect(answers.every((a) => a.status === 200 || a.status === 409)).toBe(true);
    for (const via of servers) expect((await admin('GET', `/accounts/${accountId}`, undefined, via)).body.balance).toBe(40_000);
  });

  it('SIGKILL of one instance mid-load loses no ledger record of a completed request and leaves nothing reserved past the TTL', async () => {
    const { accountId, secret } = await newAccount('paid');
    await admin('POST', `/accounts/${accountId}/credits`, { amount: 10_000_000 });
    const victim = servers[2]!;
    const pending = Array.from({ length: 300 }, (_, i) =>
      chat(servers[i % 3]!, secret).then(
        async (res) => ({ status: res.status, requestId: res.headers.get('x-request-id'), credits: Number(res.headers.get('x-tollgate-credits-used')) }),
        () => ({ status: 0, requestId: null, credits: 0 }),
      ),
    );
    await sleep(150);
    victim.proc.kill('SIGKILL');
    await victim.exited;
    const results = await Promise.all(pending);
    const completed = results.filter((r) => r.status === 200);
    expect(completed.length).toBeGreaterThan(0);
    const rows = await ledger(accountId);
    const recorded = new Set(rows.map((r) => r.requestId));
    for (const r of completed) expect(recorded.has(r.requestId!)).toBe(true);
    // The dead instance's reservations lapse within the TTL: the balance comes back to exactly
    // the top-up minus what the ledger charged.
    const deadline = Date.now() + TTL_MS + 3000;
    let balance = 0;
    for (;;) {
      balance = (await admin('GET', `/accounts/${accountId}`)).body.balance;
      if (balance === 10_000_000 - sum(await ledger(accountId)) || Date.now() > deadline) break;
      await sleep(100);
    }
    expect(balance).toBe(10_000_000 - sum(await ledger(accountId)));
    servers[2] = await serve(configFile);
  });

  it('closed policy: Redis down → 503 limiter_unavailable; back → requests are admitted again', async () => {
    const { secret, accountId } = await newAccount();
    expect((await chat(servers[0]!, secret)).status).toBe(200);
    const usedBefore = await usedOf(servers[0]!, secret);
    await redis.stop();
    const down = await chat(servers[1]!, secret);
    expect(down.status).toBe(503);
    expect(((await down.json()) as any).error.code).toBe('limiter_unavailable');
    expect(down.headers.get('retry-after')).toBe('1');
    // Reads and writes of balances and rule usage say the same (they were 500s), and a plan change
    // is refused before it is written, so retrying it is safe.
    const usage = await fetch(`${servers[1]!.url}/v1/usage`, { headers: { authorization: `Bearer ${secret}` } });
    expect(usage.status).toBe(503);
    expect(((await usage.json()) as any).error.code).toBe('limiter_unavailable');
    expect((await admin('GET', `/accounts/${accountId}`)).status).toBe(503);
    const patched = await admin('PATCH', `/accounts/${accountId}`, { plan: 'paid' });
    expect(patched.status).toBe(503);
    expect(patched.body.error.code).toBe('limiter_unavailable');
    await redis.restart();
    const deadline = Date.now() + 10_000;
    let status = 0;
    while (status !== 200 && Date.now() < deadline) {
      status = (await chat(servers[1]!, secret)).status;
      if (status !== 200) await sleep(200);
    }
    expect(status).toBe(200);
    expect((await admin('GET', `/accounts/${accountId}`)).body.plan).toBe('free');
    // Redis runs with its append-only file, as production must: today's usage survived.
    expect(await usedOf(servers[2]!, secret)).toBe(usedBefore + ACTUAL);
  });
});
