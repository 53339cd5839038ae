// Scenario: the shared limiter (Redis) is reachable but does not answer (CLIENT PAUSE: a hung
// server, a stalled network). Admission waits out its command timeout once and answers 503; the
// answer does not then wait for the same limiter again to read limit headers (SPEC §6).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { redisCommand, startRedis, type RedisServer } from '../helpers/redis.js';

let redis: RedisServer;
let t: TestGateway;

beforeAll(async () => {
  redis = await startRedis();
  t = await startTestGateway({ config: { limiter: { url: redis.url, onUnavailable: 'closed' } } });
});
afterAll(async () => {
  await t?.close();
  await redis?.stop();
});

describe('a hung limiter', () => {
  it('503 limiter_unavailable after one command timeout (2 s), not two', async () => {
    const { secret } = await t.newAccount();
    const ask = () =>
      fetch(`${t.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
      });
    expect((await ask()).status).toBe(200);
    expect(await redisCommand(redis.port, 'CLIENT PAUSE 6000 ALL')).toMatch(/^\+OK/);
    const started = Date.now();
    const res = await ask();
    const elapsed = Date.now() - started;
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('limiter_unavailable');
    expect(elapsed).toBeLessThan(3500);
    // A plain 400 does not wait out the hung limiter for its limit headers: it goes without them.
    const badStarted = Date.now();
    const bad = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini' }),
    });
    expect(bad.status).toBe(400);
    expect(Date.now() - badStarted).toBeLessThan(1500);
    expect(bad.headers.get('x-ratelimit-limit-tokens')).toBeNull();
  }, 20_000);
});
