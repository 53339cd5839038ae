// Scenario: a fal image call asked for b64_json whose model answers with file URLs is two rounds of
// upstream calls — the generation, then the downloads — each bounded by upstream.totalTimeoutMs on
// its own. The meter renews a reservation only for as long as a request can last (maxHoldMs): cut
// at one round, the reservation of a call still downloading lapsed, and the balance it held was
// spent again meanwhile.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFakeFal, type FakeFal } from '../helpers/fake-fal.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const ROUND_MS = 3_900; // each upstream round, just inside the total timeout
const TOTAL_MS = 4_000;
// flux/schnell: 0.003 USD an image at 2,000,000 credits per USD.
const IMAGE = 6_000;

let fal: FakeFal;
let t: TestGateway;
beforeAll(async () => {
  fal = await startFakeFal({ delayMs: ROUND_MS });
  t = await startTestGateway({
    config: {
      upstream: { connectTimeoutMs: 2000, firstByteTimeoutMs: TOTAL_MS, totalTimeoutMs: TOTAL_MS, answerTimeoutMs: TOTAL_MS, idleTimeoutMs: TOTAL_MS },
      metering: { reservationTtlMs: 1000, renewEveryMs: 100, drainUsageMs: 0 },
      providers: [{ id: 'fal', type: 'fal', baseUrl: fal.url, apiKey: 'fal-upstream-secret' }],
      models: [{ id: 'flux/schnell', kind: 'image', provider: 'fal', upstream: 'fal-ai/flux/schnell', price: { perImage: 0.003 } }],
    },
  });
});
afterAll(async () => {
  await t?.close();
  await fal?.close();
});

const image = (secret: string, responseFormat: 'url' | 'b64_json') =>
  fetch(`${t.url}/v1/images/generations`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'flux/schnell', prompt: 'a lighthouse', response_format: responseFormat }),
  });

it('holds the reservation of an image call through its downloads: the balance is not spent twice', { timeout: 30_000 }, async () => {
  const { accountId, secret } = await t.newAccount({ plan: 'paid' });
  expect((await t.admin('POST', `/accounts/${accountId}/credits`, { amount: IMAGE })).status).toBe(200);
  // The model ignores sync_mode and answers with a file on its host, which the gateway downloads.
  fal.enqueue({ kind: 'json', body: { images: [{ url: `${fal.url}/file.jpeg`, width: 1024, height: 768, content_type: 'image/jpeg' }] } });
  fal.enqueue({ kind: 'text', status: 200, body: 'jpeg-bytes' });
  const first = image(secret, 'b64_json');
  // Past one round plus the TTLs (the reservation's renewal stopped at maxHoldMs and it lapsed), the
  // download still running: the balance is still held by the first image.
  await new Promise((r) => setTimeout(r, TOTAL_MS + 2_800));
  const second = await image(secret, 'url');
  expect(second.status).toBe(403);
  expect(((await second.json()) as { error: { code: string } }).error.code).toBe('insufficient_balance');
  expect((await first).status).toBe(200);
  const account = await t.admin('GET', `/accounts/${accountId}`);
  expect(account.body.balance).toBe(0);
});
