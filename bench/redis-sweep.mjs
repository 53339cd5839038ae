#!/usr/bin/env node
// The Redis limiter's counter sweep (a gateway runs it once a minute): how long it takes, and what
// it costs the shared store, with N instances sharing one redis-server (started and stopped
// here, on 127.0.0.1). Accounts each hold a day counter and a reservation whose process died. Each
// round: one sweep alone (it gives the reservations back); then the next minute coming due in all
// N instances together, each asking to sweep
// as the gateway does (`onceEveryMs`; a build without it sweeps in every instance), with the
// redis-server's CPU time over it; then a sweep with every counter due. (The N instances are N
// stores in this one process: the wall time of their minute shares its event loop.) Run `npm run
// build` first; `--dist` points at another build's dist/ to compare two.
//
//   node bench/redis-sweep.mjs [--accounts 20000] [--instances 3] [--rounds 3] [--dist DIR]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { startRedis } from './lib/redis.mjs';

const { values: args } = parseArgs({
  options: {
    accounts: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '3' },
    instances: { type: 'string', default: '3' },
    dist: { type: 'string', default: 'dist' },
  },
  strict: true,
});
const ACCOUNTS = Number(args.accounts);
const ROUNDS = Number(args.rounds);
const INSTANCES = Number(args.instances);
/** What the gateway's meter asks for (src/core/plan-meter.ts: a minute less its margin). */
const ONCE_EVERY_MS = 55_000;
const { openRedisCounterStore } = await import(pathToFileURL(resolve(args.dist, 'src/storage/redis/counters.js')).href);

const NOW = Date.UTC(2026, 10, 25, 12);
const END_OF_DAY = Date.UTC(2026, 10, 26);
const ms = (t) => Number(process.hrtime.bigint() - t) / 1e6;

/** Each account: a day counter (expiring at midnight) and a reservation its process never settled. */
async function populate(store, prefix) {
  let next = 0;
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (next < ACCOUNTS) {
        const i = next++;
        const tag = `tg:{${prefix}${i}}`;
        await store.add(`${tag}:credits:2026-11-25`, 5, END_OF_DAY);
        const r = await store.reserve(`${prefix}r${i}`, [{ key: `${tag}:requests:2026-11-25`, amount: 1, max: 1e9, settle: 'keep', expiresAt: END_OF_DAY }], NOW + 1_000, NOW);
        if (!r.ok) throw new Error(`refused: ${JSON.stringify(r)}`);
      }
    }),
  );
}

/** The redis-server's CPU time so far (user + system), from INFO: what the sweeps cost the shared store. */
async function redisCpuMs(admin) {
  const info = await admin.info('cpu');
  const seconds = (name) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
  return (seconds('used_cpu_user') + seconds('used_cpu_sys')) * 1000;
}

const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-sweep-'));
const redis = await startRedis(dir);
const rows = [];
try {
  const stores = Array.from({ length: INSTANCES }, () => openRedisCounterStore(redis.url));
  await Promise.all(stores.map((s) => s.ready()));
  const [store] = stores;
  const admin = new Redis(redis.url);
  for (let round = 1; round <= ROUNDS; round++) {
    const prefix = `acc${round}_`;
    await populate(store, prefix);
    let t = process.hrtime.bigint();
    await store.sweep(NOW + 2_000); // the reservations lapsed; the counters not yet
    const alone = ms(t);
    // The next minute, the usual one (nothing lapsed since; every account's indexes still read):
    // every instance asks.
    await admin.del('tg:sweep-turn'); // a turn taken by the round before: this minute's is due
    const cpuBefore = await redisCpuMs(admin);
    t = process.hrtime.bigint();
    await Promise.all(stores.map((s) => s.sweep(NOW + 2_000, { onceEveryMs: ONCE_EVERY_MS })));
    const together = ms(t);
    const redisCpu = (await redisCpuMs(admin)) - cpuBefore;
    t = process.hrtime.bigint();
    await store.sweep(END_OF_DAY + 1); // every counter due
    const due = ms(t);
    rows.push({ round, alone, together, redisCpu, due });
  }
  await Promise.all(stores.map((s) => s.close()));
  admin.disconnect();
} finally {
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}

console.log(`\nRedis counter sweep, ${ACCOUNTS.toLocaleString('en-US')} accounts (a day counter and a lapsed reservation each), ${INSTANCES} instances, build ${args.dist}, local redis-server, node ${process.version}\n`);
console.log(`| round | one sweep (ms) | the minute of ${INSTANCES} instances (ms) | Redis CPU in it (ms) | sweep, every counter due (ms) |`);
console.log('|---:|---:|---:|---:|---:|');
for (const r of rows) {
  console.log(`| ${r.round} | ${r.alone.toFixed(0)} | ${r.together.toFixed(0)} | ${r.redisCpu.toFixed(0)} | ${r.due.toFixed(0)} |`);
}
