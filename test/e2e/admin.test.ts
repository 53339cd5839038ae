// The admin API (SPEC §9): refuses without its token, manages accounts, keys and credits, and
// a revoked key stops working within one second.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startTestGateway, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway();
});
afterAll(async () => t?.close());

/**
 * The status a second gateway on the same store answers `secret` on /v1/usage with, polled for up
 * to a second after `change` until it is `expected`. The second one has its own key cache, so it
 * learns of a change only when its cache entry expires (keys.cacheTtlMs ≤ 900 ms); it gets counters
 * of its own: a second server may not hold the file's embedded limiter (storage/sqlite/lease.ts).
 */
async function secondGatewayAnswers(secret: string, change: () => Promise<unknown>, expected: number): Promise<number> {
  const { createGateway } = await import('../../src/main.js');
  const { MemoryCounterStore } = await import('../../src/storage/memory/counters.js');
  const { pino } = await import('pino');
  const second = await createGateway({ config: t.gw.config, logger: pino({ level: 'silent' }), counters: new MemoryCounterStore() });
  try {
    const ask = async () => (await second.app.inject({ method: 'GET', url: '/v1/usage', headers: { authorization: `Bearer ${secret}` } })).statusCode;
    expect(await ask()).toBe(200);
    await change();
    const changedAt = Date.now();
    let status = 200;
    while (Date.now() - changedAt < 1000 && status !== expected) {
      await new Promise((r) => setTimeout(r, 50));
      status = await ask();
    }
    return status;
  } finally {
    await second.close();
  }
}

describe('admin auth', () => {
  it.each([
    ['no header', undefined],
    ['wrong token', 'Bearer nope'],
    ['token as basic', `Basic ${ADMIN_TOKEN}`],
    ['an API key', 'Bearer tg-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'],
  ])('refuses %s with 401 admin_unauthorized', async (_name, auth) => {
    for (const [method, path] of [
      ['POST', '/admin/v1/accounts'],
      ['GET', '/admin/v1/accounts/acct_x'],
      ['DELETE', '/admin/v1/keys/key_x'],
      ['GET', '/admin/v1/usage'],
      ['GET', '/admin/v1/nonexistent'],
    ] as const) {
      const res = await fetch(`${t.url}${path}`, { method, headers: auth ? { authorization: auth } : {} });
      expect(res.status, `${method} ${path}`).toBe(401);
      expect((await res.json()).error.code).toBe('admin_unauthorized');
    }
  });

  it('refuses everything when no admin token is configured', async () => {
    const open = await (await import('../helpers/gateway.js')).startTestGateway({ config: { admin: { token: '' } } });
    try {
      const res = await fetch(`${open.url}/admin/v1/accounts`, { method: 'POST', headers: { authorization: 'Bearer ' } });
      expect(res.status).toBe(401);
      const body = await res.json();
      expect(body.error.code).toBe('admin_unauthorized');
      expect(body.message).toMatch(/disabled/);
    } finally {
      await open.close();
    }
  });
});

