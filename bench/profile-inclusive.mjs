#!/usr/bin/env node
// Inclusive ("total") time per function in a V8 .cpuprofile: where a request's CPU goes, not only
// which leaf burns it. Recursion is counted once per stack.
//
//   node bench/profile-inclusive.mjs [artifacts/tollgate.cpuprofile] [--top N] [--match REGEX] [--skip-ms MS]
//
// --skip-ms leaves out the first MS of the profile (start-up: module loading, setup).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: args, positionals } = parseArgs({
  options: { top: { type: 'string', default: '45' }, match: { type: 'string' }, 'skip-ms': { type: 'string', default: '0' } },
  allowPositionals: true,
});
const prof = JSON.parse(readFileSync(positionals[0] ?? 'artifacts/tollgate.cpuprofile', 'utf8'));
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const label = (n) => {
  const cf = n.callFrame;
  const url = cf.url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, '$1/');
  return `${cf.functionName || '(anonymous)'} ${url ? `${url}:${cf.lineNumber + 1}` : ''}`.trim();
};
const busy = (n) => !['(idle)', '(program)', '(garbage collector)'].includes(n.callFrame.functionName);

// Hits per node, counted from the samples themselves so the start can be left out.
const hitsOf = new Map();
const skipUs = Number(args['skip-ms']) * 1000;
let t = 0;
for (let i = 0; i < prof.samples.length; i++) {
  t += prof.timeDeltas[i] ?? 0;
  if (t < skipUs) continue;
  hitsOf.set(prof.samples[i], (hitsOf.get(prof.samples[i]) ?? 0) + 1);
}

const total = new Map();
let all = 0;
for (const n of prof.nodes) {
  const hits = hitsOf.get(n.id) ?? 0;
  if (!hits || !busy(n)) continue;
  all += hits;
  const seen = new Set();
  for (let id = n.id; id !== undefined; id = parent.get(id)) {
    const key = label(byId.get(id));
    if (seen.has(key)) continue;
    seen.add(key);
    total.set(key, (total.get(key) ?? 0) + hits);
  }
}
const re = args.match ? new RegExp(args.match) : null;
const rows = [...total.entries()].filter(([k]) => !re || re.test(k)).sort((a, b) => b[1] - a[1]).slice(0, Number(args.top));
console.log(`busy samples: ${all} (idle, program and GC left out)\n`);
for (const [k, v] of rows) console.log(`${((100 * v) / all).toFixed(1).padStart(5)}%  ${k}`);
