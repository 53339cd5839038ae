#!/usr/bin/env node
// What a chat request's JSON costs the gateway before and after the provider, per request, for the
// benchmark's 'Say hello.' body and a chat client's tenth turn (lib/load.mjs): the depth check in
// front of the parser (src/lib/json-depth.ts) against the character loop it replaced, JSON.parse,
// and the JSON.stringify of the upstream request.
//
//   npm run build && taskset -c 1 node bench/json-scan.mjs
import { nestsDeeperThan } from '../dist/src/lib/json-depth.js';
import { benchChatBody, conversationChatBody } from './lib/load.mjs';

/** The depth check as first written: every character in a loop. */
function characterLoop(text, max) {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      for (i++; i < text.length; i++) {
        const s = text.charCodeAt(i);
        if (s === 0x5c) i++;
        else if (s === 0x22) break;
      }
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

const TEXTS = 100;
const REPS = 200;
console.log('| body | chars | depth check µs | character loop µs | JSON.parse µs | JSON.stringify µs |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const [name, body] of [['Say hello.', benchChatBody(false)], ['tenth turn', conversationChatBody(false)(1)]]) {
  // Strings built anew, as a request body's are.
  const texts = Array.from({ length: TEXTS }, () => JSON.parse(JSON.stringify(body)));
  const objects = texts.map((t) => JSON.parse(t));
  const time = (f) => {
    let sink = 0;
    for (let w = 0; w < 3; w++) for (let i = 0; i < TEXTS; i++) sink += f(i) ? 1 : 0;
    const t0 = process.hrtime.bigint();
    for (let r = 0; r < REPS; r++) for (let i = 0; i < TEXTS; i++) sink += f(i) ? 1 : 0;
    if (sink === -1) console.log(sink);
    return (Number(process.hrtime.bigint() - t0) / 1e3 / (REPS * TEXTS)).toFixed(2);
  };
  const cells = [
    time((i) => nestsDeeperThan(texts[i], 256)),
    time((i) => characterLoop(texts[i], 256)),
    time((i) => JSON.parse(texts[i])),
    time((i) => JSON.stringify(objects[i])),
  ];
  console.log(`| ${name} | ${body.length} | ${cells.join(' | ')} |`);
}