describe('accounts', () => {
  it('creates, reads and patches an account', async () => {
    const created = await t.admin('POST', '/accounts', { email: 'Dev@Example.com' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: expect.stringMatching(/^acct_/), email: 'dev@example.com', plan: 'free', balance: 0 });
    expect(new Date(created.body.createdAt).toISOString()).toBe(created.body.createdAt);
    const id = created.body.id;

    const got = await t.admin('GET', `/accounts/${id}`);
    expect(got.body).toMatchObject({ id, plan: 'free', usage: { credits: 0, requests: 0 } });

    // Today's usage per rule (SPEC §9), as /v1/usage shows it to the account's keys.
    const key = await t.admin('POST', `/accounts/${id}/keys`, {});
    const chat = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key.body.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(chat.status).toBe(200);
    const rules = (await t.admin('GET', `/accounts/${id}`)).body.usage.rules;
    const own = await (await fetch(`${t.url}/v1/usage`, { headers: { authorization: `Bearer ${key.body.key}` } })).json();
    expect(rules).toEqual(own.rules);
    expect(rules.find((r: { id: string }) => r.id === 'api_token')).toMatchObject({ limit: 50_000, used: 12, remaining: 49_988, window: 'day' });

    expect((await t.admin('POST', '/accounts', { email: 'dev@example.com' })).body.error.code).toBe('email_taken');

    const paid = await t.admin('PATCH', `/accounts/${id}`, { paymentMethod: true });
    expect(paid.body).toMatchObject({ plan: 'paid', paymentMethod: true });

    const topped = await t.admin('POST', `/accounts/${id}/credits`, { amount: 500_000 });
    expect(topped.body.balance).toBe(500_000);
    expect((await t.admin('POST', `/accounts/${id}/credits`, { amount: 250 })).body.balance).toBe(500_250);

    const back = await t.admin('PATCH', `/accounts/${id}`, { plan: 'free' });
    expect(back.body.plan).toBe('free');
    // Nothing to change is a mistake to say, not a 200 that changed nothing.
    const empty = await t.admin('PATCH', `/accounts/${id}`, {});
    expect(empty.status).toBe(400);
    expect(empty.body.error).toMatchObject({ code: 'invalid_request', message: expect.stringContaining('give at least one of plan') });
  });

  it('validates its input', async () => {
    expect((await t.admin('POST', '/accounts', { plan: 'gold' })).body.error).toMatchObject({ code: 'invalid_request', param: 'plan' });
    expect((await t.admin('POST', '/accounts', { email: 'not-an-email' })).body.error).toMatchObject({ code: 'invalid_request', param: 'email' });
    expect((await t.admin('POST', '/accounts', { email: 'ops@corp' })).status).toBe(201);
    expect((await t.admin('POST', '/accounts', { colour: 'red' })).body.error).toMatchObject({ code: 'invalid_request', param: 'colour' });
    const { accountId } = await t.newAccount();
    expect((await t.admin('POST', `/accounts/${accountId}/credits`, { amount: 0 })).body.error).toMatchObject({ code: 'invalid_request', param: 'amount' });
    // A negative amount is a correction: an empty balance has nothing to spare.
    expect((await t.admin('POST', `/accounts/${accountId}/credits`, { amount: -5 })).body.error).toMatchObject({ code: 'balance_too_low', param: 'amount' });
    expect((await t.admin('POST', `/accounts/${accountId}/credits`, { amount: 1.5 })).status).toBe(400);
    // Ten top-ups of the largest amount pass 2^53: refused with a 400, not rounded into the balance.
    for (let i = 0; i < 9; i++) expect((await t.admin('POST', `/accounts/${accountId}/credits`, { amount: 1e15 })).status).toBe(200);
    const over = await t.admin('POST', `/accounts/${accountId}/credits`, { amount: 1e15 });
    expect(over.body.error).toMatchObject({ code: 'invalid_request', param: 'amount' });
    expect((await t.admin('GET', `/accounts/${accountId}`)).body.balance).toBe(9e15);
    expect((await t.admin('GET', '/accounts/acct_missing')).status).toBe(404);
    expect((await t.admin('GET', '/accounts/acct_missing')).body.error.code).toBe('account_not_found');
    expect((await t.admin('POST', '/accounts/acct_missing/keys', {})).body.error.code).toBe('account_not_found');
    expect((await t.admin('DELETE', '/keys/key_missing')).body.error.code).toBe('key_not_found');
  });
});

