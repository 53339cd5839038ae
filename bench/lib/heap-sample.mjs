// Preload for a server under load: what survives young-generation GC (what gets promoted).
//
//   node --import ./bench/lib/heap-sample.mjs dist/cli/tollgate.js serve …
//   kill -USR2 <pid>   # 1st: start sampling (after warm-up)
//   kill -USR2 <pid>   # 2nd: write artifacts/heap-sample.json
//   node bench/heap-summary.mjs [artifacts/heap-sample.json]
//
// V8's sampling heap profiler, told to keep objects later collected by a major GC and to drop those
// a scavenge collected: the profile is then the allocations that outlived the young generation.
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const out = join(dirname(fileURLToPath(import.meta.url)), '../../artifacts/heap-sample.json');
const session = new Session();
session.connect();
let sampling = false;
process.on('SIGUSR2', () => {
  if (!sampling) {
    sampling = true;
    session.post('HeapProfiler.enable', () =>
      session.post('HeapProfiler.startSampling', {
        samplingInterval: 8192,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: false,
      }),
    );
    return;
  }
  session.post('HeapProfiler.getSamplingProfile', (err, r) => {
    if (err) return console.error('heap-sample:', err.message);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify(r.profile));
  });
});
