// Preload (node --import ./bench/lib/promoted-heap.mjs …): V8's sampling heap profiler, keeping
// objects that survive the young generation (live ones, and those only a major GC reclaimed) and
// dropping what scavenges reclaim. Where a steadily growing old generation (`--trace-gc`) comes
// from, by allocation site. On SIGUSR2 it writes the profile to $PROMOTED_HEAP_OUT (default
// ./promoted-heap.heapprofile, loadable in Chrome DevTools) and prints the top sites to stderr.
// $PROMOTED_HEAP_DELAY_MS delays the start of sampling.
import { writeFileSync } from 'node:fs';
import inspector from 'node:inspector';

const session = new inspector.Session();
session.connect();
const post = (method, params) => new Promise((resolve, reject) => session.post(method, params, (err, r) => (err ? reject(err) : resolve(r))));
await post('HeapProfiler.enable');
const start = () => post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: false });
// $PROMOTED_HEAP_DELAY_MS: sample only from then on (what is promoted later in a process's life).
const delay = Number(process.env.PROMOTED_HEAP_DELAY_MS ?? 0);
if (delay > 0) setTimeout(start, delay).unref();
else await start();

process.on('SIGUSR2', async () => {
  const { profile } = await post('HeapProfiler.stopSampling');
  writeFileSync(process.env.PROMOTED_HEAP_OUT ?? 'promoted-heap.heapprofile', JSON.stringify(profile));
  const bySite = new Map();
  let total = 0;
  const walk = (node, stack) => {
    const f = node.callFrame;
    const here = [...stack, `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\//, '')}:${f.lineNumber + 1}`];
    const key = here.slice(-3).reverse().join(' < ');
    bySite.set(key, (bySite.get(key) ?? 0) + node.selfSize);
    total += node.selfSize;
    for (const c of node.children) walk(c, here);
  };
  walk(profile.head, []);
  const top = [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 15);
  process.stderr.write(`[promoted-heap] ${(total / 1e6).toFixed(1)} MB sampled\n${top.map(([k, v]) => `  ${(v / 1e6).toFixed(2)} MB  ${k}`).join('\n')}\n`);
});
