// Load generators shared by the benchmarks (this process is the client; undici Pool, keep-alive).
//
// - closedLoop: `concurrency` requests always in flight (saturation): req/s and latency.
// - openLoop:   requests scheduled at fixed intervals (constant rate) whatever the responses do;
//               latency is counted from each request's *scheduled* start, so a slow server cannot
//               hide its queueing by slowing the generator down (no coordinated omission).
//
// Both count only requests started and finished inside the measure window for latency and req/s,
// and `total` = every request completed (warm-up included), for per-request CPU figures.
import { Pool } from 'undici';

export const CHAT = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello.' }] });
export const CHAT_STREAM = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello.' }], stream: true, stream_options: { include_usage: true } });

/** The chat request run.mjs, ab.mjs, promotion.mjs, rate-sweep.mjs and perf-profile.mjs send: max_tokens 16 (12 credits on the free tier). */
export const benchChatBody = (stream) =>
  JSON.stringify({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'Say hello.' }],
    max_tokens: 16,
    ...(stream && { stream: true, stream_options: { include_usage: true } }),
  });

/**
 * A chat client's request on its tenth turn (ab.mjs --prompt conversation): a system prompt of about
 * 1.2 KB and nine earlier turns sent again, as every chat client does, then a new question — about
 * 9 KB and 2,000 prompt tokens, against the 10 characters of benchChatBody. `i` makes the last
 * question unique per request; max_tokens 16 as in benchChatBody.
 */
const SYSTEM_PROMPT = [
  'You are a helpful assistant for the engineering team of a company that runs a public AI API.',
  'Answer precisely and briefly. When a question is about limits, quote the rule it depends on.',
  'Prefer concrete numbers to adjectives, and say when you are not sure instead of guessing.',
  'Format code as fenced blocks with the language named. Never reveal credentials or internal hostnames.',
  'If a request would exceed a plan limit, explain which limit and how it resets (UTC days, no reset job).',
  'Keep answers under two hundred words unless the user asks for more detail or a full example.',
  'When the user pastes logs, point at the first line that explains the failure, not the last one.',
  'Assume the reader is a developer who knows HTTP, JSON and the OpenAI API, but not our internals.',
  'Refer to documentation pages by their title. Do not invent endpoints, flags or configuration keys.',
  'If two answers are possible, give the safer one first and name the trade-off in one sentence.',
  'Use British spelling in prose and American spelling in identifiers, as the codebase does.',
  'End with one line that says what to check next if the answer does not solve the problem.',
].join(' ');
const TURNS = Array.from({ length: 9 }, (_, t) => [
  { role: 'user', content: `Turn ${t + 1}: our free-tier users report a 429 after about ten Playground requests on model number ${t + 3}. Is that the per-model daily rule, and when does it reset for someone in UTC+${t}?` },
  {
    role: 'assistant',
    content: `Yes. That is the playground_requests rule: ten requests per regular model per UTC day, counted per model, so model number ${t + 3} has its own ten. It resets at 00:00 UTC, which is ${t.toString().padStart(2, '0')}:00 local time for a user in UTC+${t}; nothing runs at that moment, the counter is simply keyed by the date. The API surface is not affected: the same account can still call the model with a key until its 50,000 daily credits are spent. If the user saw concurrency_limit instead, that is the one-request-at-a-time rule of the Playground, which frees as soon as the running request ends. Check the x-ratelimit-reset-requests header of the refusal to confirm which rule answered.`,
  },
]).flat();
export const conversationChatBody = (stream) => {
  const prefix = JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 16, ...(stream && { stream: true, stream_options: { include_usage: true } }), messages: [{ role: 'system', content: SYSTEM_PROMPT }, ...TURNS] });
  const head = prefix.slice(0, -2); // without the closing `]}`
  return (i) => `${head},{"role":"user","content":"Turn 10 (${i}): and does a Pro model draw on the same 50,000 credits?"}]}`;
};

/** One request, body fully consumed. Returns the status, or [status, text] when check is set. */
export async function once(pool, headers, body, check = false, path = '/v1/chat/completions') {
  const r = await pool.request({ method: 'POST', path, headers, body });
  if (check) return [r.statusCode, await r.body.text()];
  for await (const _ of r.body);
  return r.statusCode;
}

