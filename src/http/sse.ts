// Writes a started chat stream as Server-Sent Events: the one implementation behind /v1 and the
// Playground. Errors before this point are ordinary JSON answers; from here on the answer is an
// event stream, so the reply is hijacked and written by hand with backpressure.
import type { FastifyReply } from 'fastify';
import type { StreamStarted } from '../core/gateway.js';
import { ChurnMap } from '../lib/churn-map.js';
import { errorAnswer, type AppDeps } from './app.js';

/**
 * Resolves when the client has taken what was written (or has gone). A client that stops reading
 * would otherwise hold the stream, its reservation and its concurrency slot for as long as it
 * liked — past the longest request the meter renews a reservation for, after which the slot lapses
 * while the stream still runs. So a client that takes nothing for `ms` is cut off, and is then
 * settled like any client that left (the gateway drains the upstream for its usage).
 */
function waitForDrain(res: FastifyReply['raw'], ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    const timer = setTimeout(() => {
      res.destroy();
      done();
    }, ms);
    res.once('drain', done);
    res.once('close', done);
  });
}

/**
 * The reply's headers, then the stream's (limit headers), then the event-stream ones. Copied key by
 * key into a new object on purpose: written as one object literal of spreads, the objects it made
 * outlived their request by a scavenge or more: ~1.2 KB per streamed request went to the old
 * generation, scavenges took 3 ms instead of 2 and a full GC came every 40–60 s at 800 streams/s
 * (bench/README.md). Measured, not understood: V8's spread-into-literal path.
 */
function streamHeaders(fromReply: Record<string, string>, fromStream: Record<string, string>): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const k in fromReply) headers[k] = fromReply[k]!;
  for (const k in fromStream) headers[k] = fromStream[k]!;
  headers['content-type'] = 'text/event-stream; charset=utf-8';
  headers['cache-control'] = 'no-cache';
  // Unless a stop that began before the stream's first byte asked for close (connections.ts).
  headers.connection ??= 'keep-alive';
  // Tell proxies such as nginx not to buffer the stream.
  headers['x-accel-buffering'] = 'no';
  return headers;
}

export type StreamDeps = Pick<AppDeps, 'config' | 'clock'>;

/** A stream being written: its response, and how many writes it has had (the keep-alive looks). */
interface Live {
  res: FastifyReply['raw'];
  writes: number;
  seen: number;
}

/**
 * Keep-alive comments for streams that go quiet (server.sseKeepAliveMs): one ticker for every
 * stream of that setting, so a stream pays a map entry rather than a timer of its own. A stream
 * silent for a whole tick gets `: keep-alive`, which every SSE reader skips (the official SDKs,
 * EventSource, the web app): bytes enough for a proxy's read timeout.
 */
class KeepAlive {
  // A ChurnMap, not a Set: its entries live milliseconds, and an old Set's rehashes make garbage in
  // the old generation (lib/churn-map.ts says why).
  private readonly live = new ChurnMap<Live, true>();
  private ticker: NodeJS.Timeout | undefined;

  constructor(private readonly everyMs: number) {}

  add(s: Live): void {
    this.live.set(s, true);
    if (this.ticker === undefined) {
      this.ticker = setInterval(() => this.tick(), this.everyMs);
      this.ticker.unref();
    }
  }

  delete(s: Live): void {
    // The ticker stays (unref'd, every few seconds over the map): stopped whenever the Set emptied, it
    // was made again for nearly every stream at a low request rate.
    this.live.delete(s);
  }

  private tick(): void {
    for (const [s] of this.live) {
      // Written since the last tick, or a reader that has not taken what it has: nothing to add.
      if (s.writes !== s.seen || s.res.destroyed || s.res.writableNeedDrain) s.seen = s.writes;
      else s.res.write(': keep-alive\n\n');
    }
  }
}

const keepAlives = new Map<number, KeepAlive>();
function keepAliveEvery(ms: number): KeepAlive {
  let k = keepAlives.get(ms);
  if (k === undefined) keepAlives.set(ms, (k = new KeepAlive(ms)));
  return k;
}

export async function sendEventStream(deps: StreamDeps, reply: FastifyReply, started: StreamStarted): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  const req = reply.request;
  res.writeHead(200, streamHeaders(reply.getHeaders() as Record<string, string>, started.headers));
  const { idleTimeoutMs, totalTimeoutMs } = deps.config.upstream;
  // The stream may not outlast the upstream's total timeout because of a slow reader either. Real
  // time, as the upstream's own timers: the injected clock is business time (windows, ledger).
  const deadline = performance.now() + totalTimeoutMs;
  const stalled = () => Math.max(0, Math.min(idleTimeoutMs, deadline - performance.now()));
  const live: Live = { res, writes: 0, seen: 0 };
  const keepAlive = deps.config.server.sseKeepAliveMs > 0 ? keepAliveEvery(deps.config.server.sseKeepAliveMs) : undefined;
  keepAlive?.add(live);
  const write = (data: string): void | Promise<void> => {
    // A client that left is noticed by the gateway (ctx.client), which stops sending and drains.
    if (res.destroyed) return;
    live.writes++;
    if (!res.write(`data: ${data}\n\n`)) return waitForDrain(res, stalled());
  };
  try {
    req.facts.credits = await started.pipe({
      send: write,
      // OpenAI's mid-stream error event: a data line with the error body (SPEC §5's, made in the one place).
      fail: (err) => write(JSON.stringify(errorAnswer(deps, req, err).body)),
    });
  } finally {
    keepAlive?.delete(live);
    res.end();
  }
}
