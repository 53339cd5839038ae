#!/usr/bin/env node
// Counter-store throughput: reserve+settle pairs per second for a typical free-tier request — three
// ops: the day's credits (max), the day's requests (keep, max) and a concurrency lease (return,
// max 1) — sequentially, as the gateway's one thread issues them. Run `npm run build` first (or
// `npm run bench:counters`).
//
//   node bench/counter-store.mjs [--iterations N] [--warmup N]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MemoryCounterStore } from '../dist/src/storage/memory/counters.js';
import { openSqliteCounterStore } from '../dist/src/storage/sqlite/counters.js';

const { values: args } = parseArgs({
  options: {
    iterations: { type: 'string', default: '50000' },
    warmup: { type: 'string', default: '2000' },
  },
  strict: true,
});
const ITERATIONS = Number(args.iterations);
const WARMUP = Number(args.warmup);

const DAY = '2026-11-25';
const END_OF_DAY = Date.UTC(2026, 10, 26) + 3_600_000;
const TTL = 120_000;
const WORST = 1_200;

function ops(account) {
  return [
    { key: `d:${DAY}:${account}:credits`, amount: WORST, max: Number.MAX_SAFE_INTEGER, settle: 'actual', expiresAt: END_OF_DAY },
    { key: `d:${DAY}:${account}:requests`, amount: 1, max: Number.MAX_SAFE_INTEGER, settle: 'keep', expiresAt: END_OF_DAY },
    { key: `lease:${account}`, amount: 1, max: 1, settle: 'return', expiresAt: null },
  ];
}

async function run(store, iterations, prefix) {
  const now = Date.UTC(2026, 10, 25, 12);
  const latencies = new Float64Array(iterations);
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    const t = process.hrtime.bigint();
    const id = `${prefix}${i}`;
    // 100 accounts round-robin: realistic key spread, every lease free again by its next turn.
    const r = await store.reserve(id, ops(`acc_${i % 100}`), now + i + TTL, now + i);
    if (!r.ok) throw new Error(`unexpected refusal at ${i}: ${JSON.stringify(r)}`);
    if (!(await store.settle(id, 300 + (i % 700)))) throw new Error(`settle lost ${id}`);
    latencies[i] = Number(process.hrtime.bigint() - t) / 1000;
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  latencies.sort();
  const pct = (p) => latencies[Math.min(iterations - 1, Math.floor((p / 100) * iterations))];
  return { perSecond: iterations / seconds, p50: pct(50), p99: pct(99) };
}

const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-counters-'));
const rows = [];
try {
  const targets = [
    // Claimed, as the server's store is: an unclaimed file store is a CLI command's, whose commits
    // also note each change for the server that may hold the file (late_counter_writes).
    [
      'SQLite file, serving (WAL, synchronous=NORMAL, pending log)',
      async () => {
        const store = openSqliteCounterStore(`sqlite:${join(dir, 'counters.db')}`);
        await store.claimServer();
        return store;
      },
    ],
    ['SQLite :memory:', () => openSqliteCounterStore('sqlite::memory:')],
    ['MemoryCounterStore', () => new MemoryCounterStore()],
  ];
  for (const [name, open] of targets) {
    const store = await open();
    await run(store, WARMUP, 'w');
    const result = await run(store, ITERATIONS, 'r');
    await store.close();
    rows.push({ name, ...result });
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

console.log(`\nreserve+settle pairs, 3 ops each, ${ITERATIONS} sequential iterations (after ${WARMUP} warm-up), node ${process.version}\n`);
console.log('| store | pairs/s | p50 µs | p99 µs |');
console.log('|---|---:|---:|---:|');
for (const r of rows) {
  console.log(`| ${r.name} | ${Math.round(r.perSecond).toLocaleString('en-US')} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} |`);
}
