#!/usr/bin/env node
// RedisCounterStore throughput: reserve+settle pairs per second for the request bench/counter-store.mjs
// measures (three ops of one account: the day's credits, the day's requests, a concurrency lease),
// sequentially and with many pairs in flight (one gateway process under load), against a
// redis-server on 127.0.0.1 this script starts and stops (needs the redis-server binary). Each
// operation is one Lua script, so a pair is two round trips. Run `npm run build` first.
//
//   node bench/redis-counter-store.mjs [--iterations N] [--warmup N] [--inflight N]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openRedisCounterStore } from '../dist/src/storage/redis/counters.js';
import { startRedis } from './lib/redis.mjs';

const { values: args } = parseArgs({
  options: {
    iterations: { type: 'string', default: '20000' },
    warmup: { type: 'string', default: '2000' },
    inflight: { type: 'string', default: '50' },
  },
  strict: true,
});
const ITERATIONS = Number(args.iterations);
const WARMUP = Number(args.warmup);
const INFLIGHT = Number(args.inflight);

const DAY = '2026-11-25';
const END_OF_DAY = Date.UTC(2026, 10, 26) + 3_600_000;
const TTL = 120_000;
const WORST = 1_200;
const ACCOUNTS = 100;

function ops(account) {
  const tag = `tg:{${account}}`;
  return [
    { key: `${tag}:credits:${DAY}`, amount: WORST, max: Number.MAX_SAFE_INTEGER, settle: 'actual', expiresAt: END_OF_DAY },
    { key: `${tag}:requests:${DAY}`, amount: 1, max: Number.MAX_SAFE_INTEGER, settle: 'keep', expiresAt: END_OF_DAY },
    // With pairs in flight, an account's lease may be taken: allow as many as are in flight.
    { key: `${tag}:lease`, amount: 1, max: INFLIGHT, settle: 'return', expiresAt: null },
  ];
}

async function pair(store, i, prefix, now) {
  const id = `${prefix}${i}`;
  const r = await store.reserve(id, ops(`acc_${i % ACCOUNTS}`), now + i + TTL, now + i);
  if (!r.ok) throw new Error(`unexpected refusal at ${i}: ${JSON.stringify(r)}`);
  if (!(await store.settle(id, 300 + (i % 700)))) throw new Error(`settle lost ${id}`);
}

/** `width` workers each running pairs back to back until `iterations` are done. */
async function run(store, iterations, prefix, width) {
  const now = Date.UTC(2026, 10, 25, 12);
  const latencies = new Float64Array(iterations);
  let next = 0;
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < iterations) {
        const i = next++;
        const t = process.hrtime.bigint();
        await pair(store, i, prefix, now);
        latencies[i] = Number(process.hrtime.bigint() - t) / 1000;
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  latencies.sort();
  const pct = (p) => latencies[Math.min(iterations - 1, Math.floor((p / 100) * iterations))];
  return { perSecond: iterations / seconds, p50: pct(50), p99: pct(99) };
}

const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-redis-'));
const redis = await startRedis(dir);
const rows = [];
try {
  const store = openRedisCounterStore(redis.url);
  await store.ready();
  for (const width of [1, INFLIGHT]) {
    await run(store, WARMUP, `w${width}-`, width);
    rows.push({ name: width === 1 ? 'sequential' : `${width} in flight`, ...(await run(store, ITERATIONS, `r${width}-`, width)) });
  }
  await store.close();
} finally {
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}

console.log(
  `\nRedisCounterStore reserve+settle pairs, 3 ops each, ${ITERATIONS} iterations (after ${WARMUP} warm-up), local redis-server, node ${process.version}\n`,
);
console.log('| mode | pairs/s | p50 µs | p99 µs |');
console.log('|---|---:|---:|---:|');
for (const r of rows) {
  console.log(`| ${r.name} | ${Math.round(r.perSecond).toLocaleString('en-US')} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} |`);
}