describe('top-ups under an Idempotency-Key', () => {
  const topUp = async (accountId: string, amount: number, key?: string) => {
    const res = await fetch(`${t.url}/admin/v1/accounts/${accountId}/credits`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', ...(key !== undefined && { 'idempotency-key': key }) },
      body: JSON.stringify({ amount }),
    });
    return { status: res.status, headers: res.headers, body: (await res.json()) as any };
  };
  const balance = async (accountId: string) => (await t.admin('GET', `/accounts/${accountId}`)).body.balance as number;

  it('adds once: a retry answers the account as it is now, another amount under the key is refused', async () => {
    const { accountId } = await t.newAccount({ plan: 'paid' });
    const first = await topUp(accountId, 5000, 'invoice-2026-0042');
    expect(first.status).toBe(200);
    expect(first.body.balance).toBe(5000);
    expect(first.headers.get('idempotent-replayed')).toBeNull();

    const retry = await topUp(accountId, 5000, 'invoice-2026-0042');
    expect(retry.status).toBe(200);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.body).toMatchObject({ id: accountId, balance: 5000 });

    const other = await topUp(accountId, 7000, 'invoice-2026-0042');
    expect(other.status).toBe(422);
    expect(other.headers.get('x-should-retry')).toBe('false');
    expect(other.body.error).toMatchObject({ code: 'idempotency_key_reused', param: 'Idempotency-Key', message: expect.stringContaining('5000 credits, not 7000') });

    expect((await topUp(accountId, 7000, 'invoice-2026-0043')).body.balance).toBe(12_000);
    // Without a key, as before: every call adds.
    expect((await topUp(accountId, 1)).body.balance).toBe(12_001);
    expect((await topUp(accountId, 1)).body.balance).toBe(12_002);
    // The key belongs to the account: the same text on another account is that account's first.
    const { accountId: other2 } = await t.newAccount({ plan: 'paid' });
    expect((await topUp(other2, 5000, 'invoice-2026-0042')).body.balance).toBe(5000);
    expect(await balance(accountId)).toBe(12_002);
  });

  it("keeps every top-up in the balance's history once, with its source and key, newest first", async () => {
    const { accountId } = await t.newAccount({ plan: 'paid' });
    await topUp(accountId, 100);
    await topUp(accountId, 250, 'po-7');
    await topUp(accountId, 250, 'po-7'); // a retry: one record
    await topUp(accountId, 999, 'po-7'); // refused: none
    const history = await t.admin('GET', `/accounts/${accountId}/top-ups`);
    expect(history.status).toBe(200);
    // (Two top-ups in the same millisecond have no order between them: compared as a set.)
    expect(history.body.data).toHaveLength(2);
    expect(history.body.data).toEqual(
      expect.arrayContaining([
        { id: expect.stringMatching(/^top_/), accountId, credits: 250, source: 'admin', reference: 'po-7', createdAt: expect.any(String) },
        { id: expect.stringMatching(/^top_/), accountId, credits: 100, source: 'admin', reference: null, createdAt: expect.any(String) },
      ]),
    );
    const first = (await t.admin('GET', `/accounts/${accountId}/top-ups?limit=1`)).body;
    expect(first).toMatchObject({ hasMore: true, data: [history.body.data[0]] });
    // The page after it: the other one, and no more.
    const second = (await t.admin('GET', `/accounts/${accountId}/top-ups?limit=1&before=${first.data[0].id}`)).body;
    expect(second).toEqual({ object: 'list', hasMore: false, data: [history.body.data[1]] });
    expect((await t.admin('GET', `/accounts/${accountId}/top-ups?before=top_not_here`)).body).toMatchObject({ hasMore: false, data: [] });
    expect((await t.admin('GET', `/accounts/${accountId}/top-ups?limit=0`)).body.error.param).toBe('limit');
    expect((await t.admin('GET', '/accounts/acct_missing/top-ups')).body.error.code).toBe('account_not_found');
  });

  it('of 100 parallel calls under one key, one adds; the rest are replays or 409 while it is applied', async () => {
    const { accountId } = await t.newAccount({ plan: 'paid' });
    const answers = await Promise.all(Array.from({ length: 100 }, () => topUp(accountId, 250, 'burst')));
    const added = answers.filter((a) => a.status === 200 && a.headers.get('idempotent-replayed') === null);
    expect(added).toHaveLength(1);
    for (const a of answers) {
      if (a.status === 200) expect(a.body.balance).toBe(250);
      else {
        expect(a.status).toBe(409);
        expect(a.body.error.code).toBe('idempotency_key_in_use');
        expect(a.headers.get('retry-after')).toBe('1');
      }
    }
    expect(await balance(accountId)).toBe(250);
    expect((await topUp(accountId, 250, 'burst')).headers.get('idempotent-replayed')).toBe('true');
  });

  it('refuses a key that is empty, too long or not printable ASCII, adding nothing', async () => {
    const { accountId } = await t.newAccount({ plan: 'paid' });
    for (const key of ['', 'k'.repeat(256), 'caf\u00e9']) {
      const res = await fetch(`${t.url}/admin/v1/accounts/${accountId}/credits`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify({ amount: 10 }),
      }).catch(() => null);
      // fetch refuses to send a non-Latin-1 header itself; the others reach the server.
      if (res === null) continue;
      expect(res.status).toBe(400);
      expect((await res.json()).error).toMatchObject({ code: 'invalid_request', param: 'Idempotency-Key' });
    }
    expect((await topUp(accountId, 10, 'k'.repeat(255))).status).toBe(200);
    expect(await balance(accountId)).toBe(10);
    // An unknown account is 404 with a key too, and the amount is checked first.
    expect((await topUp('acct_missing', 10, 'x')).body.error.code).toBe('account_not_found');
    expect((await topUp(accountId, 0, 'y')).body.error).toMatchObject({ code: 'invalid_request', param: 'amount' });
  });

  it('takes credits back with a negative amount (a correction), never below zero, kept in the history signed', async () => {
    const { accountId, secret } = await t.newAccount({ plan: 'paid' });
    await t.admin('POST', `/accounts/${accountId}/credits`, { amount: 5000 });
    const corrected = await t.admin('POST', `/accounts/${accountId}/credits`, { amount: -1200 });
    expect(corrected.status).toBe(200);
    expect(corrected.body.balance).toBe(3800);
    const refused = await t.admin('POST', `/accounts/${accountId}/credits`, { amount: -3801 });
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: 'balance_too_low', param: 'amount', message: expect.stringContaining('has 3800 credits to spare') });
    expect(refused.headers.get('x-should-retry')).toBe('false');
    expect(await balance(accountId)).toBe(3800);
    // Under a key: once.
    expect((await topUp(accountId, -800, 'refund-1')).body.balance).toBe(3000);
    expect((await topUp(accountId, -800, 'refund-1')).headers.get('idempotent-replayed')).toBe('true');
    expect((await topUp(accountId, 800, 'refund-1')).body.error).toMatchObject({ code: 'idempotency_key_reused' });
    expect(await balance(accountId)).toBe(3000);
    // The account still spends what is left.
    await t.client(secret).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 16 });
    expect(await balance(accountId)).toBe(3000 - 12);
    const history = (await t.admin('GET', `/accounts/${accountId}/top-ups`)).body.data;
    expect(history.map((h: { credits: number; reference: string | null }) => [h.credits, h.reference])).toEqual([
      [-800, 'refund-1'],
      [-1200, null],
      [5000, null],
    ]);
    expect((await t.admin('POST', `/accounts/${accountId}/credits`, { amount: -1e15 - 1 })).body.error).toMatchObject({ code: 'invalid_request', param: 'amount' });
  });
});

