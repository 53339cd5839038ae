#!/usr/bin/env node
// What the token-count memo (src/core/tokens.ts, src/lib/text-memo.ts) saves per text: counting a
// prompt's text with the tokenizer against looking it up, for a string equal to one seen before
// but built anew (as JSON.parse builds every request body's strings), by length.
//
//   npm run build && taskset -c 1 node bench/token-memo.mjs
import { TextMemo } from '../dist/src/lib/text-memo.js';
import { countTokens } from 'gpt-tokenizer';

const PROSE = 'The gateway reserves the worst case of every request before it calls the provider, then settles it with the real usage. ';
const PLAIN = { disallowedSpecial: new Set() };
const TEXTS = 200;

console.log('| chars | count µs | memo lookup µs | ratio |');
console.log('|---:|---:|---:|---:|');
for (const len of [256, 1024, 4096, 16384, 65536]) {
  const texts = Array.from({ length: TEXTS }, (_, i) => `${i} ${PROSE.repeat(Math.ceil(len / PROSE.length))}`.slice(0, len));
  const reps = Math.max(2, Math.floor(400_000 / len));
  const fresh = Array.from({ length: reps }, () => texts.map((t) => JSON.parse(JSON.stringify(t))));
  let sink = 0;
  for (const t of texts) sink += countTokens(t, PLAIN); // warm-up
  let t0 = process.hrtime.bigint();
  for (const batch of fresh) for (const t of batch) sink += countTokens(t, PLAIN);
  const countUs = Number(process.hrtime.bigint() - t0) / 1e3 / (reps * TEXTS);
  const memo = new TextMemo(64_000_000);
  for (const t of texts) memo.set(t, 1);
  const again = Array.from({ length: reps }, () => texts.map((t) => JSON.parse(JSON.stringify(t))));
  t0 = process.hrtime.bigint();
  for (const batch of again) for (const t of batch) sink += memo.get(t) ?? 0;
  const memoUs = Number(process.hrtime.bigint() - t0) / 1e3 / (reps * TEXTS);
  console.log(`| ${len} | ${countUs.toFixed(2)} | ${memoUs.toFixed(3)} | ${(countUs / memoUs).toFixed(0)}× |`);
  if (sink === -1) console.log(sink);
}
