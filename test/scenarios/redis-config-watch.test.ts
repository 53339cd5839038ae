// Scenario: Redis comes back from an outage configured so that it will lose data (a restart with
// appendonly off, a maxmemory policy that evicts). Its persistence is checked at `serve` start only
// once; a Redis restarted later with another config (a restart without its config file loses every
// balance and counter again on the next one) was never mentioned. The gateway checks again each
// time the limiter answers again.
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { jsonLines } from '../helpers/log-lines.js';
import { redisCommand, startRedis, type RedisServer } from '../helpers/redis.js';

const lines: Array<{ msg?: string }> = [];
const sink = jsonLines(lines);

let redis: RedisServer;
let t: TestGateway;
beforeAll(async () => {
  redis = await startRedis({ persistent: true });
  t = await startTestGateway({ config: { limiter: { url: redis.url } }, gateway: { logger: pino({ level: 'info' }, sink) } });
});
afterAll(async () => {
  await t?.close();
  await redis?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const waitFor = async (found: () => boolean, ms = 5000) => {
  for (const end = Date.now() + ms; Date.now() < end && !found(); ) await sleep(50);
  return found();
};

describe('Redis persistence, checked again when the limiter answers again', () => {
  it('a reconnect to a Redis that now runs without appendonly is warned about', async () => {
    const { secret } = await t.newAccount();
    expect((await t.client(secret).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })).choices.length).toBe(1);
    expect(lines.some((l) => /without appendonly/.test(l.msg ?? ''))).toBe(false);
    expect(await redisCommand(redis.port, 'CONFIG SET appendonly no')).toMatch(/^\+OK/);
    // The connection drops (as in a restart) and the client reconnects.
    expect(await redisCommand(redis.port, 'CLIENT KILL TYPE normal')).toMatch(/^:/);
    expect(await waitFor(() => lines.some((l) => l.msg === 'limiter (Redis) answers again')), JSON.stringify(lines.map((l) => l.msg))).toBe(true);
    expect(await waitFor(() => lines.some((l) => /Redis runs without appendonly/.test(l.msg ?? '')))).toBe(true);
  });
});