describe('keys', () => {
  it('shows the secret once, stores only a hash, and lists keys without secrets', async () => {
    const { accountId } = await t.newAccount();
    const created = await t.admin('POST', `/accounts/${accountId}/keys`, { name: 'ci' });
    expect(created.status).toBe(201);
    expect(created.body.key).toMatch(/^tg-[0-9A-Za-z]{43}$/);
    expect(created.body).toMatchObject({ name: 'ci', prefix: created.body.key.slice(0, 7) + '…' });
    const listed = await t.admin('GET', `/accounts/${accountId}/keys`);
    const text = JSON.stringify(listed.body);
    expect(text).not.toContain(created.body.key);
    expect(text).not.toContain('hash');
    expect(listed.body.data.map((k: { name: string }) => k.name)).toEqual(['test', 'ci']);
    // The store holds the SHA-256, never the secret.
    const stored = await t.gw.storage.keys.get(created.body.id);
    expect(stored?.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(stored)).not.toContain(created.body.key.slice(3));
  });

  it('lists only the working keys with ?revoked=false, only the revoked with ?revoked=true', async () => {
    const { accountId, keyId } = await t.newAccount();
    const ci = (await t.admin('POST', `/accounts/${accountId}/keys`, { name: 'ci' })).body;
    await t.admin('DELETE', `/keys/${keyId}`);
    const names = async (query: string) => (await t.admin('GET', `/accounts/${accountId}/keys${query}`)).body.data.map((k: { name: string }) => k.name);
    expect(await names('')).toEqual(['test', 'ci']);
    expect(await names('?revoked=false')).toEqual(['ci']);
    expect(await names('?revoked=true')).toEqual(['test']);
    expect(ci.id).toMatch(/^key_/);
    const bad = await t.admin('GET', `/accounts/${accountId}/keys?revoked=yes`);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'invalid_request', param: 'revoked' });
    expect((await t.admin('GET', `/accounts/${accountId}/keys?active=1`)).status).toBe(400);
  });

  it('shows one key by its id, as the ledger names it: its account, settings and limitUsed', async () => {
    const { accountId, keyId, secret } = await t.newAccount({ plan: 'paid' });
    await t.admin('POST', `/accounts/${accountId}/credits`, { amount: 100_000 });
    await t.admin('PATCH', `/keys/${keyId}`, { limit: { credits: 5000, window: 'day' }, models: ['gpt-4o-mini'] });
    await t.client(secret).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 16 });
    const [row] = (await t.admin('GET', `/usage?account=${accountId}`)).body.data;
    const shown = await t.admin('GET', `/keys/${row.keyId}`);
    expect(shown.status).toBe(200);
    expect(shown.body).toMatchObject({ id: keyId, accountId, name: 'test', limit: { credits: 5000, window: 'day' }, models: ['gpt-4o-mini'], expiresAt: null, revokedAt: null, limitUsed: 12 });
    expect(JSON.stringify(shown.body)).not.toContain(secret.slice(3));
    expect(shown.body.hash).toBeUndefined();
    expect((await t.admin('GET', '/keys/key_missing')).body.error.code).toBe('key_not_found');
    // Not by its secret: a URL is logged on its way.
    expect((await t.admin('GET', `/keys/${secret}`)).body.error.code).toBe('key_not_found');
  });

  it('takes calls labelled JSON with no body where the body is optional (clients that label every request)', async () => {
    const { accountId } = await t.newAccount();
    const call = (method: string, path: string) =>
      fetch(`${t.url}/admin/v1${path}`, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' } });
    const created = await call('POST', `/accounts/${accountId}/keys`);
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const revoked = await call('DELETE', `/keys/${id}`);
    expect(revoked.status).toBe(200);
    expect((await revoked.json()).revokedAt).toEqual(expect.any(String));
    // A body that is required says it is missing.
    const topUp = await call('POST', `/accounts/${accountId}/credits`);
    expect(topUp.status).toBe(400);
    expect((await topUp.json()).error).toMatchObject({ code: 'invalid_request', message: expect.stringContaining('the body is empty') });
  });

  it('a revoked key fails with 401 within one second', async () => {
    const { keyId, secret } = await t.newAccount();
    const client = t.client(secret);
    // Warm the key cache so revocation has something to invalidate.
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    const revoked = await t.admin('DELETE', `/keys/${keyId}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revokedAt).not.toBeNull();
    const revokedAt = Date.now();
    let status = 0;
    while (Date.now() - revokedAt < 1000) {
      const res = await fetch(`${t.url}/v1/usage`, { headers: { authorization: `Bearer ${secret}` } });
      status = res.status;
      if (status === 401) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).toBe(401);
    const err = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 401, code: 'invalid_api_key' });
  });

  it('revocation reaches a second gateway on the same store within one second', async () => {
    const { keyId, secret } = await t.newAccount();
    expect(await secondGatewayAnswers(secret, () => t.admin('DELETE', `/keys/${keyId}`), 401)).toBe(401);
  });

});

describe('suspension', () => {
  it("refuses a suspended account's keys with 403 account_suspended, never showing the reason, until it is lifted", async () => {
    const { accountId, secret } = await t.newAccount({ email: `sus-${Date.now()}@example.com` });
    const client = t.client(secret);
    const ask = () => client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    await ask(); // warms the key cache: the suspension must clear it
    const suspended = await t.admin('PATCH', `/accounts/${accountId}`, { suspended: true, suspendedReason: 'card testing from 203.0.113.7' });
    expect(suspended.status).toBe(200);
    expect(suspended.body).toMatchObject({ id: accountId, suspendedAt: expect.any(String), suspendedReason: 'card testing from 203.0.113.7' });
    expect((await t.admin('GET', `/accounts/${accountId}`)).body).toMatchObject({ suspendedAt: suspended.body.suspendedAt });

    const before = t.upstreamCalls();
    const err = await ask().catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 403, code: 'account_suspended', type: 'permission_error' });
    const res = await fetch(`${t.url}/v1/usage`, { headers: { authorization: `Bearer ${secret}` } });
    expect(res.status).toBe(403);
    const body = await res.json();
    expect(body).toMatchObject({ statusCode: '403', requestId: res.headers.get('x-request-id'), error: { code: 'account_suspended' } });
    expect(JSON.stringify(body)).not.toContain('card testing');
    // A model list with the key is the key's too.
    expect((await fetch(`${t.url}/v1/models`, { headers: { authorization: `Bearer ${secret}` } })).status).toBe(403);
    expect(t.upstreamCalls()).toBe(before);
    // Nothing was charged for the refusals.
    expect((await t.admin('GET', `/accounts/${accountId}`)).body.usage).toMatchObject({ requests: 1 });

    const lifted = await t.admin('PATCH', `/accounts/${accountId}`, { suspended: false });
    expect(lifted.body).toMatchObject({ suspendedAt: null, suspendedReason: null });
    await expect(ask()).resolves.toMatchObject({ object: 'chat.completion' });
  });

  it('reaches a second gateway on the same store within one second', async () => {
    const { accountId, secret } = await t.newAccount();
    expect(await secondGatewayAnswers(secret, () => t.admin('PATCH', `/accounts/${accountId}`, { suspended: true }), 403)).toBe(403);
  });


  it('validates the patch', async () => {
    const { accountId } = await t.newAccount();
    const alone = await t.admin('PATCH', `/accounts/${accountId}`, { suspendedReason: 'spam' });
    expect(alone.body.error).toMatchObject({ code: 'invalid_request', param: 'suspendedReason' });
    const lifting = await t.admin('PATCH', `/accounts/${accountId}`, { suspended: false, suspendedReason: 'spam' });
    expect(lifting.body.error).toMatchObject({ code: 'invalid_request', param: 'suspendedReason' });
    const long = await t.admin('PATCH', `/accounts/${accountId}`, { suspended: true, suspendedReason: 'x'.repeat(501) });
    expect(long.body.error).toMatchObject({ code: 'invalid_request', param: 'suspendedReason' });
    expect((await t.admin('PATCH', `/accounts/${accountId}`, { suspended: 'yes' })).body.error).toMatchObject({ param: 'suspended' });
    expect((await t.admin('PATCH', '/accounts/acct_missing', { suspended: true })).body.error.code).toBe('account_not_found');
    // Nothing refused changed anything.
    expect((await t.admin('GET', `/accounts/${accountId}`)).body.suspendedAt).toBeNull();
  });
});

describe('account listing', () => {
  it('lists accounts newest first, by email or suspended, a page at a time', async () => {
    const tag = `list-${Date.now()}`;
    const created: { id: string; createdAt: string }[] = [];
    for (let i = 0; i < 5; i++) created.push((await t.admin('POST', '/accounts', { email: `${tag}-${i}@example.com` })).body);
    const made = created.map((a) => a.id);
    // Newest first; two made in the same millisecond go by id (random), the listing's tie-break.
    const newest = created
      .slice()
      .sort((a, b) => (a.createdAt === b.createdAt ? (a.id < b.id ? 1 : -1) : a.createdAt < b.createdAt ? 1 : -1))
      .map((a) => a.id);
    const page1 = await t.admin('GET', '/accounts?limit=2');
    expect(page1.body).toMatchObject({ object: 'list', hasMore: true });
    expect(page1.body.data.map((a: { id: string }) => a.id)).toEqual(newest.slice(0, 2));
    // A listing has no balances: each would be a read of the limiter.
    expect(page1.body.data[0]).not.toHaveProperty('balance');
    expect(page1.body.data[0]).toMatchObject({ id: newest[0], email: expect.stringContaining(tag), plan: 'free', suspendedAt: null });
    const page2 = await t.admin('GET', `/accounts?limit=2&before=${newest[1]}`);
    expect(page2.body.data.map((a: { id: string }) => a.id)).toEqual(newest.slice(2, 4));

    const byEmail = await t.admin('GET', `/accounts?email=${encodeURIComponent(`${tag}-3@EXAMPLE.com`)}`);
    expect(byEmail.body).toMatchObject({ hasMore: false, data: [{ id: made[3] }] });
    expect((await t.admin('GET', '/accounts?email=nobody%40example.com')).body.data).toEqual([]);

    await t.admin('PATCH', `/accounts/${made[1]}`, { suspended: true, suspendedReason: 'spam' });
    const suspended = await t.admin('GET', '/accounts?suspended=true&limit=1000');
    expect(suspended.body.data.map((a: { id: string }) => a.id)).toContain(made[1]);
    expect(suspended.body.data.every((a: { suspendedAt: string | null }) => a.suspendedAt !== null)).toBe(true);

    // By plan, with suspension and a page's cursor: only the accounts on it.
    await t.admin('PATCH', `/accounts/${made[2]}`, { plan: 'paid' });
    await t.admin('PATCH', `/accounts/${made[4]}`, { plan: 'paid' });
    const paid = (await t.admin('GET', '/accounts?plan=paid&limit=1000')).body.data as { id: string; plan: string }[];
    expect(paid.every((a) => a.plan === 'paid')).toBe(true);
    expect(paid.map((a) => a.id).filter((id) => made.includes(id))).toEqual(newest.filter((id) => id === made[2] || id === made[4]));
    const firstPaid = newest.find((id) => id === made[2] || id === made[4])!;
    const after = (await t.admin('GET', `/accounts?plan=paid&limit=1000&before=${firstPaid}`)).body.data.map((a: { id: string }) => a.id);
    expect(after).not.toContain(firstPaid);
    expect(after).toContain(firstPaid === made[2] ? made[4] : made[2]);
    expect((await t.admin('GET', `/accounts?plan=free&email=${encodeURIComponent(`${tag}-2@example.com`)}`)).body.data).toEqual([]);
    expect((await t.admin('GET', `/accounts?plan=paid&email=${encodeURIComponent(`${tag}-2@example.com`)}`)).body.data.map((a: { id: string }) => a.id)).toEqual([made[2]]);
    await t.admin('PATCH', `/accounts/${made[4]}`, { suspended: true });
    expect((await t.admin('GET', '/accounts?plan=paid&suspended=true&limit=1000')).body.data.map((a: { id: string }) => a.id)).toEqual([made[4]]);
    // A plan no longer in the config still finds the accounts left on it: none here.
    expect((await t.admin('GET', '/accounts?plan=retired')).body.data).toEqual([]);

    expect((await t.admin('GET', '/accounts?limit=0')).body.error).toMatchObject({ code: 'invalid_request', param: 'limit' });
    expect((await t.admin('GET', '/accounts?limit=1001')).body.error).toMatchObject({ code: 'invalid_request', param: 'limit' });
    expect((await t.admin('GET', '/accounts?suspended=false')).body.error).toMatchObject({ code: 'invalid_request', param: 'suspended' });
    expect((await t.admin('GET', '/accounts?before=acct_missing')).body.error.code).toBe('account_not_found');
  });

  it('says hasMore only when another page has accounts: not for a page that ends the list, nor for an email', async () => {
    const { email } = (await t.admin('POST', '/accounts', { email: `more-${Date.now()}@example.com` })).body;
    // One account by its email, asked for one: there is no second page (its next page is empty).
    expect((await t.admin('GET', `/accounts?email=${encodeURIComponent(email)}&limit=1`)).body).toMatchObject({ hasMore: false, data: [{ email }] });
    const all = (await t.admin('GET', '/accounts?limit=1000')).body;
    expect(all.data.length).toBeGreaterThanOrEqual(3);
    expect(all.data.length).toBeLessThan(1000);
    expect(all.hasMore).toBe(false);
    // The last two accounts, asked for two: the list ends there.
    const lastTwo = await t.admin('GET', `/accounts?limit=2&before=${all.data.at(-3).id}`);
    expect(lastTwo.body.data.map((a: { id: string }) => a.id)).toEqual(all.data.slice(-2).map((a: { id: string }) => a.id));
    expect(lastTwo.body.hasMore).toBe(false);
    // One short of the end: there is more.
    expect((await t.admin('GET', `/accounts?limit=1&before=${all.data.at(-3).id}`)).body.hasMore).toBe(true);
  });
});

describe('usage', () => {
  it('an unknown account is 404 account_not_found, not an empty list', async () => {
    const res = await t.admin('GET', '/usage?account=acct_does_not_exist');
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('account_not_found');
  });

  it('lists ledger rows and daily aggregates, filtered by account and time', async () => {
    const { accountId, secret } = await t.newAccount();
    const client = t.client(secret);
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'a' }] });
    await client.embeddings.create({ model: 'text-embedding-3-small', input: 'b' });
    const rows = await t.admin('GET', `/usage?account=${accountId}`);
    expect(rows.body.data.map((r: { model: string }) => r.model)).toEqual(['text-embedding-3-small', 'gpt-4o-mini']);
    const today = new Date().toISOString().slice(0, 10);
    const daily = await t.admin('GET', `/usage?account=${accountId}&group=day&from=${today}`);
    expect(daily.body.data).toHaveLength(2);
    expect(daily.body.data.every((d: { day: string; requests: number }) => d.day === today && d.requests === 1)).toBe(true);
    const future = await t.admin('GET', `/usage?account=${accountId}&from=2999-01-01`);
    expect(future.body.data).toEqual([]);
    expect((await t.admin('GET', '/usage?from=yesterday')).body.error).toMatchObject({ code: 'invalid_request', param: 'from' });
    // No store holds a year 0 (PostgreSQL answered it with a 500).
    expect((await t.admin('GET', '/usage?from=0000-01-01')).body.error).toMatchObject({ code: 'invalid_request', param: 'from' });
    expect((await t.admin('GET', '/usage?to=0000-12-31T00:00:00Z')).body.error).toMatchObject({ code: 'invalid_request', param: 'to' });
    // A range backwards, or one day as from=to (`to` is exclusive), holds nothing: said, not an empty list.
    for (const [from, to] of [['2026-12-06', '2026-12-01'], [today, today], [`${today}T12:00:00Z`, `${today}T11:00:00+00:00`]]) {
      const empty = await t.admin('GET', `/usage?account=${accountId}&from=${from}&to=${encodeURIComponent(to!)}`);
      expect(empty.status).toBe(400);
      expect(empty.body.error).toMatchObject({ code: 'invalid_request', param: 'to', message: expect.stringContaining("'to' is exclusive (one day: from=2026-11-25&to=2026-11-26)") });
    }
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    expect((await t.admin('GET', `/usage?account=${accountId}&from=${today}&to=${tomorrow}`)).body.data).toHaveLength(2);
  });

  it('pages through every row with before=<next>, more than one answer holds', async () => {
    const { accountId, secret } = await t.newAccount();
    const client = t.client(secret);
    // In parallel: several records share a millisecond, so a page may end among them.
    await Promise.all(Array.from({ length: 9 }, (_, i) => client.embeddings.create({ model: 'text-embedding-3-small', input: `text ${i}` })));
    const everything = (await t.admin('GET', `/usage?account=${accountId}`)).body;
    expect(everything).toMatchObject({ hasMore: false, next: null });
    expect(everything.data).toHaveLength(9);
    const seen: string[] = [];
    let url = `/usage?account=${accountId}&limit=4`;
    for (;;) {
      const page = (await t.admin('GET', url)).body;
      seen.push(...page.data.map((r: { requestId: string }) => r.requestId));
      expect(page.hasMore).toBe(page.next !== null);
      if (!page.hasMore) break;
      url = `/usage?account=${accountId}&limit=4&before=${page.next}`;
    }
    expect(seen).toEqual(everything.data.map((r: { requestId: string }) => r.requestId));

    for (const bad of ['nope', 'x'.repeat(500), '2026-12-06']) {
      const res = await t.admin('GET', `/usage?before=${bad}`);
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'invalid_request', param: 'before' });
    }
    const first = (await t.admin('GET', `/usage?account=${accountId}&limit=4`)).body;
    const daily = await t.admin('GET', `/usage?account=${accountId}&group=day&before=${first.next}`);
    expect(daily.status).toBe(400);
    expect(daily.body.error).toMatchObject({ param: 'before', message: expect.stringContaining('not daily totals') });
  });
});

describe('usage export', () => {
  it('exports every ledger row of a range as CSV, past a page of the ledger, and daily totals with group=day', async () => {
    const { accountId } = await t.newAccount();
    // 5,003 records: more than one page of the export's reads (5,000), many in one millisecond.
    const day = '2026-11-25';
    const n = 5_003;
    for (let i = 0; i < n; i += 1000) {
      await Promise.all(
        Array.from({ length: Math.min(1000, n - i) }, (_, j) =>
          t.gw.storage.ledger.append({
            requestId: `ex-${accountId}-${i + j}`, accountId, keyId: null, model: (i + j) % 2 ? 'gpt-4o-mini' : 'text-embedding-3-small',
            surface: 'api', promptTokens: 3, outputTokens: 4, credits: 5, status: 'ok', httpStatus: 200,
            createdAt: `${day}T10:${String(Math.floor((i + j) / 100) % 60).padStart(2, '0')}:00.000Z`, provider: 'openai',
          }),
        ),
      );
    }
    const res = await fetch(`${t.url}/admin/v1/usage/export?account=${accountId}&from=${day}&to=2026-11-26`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="tollgate-usage-${accountId}-from-${day}-to-2026-11-26.csv"`);
    const lines = (await res.text()).split('\r\n');
    expect(lines[0]).toBe('createdAt,requestId,accountId,keyId,model,surface,promptTokens,outputTokens,credits,status,httpStatus,provider');
    expect(lines.at(-1)).toBe('');
    const rows = lines.slice(1, -1);
    expect(rows).toHaveLength(n);
    expect(new Set(rows.map((l) => l.split(',')[1])).size).toBe(n);
    expect(rows).toContain(`${day}T10:00:00.000Z,ex-${accountId}-1,${accountId},,gpt-4o-mini,api,3,4,5,ok,200,openai`);

    const daily = await fetch(`${t.url}/admin/v1/usage/export?account=${accountId}&group=day`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(daily.headers.get('content-disposition')).toBe(`attachment; filename="tollgate-daily-${accountId}.csv"`);
    expect((await daily.text()).split('\r\n')).toEqual([
      'day,accountId,model,surface,requests,promptTokens,outputTokens,credits',
      `${day},${accountId},gpt-4o-mini,api,2501,7503,10004,12505`,
      `${day},${accountId},text-embedding-3-small,api,2502,7506,10008,12510`,
      '',
    ]);
  });

  it('refuses what the usage list refuses, and a page size or cursor (an export is every row)', async () => {
    const ask = (query: string) => t.admin('GET', `/usage/export?${query}`);
    expect((await ask('account=acct_does_not_exist')).body.error.code).toBe('account_not_found');
    expect((await ask('from=2026-12-06&to=2026-12-01')).body.error).toMatchObject({ code: 'invalid_request', param: 'to' });
    for (const [query, param] of [['limit=10', 'limit'], ['before=x', 'before'], ['from=yesterday', 'from']]) {
      const res = await ask(query!);
      expect(res.status, query).toBe(400);
      expect(res.body.error.code, query).toBe('invalid_request');
      expect(JSON.stringify(res.body.error), query).toContain(param);
    }
    expect((await fetch(`${t.url}/admin/v1/usage/export`)).status).toBe(401);
  });

  it('answers a ledger it cannot read with an error, not a 200 cut short after the header line', async () => {
    const { accountId } = await t.newAccount();
    const { StorageUnavailableError } = await import('../../src/storage/ports.js');
    const ledger = t.gw.storage.ledger;
    const { page, daily } = ledger;
    const down = async () => {
      throw new StorageUnavailableError('database unavailable: connection refused');
    };
    ledger.page = down;
    ledger.daily = down;
    try {
      for (const query of [`account=${accountId}`, `account=${accountId}&group=day`]) {
        const res = await t.admin('GET', `/usage/export?${query}`);
        expect(res.status, query).toBe(503);
        expect(res.body.error.code, query).toBe('storage_unavailable');
      }
    } finally {
      ledger.page = page;
      ledger.daily = daily;
    }
  });
});