/** Sorted-array percentile (nearest rank). */
/** The median of the finite values (NaN when none): figures across rounds. */
export function median(xs) {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** A figure for a table: `d` decimals, or a dash when there is none. */
export const fixed = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '–');

export function percentile(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN;
}

function summary(lat, seconds, extra) {
  lat.sort((a, b) => a - b);
  return { rps: lat.length / seconds, p50: percentile(lat, 50), p99: percentile(lat, 99), p999: percentile(lat, 99.9), max: lat.at(-1), n: lat.length, ...extra };
}

/** Tallies non-200 answers: status → count (errors thrown count under their message). */
function tally() {
  const byStatus = new Map();
  return {
    byStatus,
    add(st) {
      const k = typeof st === 'number' ? st : `error: ${st?.message ?? st}`;
      byStatus.set(k, (byStatus.get(k) ?? 0) + 1);
    },
    count: () => [...byStatus.values()].reduce((a, b) => a + b, 0),
  };
}

/**
 * Saturation: keeps `concurrency` requests in flight for warmup + seconds.
 * headers: an array of header objects used in rotation (e.g. one per API key).
 */
export async function closedLoop(url, { headers, body, seconds, warmup, concurrency }) {
  const pool = new Pool(url, { connections: concurrency, pipelining: 1 });
  const t0 = performance.now();
  const measureStart = t0 + warmup * 1000;
  const end = measureStart + seconds * 1000;
  const lat = [];
  const bad = tally();
  const badAll = tally();
  let total = 0;
  let k = 0;
  const worker = async () => {
    while (performance.now() < end) {
      const h = headers[k++ % headers.length];
      const s = performance.now();
      let st;
      try {
        st = await once(pool, h, typeof body === 'function' ? body(total + k) : body);
      } catch (err) {
        st = err;
      }
      const e = performance.now();
      total++;
      if (st !== 200) badAll.add(st);
      if (s >= measureStart && e <= end) {
        if (st === 200) lat.push(e - s);
        else bad.add(st);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  await pool.close();
  return summary(lat, seconds, { errors: bad.count(), byStatus: Object.fromEntries(badAll.byStatus), total });
}

/**
 * Constant rate: request i is sent at t0 + i / rate (open loop), for warmup + seconds. The pool has
 * `connections` sockets; if all are busy, requests wait in undici's queue and that wait counts.
 * Also reports how late the generator itself fired (p99 of send time − scheduled time).
 */
export async function openLoop(url, { headers, body, rate, seconds, warmup, connections = 64 }) {
  const pool = new Pool(url, { connections, pipelining: 1 });
  const interval = 1000 / rate;
  const count = Math.round((warmup + seconds) * rate);
  const first = Math.round(warmup * rate);
  const lat = [];
  const late = [];
  const bad = tally();
  const badAll = tally();
  let total = 0;
  const inflight = new Set();
  const t0 = performance.now() + 5;
  const fire = (i, scheduled) => {
    const h = headers[i % headers.length];
    const p = once(pool, h, typeof body === 'function' ? body(i) : body).then(
      (st) => st,
      (err) => err,
    ).then((st) => {
      const e = performance.now();
      total++;
      if (st !== 200) badAll.add(st);
      if (i >= first) {
        if (st === 200) lat.push(e - scheduled);
        else bad.add(st);
      }
      inflight.delete(p);
    });
    inflight.add(p);
  };
  let i = 0;
  while (i < count) {
    const now = performance.now();
    while (i < count && t0 + i * interval <= now) {
      if (i >= first) late.push(now - (t0 + i * interval));
      fire(i, t0 + i * interval);
      i++;
    }
    if (i < count) {
      const wait = t0 + i * interval - performance.now();
      // Timers, not a spin: the generator shares core 0 with the upstream. Costs ≤ ~1 ms of firing
      // jitter, reported as lateP99 and the same for every target.
      await new Promise((r) => setTimeout(r, Math.max(1, Math.floor(wait))));
    }
  }
  await Promise.all(inflight);
  await pool.close();
  late.sort((a, b) => a - b);
  return summary(lat, seconds, { errors: bad.count(), byStatus: Object.fromEntries(badAll.byStatus), total, rate, lateP99: percentile(late, 99) });
}
