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
        st = await once(pool, h, body);
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
    const p = once(pool, h, body).then(
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