describe('operations endpoints', () => {
  it('serves Prometheus metrics, counting requests and credits', async () => {
    const { secret } = await t.newAccount();
    await t.client(secret).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    const res = await fetch(`${t.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/tollgate_http_requests_total\{route="\/v1\/chat\/completions",status="200"\} [1-9]/);
    expect(text).toMatch(/tollgate_credits_charged_total\{model="gpt-4o-mini",surface="api",provider="openai"\} [1-9]/);
    expect(text).toMatch(/tollgate_process_resident_memory_bytes/);
  });

  it('with server.metricsToken, serves /metrics only for that bearer token (401 metrics_unauthorized otherwise)', async () => {
    const token = 'metrics-token-0123456789abcdefghijklmn';
    const g = await startTestGateway({ config: { server: { host: '127.0.0.1', port: 0, publicUrl: 'http://gateway.test', metricsToken: token } } });
    try {
      for (const authorization of [undefined, 'Bearer wrong', `Bearer ${token}x`, token]) {
        const res = await fetch(`${g.url}/metrics`, { headers: authorization ? { authorization } : {} });
        expect(res.status).toBe(401);
        expect((await res.json()).error).toMatchObject({ code: 'metrics_unauthorized', type: 'authentication_error' });
      }
      const ok = await fetch(`${g.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toMatch(/tollgate_http_requests_total/);
    } finally {
      await g.close();
    }
  });

  it("exports the SQLite pending log's applies by thread and its backlog", async () => {
    const { secret } = await t.newAccount();
    await t.client(secret).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    await t.admin('GET', '/usage?limit=1'); // a read applies whatever waits
    const text = await (await fetch(`${t.url}/metrics`)).text();
    const applies = [...text.matchAll(/^tollgate_pending_log_applies_total\{thread="(\w+)"\} (\d+)$/gm)];
    expect(applies.map((m) => m[1]).sort()).toEqual(['event_loop', 'worker']);
    expect(applies.reduce((sum, m) => sum + Number(m[2]), 0)).toBeGreaterThan(0);
    expect(text).toMatch(/^tollgate_pending_log_waiting_writes 0$/m);
  });

  it('sends a browser opening the root to the web app', async () => {
    const res = await fetch(`${t.url}/`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/app');
  });

  it('answers health and readiness', async () => {
    expect(await (await fetch(`${t.url}/healthz`)).json()).toEqual({ status: 'ok' });
    expect(await (await fetch(`${t.url}/readyz`)).json()).toEqual({ status: 'ready' });
  });
});
