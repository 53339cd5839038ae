#!/usr/bin/env node
// The allocation sites of a sampling heap profile (bench/lib/heap-sample.mjs), largest first, each
// with its four innermost frames.
//
//   node bench/heap-summary.mjs [artifacts/heap-sample.json] [--top N]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: args, positionals } = parseArgs({ options: { top: { type: 'string', default: '30' } }, allowPositionals: true });
const profile = JSON.parse(readFileSync(positionals[0] ?? 'artifacts/heap-sample.json', 'utf8'));
const sites = [];
let total = 0;
const walk = (node, stack) => {
  const cf = node.callFrame;
  const frame = `${cf.functionName || '(anonymous)'} ${cf.url.replace(/^.*?\/(dist|node_modules)\//, '$1/')}:${cf.lineNumber + 1}`;
  const here = [...stack, frame];
  if (node.selfSize) {
    sites.push([node.selfSize, here.slice(-4).reverse().join(' < ')]);
    total += node.selfSize;
  }
  for (const child of node.children ?? []) walk(child, here);
};
walk(profile.head, []);
sites.sort((a, b) => b[0] - a[0]);
console.log(`sampled: ${(total / 1048576).toFixed(1)} MB\n`);
for (const [bytes, stack] of sites.slice(0, Number(args.top))) console.log(`${(bytes / 1024).toFixed(0).padStart(7)} KB  ${stack}`);
