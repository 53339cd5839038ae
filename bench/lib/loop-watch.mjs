// Preload (node --import ./bench/lib/loop-watch.mjs …): once a second, prints to stderr the event
// loop's worst delay and the GC pauses of that second, to tell a latency tail's stalls from GC.
import { PerformanceObserver, constants, monitorEventLoopDelay } from 'node:perf_hooks';

const h = monitorEventLoopDelay({ resolution: 2 });
h.enable();
const KIND = { [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor', [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major', [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incr', [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak' };
let gcs = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcs.push(`${KIND[e.detail?.kind] ?? e.detail?.kind}:${e.duration.toFixed(1)}`);
}).observe({ entryTypes: ['gc'] });
let t = 0;
setInterval(() => {
  t++;
  const max = h.max / 1e6;
  const big = gcs.filter((g) => Number(g.split(':')[1]) >= 3 || g.startsWith('major'));
  process.stderr.write(`[loop ${process.pid}] ${new Date().toISOString().slice(11, 19)} t=${t}s delay p99=${(h.percentile(99) / 1e6).toFixed(1)} max=${max.toFixed(1)} ms · gc n=${gcs.length} ${big.join(' ')}\n`);
  h.reset();
  gcs = [];
}, 1000).unref();

// Stalls: a 10 ms ticker; a tick that comes ≥ 40 ms late logs when (process.hrtime, µs — the
// clock of --cpu-prof's timestamps) so the profile can say what ran.
let last = process.hrtime.bigint();
setInterval(() => {
  const now = process.hrtime.bigint();
  const lateMs = Number(now - last) / 1e6 - 10;
  if (lateMs >= 40) process.stderr.write(`[stall ${process.pid}] ${new Date().toISOString().slice(11, 23)} (t=${performance.now().toFixed(0)} ms) ${lateMs.toFixed(1)} ms from ${(last / 1000n).toString()} to ${(now / 1000n).toString()} µs\n`);
  last = now;
}, 10).unref();
