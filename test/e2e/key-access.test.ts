// A key's expiry and its model allowlist (ApiKey.expiresAt, ApiKey.models) through the real server:
// set by the operator (admin API) and by the account (web app API), refused with 401
// api_key_expired and 403 model_not_allowed_for_key before anything is reserved or sent upstream,
// and seen by /v1/models and the key lists.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/lib/clock.js';
import { startTestGateway, testModels, type TestGateway } from '../helpers/gateway.js';

const T0 = Date.parse('2026-12-05T12:00:00Z');
const clock = new ManualClock(T0);
let t: TestGateway;
beforeAll(async () => {
  // A second chat model, for a key that may call one but not the other.
  const models = [...testModels(), { id: 'gpt-4o', kind: 'chat' as const, provider: 'openai', price: { input: 2.5, output: 10 } }];
  t = await startTestGateway({ gateway: { clock }, config: { models } });
});
afterAll(async () => t?.close());

const hi = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hi' }], max_tokens: 16 };
const post = (secret: string, path: string, body: unknown) =>
  fetch(`${t.url}/v1${path}`, { method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
async function keyOf(accountId: string, settings: Record<string, unknown>) {
  const res = await t.admin('POST', `/accounts/${accountId}/keys`, { name: 'scoped', ...settings });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { id: string; key: string; expiresAt: string | null; models: string[] | null };
}
const ledgerRows = async (accountId: string) => (await t.admin('GET', `/usage?account=${accountId}`)).body.data as unknown[];

describe("a key's expiry", () => {
  it('serves the key until the instant, then answers 401 api_key_expired with the time; moved later, it works again', async () => {
    clock.set(T0);
    const { accountId } = await t.newAccount({ plan: 'paid' });
    await t.admin('POST', `/accounts/${accountId}/credits`, { amount: 1_000_000 });
    // An offset is taken, and kept as the UTC instant.
    const key = await keyOf(accountId, { expiresAt: '2026-12-05T14:00:00+01:00' });
    expect(key.expiresAt).toBe('2026-12-05T13:00:00.000Z');
    expect((await post(key.key, '/chat/completions', hi)).status).toBe(200);
    clock.set(Date.parse('2026-12-05T12:59:59.999Z'));
    expect((await post(key.key, '/chat/completions', hi)).status).toBe(200);

    clock.set(Date.parse('2026-12-05T13:00:00.000Z'));
    const calls = t.upstreamCalls();
    const refused = await post(key.key, '/chat/completions', hi);
    expect(refused.status).toBe(401);
    expect((await refused.json()).error).toMatchObject({
      code: 'api_key_expired',
      type: 'authentication_error',
      message: 'This API key expired at 2026-12-05T13:00:00.000Z. You can create a new API key on the Keys page: http://gateway.test/app/keys',
    });
    // The SDK's own error, and every route the key opens.
    await expect(t.client(key.key).chat.completions.create(hi)).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    expect((await fetch(`${t.url}/v1/usage`, { headers: { authorization: `Bearer ${key.key}` } })).status).toBe(401);
    expect((await fetch(`${t.url}/v1/models`, { headers: { authorization: `Bearer ${key.key}` } })).status).toBe(401);
    expect(t.upstreamCalls()).toBe(calls);
    expect(await ledgerRows(accountId)).toHaveLength(2);

    // The account's other keys are not touched by it.
    const other = await keyOf(accountId, {});
    expect((await post(other.key, '/chat/completions', hi)).status).toBe(200);

    const moved = await t.admin('PATCH', `/keys/${key.id}`, { expiresAt: '2026-12-06T00:00:00Z' });
    expect(moved.body).toMatchObject({ expiresAt: '2026-12-06T00:00:00.000Z', models: null, limit: null });
    expect((await post(key.key, '/chat/completions', hi)).status).toBe(200);
    expect((await t.admin('PATCH', `/keys/${key.id}`, { expiresAt: null })).body.expiresAt).toBeNull();
    clock.set(Date.parse('2030-01-01T00:00:00Z'));
    expect((await post(key.key, '/chat/completions', hi)).status).toBe(200);
    clock.set(T0);
  });

  it('refuses an expiry that is not ahead, too far, or not an instant, naming expiresAt', async () => {
    clock.set(T0);
    const { accountId } = await t.newAccount();
    for (const expiresAt of ['2026-12-05T12:00:00Z', '2020-01-01T00:00:00Z', '9999-12-31T23:00:00-02:00', '2027-01-04', 'soon', 42]) {
      const res = await t.admin('POST', `/accounts/${accountId}/keys`, { expiresAt });
      expect(res.status, `${String(expiresAt)} ${JSON.stringify(res.body)}`).toBe(400);
      expect(res.body.error.param, String(expiresAt)).toBe('expiresAt');
    }
    // Only the key newAccount made.
    expect((await t.admin('GET', `/accounts/${accountId}/keys`)).body.data).toHaveLength(1);
    // A PATCH that gives nothing says what it takes.
    const key = await keyOf(accountId, {});
    expect((await t.admin('PATCH', `/keys/${key.id}`, {})).body.error.message).toContain('give limit, expiresAt or models');
  });
});

describe("a key's models", () => {
  it('calls only the models it lists: the others are 403 model_not_allowed_for_key before anything is reserved or sent', async () => {
    clock.set(T0);
    const { accountId } = await t.newAccount({ plan: 'paid' });
    await t.admin('POST', `/accounts/${accountId}/credits`, { amount: 1_000_000 });
    // A repeated id is kept once.
    const key = await keyOf(accountId, { models: ['text-embedding-3-small', 'gpt-4o-mini', 'gpt-4o-mini'] });
    expect(key.models).toEqual(['text-embedding-3-small', 'gpt-4o-mini']);
    expect((await post(key.key, '/chat/completions', hi)).status).toBe(200);
    expect((await post(key.key, '/embeddings', { model: 'text-embedding-3-small', input: 'hello' })).status).toBe(200);

    const calls = t.upstreamCalls();
    const balance = (await t.admin('GET', `/accounts/${accountId}`)).body.balance;
    for (const [path, body] of [
      ['/images/generations', { model: 'flux/schnell', prompt: 'a cat' }],
      ['/chat/completions', { ...hi, model: 'gpt-4o' }],
      ['/chat/completions', { ...hi, model: 'gpt-4o', stream: true }],
    ] as Array<[string, unknown]>) {
      const res = await post(key.key, path, body);
      expect(res.status, path).toBe(403);
      expect(res.headers.get('x-should-retry')).toBe('false');
      expect((await res.json()).error).toMatchObject({ code: 'model_not_allowed_for_key', param: 'model', message: expect.stringContaining('may call only text-embedding-3-small, gpt-4o-mini, not ') });
    }
    await expect(t.client(key.key).images.generate({ model: 'flux/schnell', prompt: 'a cat' })).rejects.toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(t.upstreamCalls()).toBe(calls);
    expect((await t.admin('GET', `/accounts/${accountId}`)).body.balance).toBe(balance);
    expect(await ledgerRows(accountId)).toHaveLength(2);

    // /v1/models says which models this key may use.
    const models = (await (await fetch(`${t.url}/v1/models`, { headers: { authorization: `Bearer ${key.key}` } })).json()) as { data: Array<{ id: string; available: boolean }> };
    expect(models.data.filter((m) => m.available).map((m) => m.id).sort()).toEqual(['gpt-4o-mini', 'text-embedding-3-small']);
    expect(models.data.find((m) => m.id === 'gpt-4o')?.available).toBe(false);

    // Widened to every model again.
    expect((await t.admin('PATCH', `/keys/${key.id}`, { models: null })).body.models).toBeNull();
    expect((await post(key.key, '/chat/completions', { ...hi, model: 'gpt-4o' })).status).toBe(200);
  });

  it('refuses a model the catalog does not have, and an empty list, naming the field', async () => {
    const { accountId } = await t.newAccount();
    const unknown = await t.admin('POST', `/accounts/${accountId}/keys`, { models: ['gpt-4o-mini', 'gpt-9'] });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatchObject({ param: 'models[1]', message: expect.stringContaining("no model 'gpt-9'") });
    expect((await t.admin('POST', `/accounts/${accountId}/keys`, { models: [] })).body.error.param).toBe('models');
    expect((await t.admin('POST', `/accounts/${accountId}/keys`, { models: 'gpt-4o-mini' })).body.error.param).toBe('models');
  });
});
