// Starts the real gateway (HTTP on port 0, SQLite in a temp dir) in front of the fake upstreams,
// with an admin token, and hands tests the few calls they all need.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { startGateway, type GatewayOptions, type RunningGateway } from '../../src/main.js';
import { providerTypes } from '../../src/providers/registry.js';
import { startFakeFal, type FakeFal } from './fake-fal.js';
import { startFakeOpenAI, type FakeOpenAI } from './fake-openai.js';

export const ADMIN_TOKEN = 'test-admin-token';

export interface TestGateway {
  gw: RunningGateway;
  url: string;
  openai: FakeOpenAI;
  fal: FakeFal;
  /** Calls the admin API; returns status and parsed body. */
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: any; headers: Headers }>;
  /** A fresh account with one key. */
  newAccount(opts?: { plan?: string; email?: string }): Promise<{ accountId: string; keyId: string; secret: string }>;
  client(secret: string): OpenAI;
  /** Upstream requests received so far, both fakes. */
  upstreamCalls(): number;
  close(): Promise<void>;
}

/** Models pointing at the fakes: one of each kind and wire format, with round prices. */
export function testModels(): NonNullable<ConfigInput['models']> {
  return [
    { id: 'gpt-4o-mini', kind: 'chat', provider: 'openai', vision: true, price: { input: 0.15, output: 0.6 } },
    { id: 'text-embedding-3-small', kind: 'embedding', provider: 'openai', price: { input: 0.02 } },
    {
      id: 'dall-e-2', kind: 'image', provider: 'openai', sizes: ['256x256', '512x512', '1024x1024'], defaultSize: '1024x1024',
      price: { perImage: { '256x256': 0.016, '512x512': 0.018, '1024x1024': 0.02 } },
    },
    { id: 'flux/schnell', kind: 'image', provider: 'fal', upstream: 'fal-ai/flux/schnell', price: { perImage: 0.003 } },
    { id: 'flux/dev/image-to-image', kind: 'image', provider: 'fal', upstream: 'fal-ai/flux/dev/image-to-image', imageToImage: true, price: { perImage: 0.03 } },
    { id: 'unkeyed-chat', kind: 'chat', provider: 'nokey', price: { input: 1, output: 1 } },
  ];
}

export async function startTestGateway(
  opts: {
    /** Overrides of the config's sections; a function is given the fakes' URLs (to list providers beside them). */
    config?: Partial<ConfigInput> | ((fakes: { openai: string; fal: string }) => Partial<ConfigInput>);
    upstreamDelayMs?: number;
    gateway?: Partial<GatewayOptions>;
  } = {},
): Promise<TestGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-test-'));
  const openai = await startFakeOpenAI(opts.upstreamDelayMs !== undefined ? { delayMs: opts.upstreamDelayMs } : {});
  const fal = await startFakeFal();
  const config = loadConfig({
    env: {},
    providerTypes,
    input: {
      server: { host: '127.0.0.1', port: 0, publicUrl: 'http://gateway.test' },
      storage: { url: `sqlite:${join(dir, 'tollgate.db')}` },
      admin: { token: ADMIN_TOKEN },
      // A hung call that does not stream ends at answerTimeoutMs (2 s), not at the total limit.
      upstream: { connectTimeoutMs: 2000, firstByteTimeoutMs: 2000, totalTimeoutMs: 10_000, answerTimeoutMs: 2000, idleTimeoutMs: 2000 },
      logging: { level: 'silent' },
      // Every test signs up from 127.0.0.1; the per-address limit has its own test.
      web: { signupsPerHour: 100_000 },
      providers: [
        { id: 'openai', type: 'openai', baseUrl: openai.url, apiKey: 'sk-upstream-secret' },
        { id: 'fal', type: 'fal', baseUrl: fal.url, apiKey: 'fal-upstream-secret' },
        { id: 'nokey', type: 'openai', baseUrl: openai.url },
      ],
      models: testModels(),
      plans: {
        free: { preset: 'free-tier' },
        paid: { preset: 'pay-as-you-go' },
        // No rules at all: for tests of the gateway core that are not about limits.
        open: {},
      },
      ...(typeof opts.config === 'function' ? opts.config({ openai: openai.url, fal: fal.url }) : opts.config),
    },
  });
  const gw = await startGateway({ config, logger: pino({ level: 'silent' }), ...opts.gateway });

  const admin: TestGateway['admin'] = async (method, path, body) => {
    const res = await fetch(`${gw.url}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
  };

  return {
    gw,
    url: gw.url,
    openai,
    fal,
    admin,
    async newAccount(o = {}) {
      const acct = await admin('POST', '/accounts', o);
      if (acct.status !== 201) throw new Error(`account create failed: ${JSON.stringify(acct.body)}`);
      const key = await admin('POST', `/accounts/${acct.body.id}/keys`, { name: 'test' });
      if (key.status !== 201) throw new Error(`key create failed: ${JSON.stringify(key.body)}`);
      return { accountId: acct.body.id, keyId: key.body.id, secret: key.body.key };
    },
    client: (secret) => new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: secret, maxRetries: 0, timeout: 10_000 }),
    upstreamCalls: () => openai.requests.length + fal.requests.length,
    async close() {
      await gw.close();
      await openai.close();
      await fal.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
