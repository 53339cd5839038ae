import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Worker } from 'node:worker_threads';
import { errors as undiciErrors } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { GatewayError } from '../errors/gateway-error.js';
import { createUpstreamClient, mapTransportError, type UpstreamClientOptions } from './client.js';
import { UpstreamBodyTooLarge, type UpstreamClient } from './types.js';

const TOTAL_MS = 987_654; // a value no other timer uses, so the spies can find ours

const opts: UpstreamClientOptions = {
  connectTimeoutMs: 1_000,
  firstByteTimeoutMs: 300,
  totalTimeoutMs: TOTAL_MS,
  idleTimeoutMs: 300,
  connectionsPerOrigin: 4,
};

let server: Server;
let base: string;
const routes = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>();

beforeAll(async () => {
  server = createServer((req, res) => {
    const handler = routes.get(req.url ?? '');
    if (handler) handler(req, res);
    else res.writeHead(404).end('no route');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  routes.set('/ok', (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-port': String(req.socket.remotePort) });
      res.end(JSON.stringify({ method: req.method, body, auth: req.headers.authorization ?? null }));
    });
  });
  routes.set('/hang', () => {});
  routes.set('/answer-after-600ms', (_req, res) => {
    setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('the whole answer'), 600);
  });
  // A reasoning model's stream: the head at once, then nothing while it thinks, then the events.
  routes.set('/think-then-stream', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.flushHeaders();
    setTimeout(() => res.write('data: 1\n\n'), 600);
    setTimeout(() => res.end('data: 2\n\n'), 700);
  });
  routes.set('/head-then-hang', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.flushHeaders();
  });
  routes.set('/stall', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first part');
  });
  routes.set('/drip', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    const t = setInterval(() => res.write('.'), 30);
    res.on('close', () => clearInterval(t));
  });
  routes.set('/cut', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
    res.write('partial', () => res.socket?.destroy());
  });
  routes.set('/destroy', (req) => req.socket.destroy());
  routes.set('/huge', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('x'.repeat(4_000_000));
  });
  routes.set('/huge-then-stall', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('x'.repeat(4_000_000));
  });
  routes.set('/big', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('x'.repeat(200_000));
  });
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

const clients: UpstreamClient[] = [];
function client(o: Partial<UpstreamClientOptions> = {}): UpstreamClient {
  const c = createUpstreamClient({ ...opts, ...o });
  clients.push(c);
  return c;
}
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

const get = (path: string, signal = new AbortController().signal) =>
  ({ provider: 'up', method: 'GET' as const, url: base + path, headers: {}, signal });

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

function expectGatewayError(err: unknown, code: string, vars: Record<string, unknown>) {
  expect(err).toBeInstanceOf(GatewayError);
  const g = err as GatewayError;
  expect(g.code).toBe(code);
  expect(g.vars).toMatchObject(vars);
}

/** Holds the event loop for `ms`, as a process stopped by SIGSTOP or a paused VM would be held. */
function stallEventLoop(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until);
}

/**
 * An upstream on its own thread for the stall tests: one in this thread's event loop would stall
 * with it and write its answer only on waking, in the same turn as the overdue timer — the case
 * of a process that stalled while the provider answered needs the bytes already on the socket
 * (and on a loaded machine, loopback delivery of a write made that late came after the check).
 * `received` settles once the request has arrived, so the stall starts with the timer armed.
 */
async function stallUpstream(): Promise<{ base: string; received: Promise<void> }> {
  const worker = new Worker(
    `const { createServer } = require('node:http');
     const { parentPort } = require('node:worker_threads');
     const server = createServer((req, res) => {
       parentPort.postMessage('received');
       if (req.url === '/late-head') {
         setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('made and billed'), 50);
       } else {
         setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).write('made '), 50);
         setTimeout(() => res.end('and billed'), 800);
       }
     });
     server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));`,
    { eval: true },
  );
  workers.push(worker);
  const port = await new Promise<number>((r) => worker.once('message', r));
  const received = new Promise<void>((r) => worker.once('message', () => r()));
  return { base: `http://127.0.0.1:${port}`, received };
}
const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});

async function drain(body: AsyncIterable<Uint8Array>): Promise<string> {
  let s = '';
  for await (const c of body) s += Buffer.from(c).toString();
  return s;
}

/** Spies on the total-timeout timer and reports whether it was cleared. */
/** Spies on the native timers of the given durations (default: the total timeout). */
function watchTimers(durations: readonly number[] = [TOTAL_MS]) {
  const realSet = globalThis.setTimeout;
  const created: unknown[] = [];
  const cleared = new Set<unknown>();
  vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const t = realSet(fn, ms, ...args);
    if (ms !== undefined && durations.includes(ms)) created.push(t);
    return t;
  }) as typeof setTimeout);
  const realClear = globalThis.clearTimeout;
  vi.spyOn(globalThis, 'clearTimeout').mockImplementation(((t: Parameters<typeof clearTimeout>[0]) => {
    cleared.add(t);
    realClear(t);
  }) as typeof clearTimeout);
  return {
    allCleared: () => created.length > 0 && created.every((t) => cleared.has(t)),
    count: () => created.length,
  };
}

/** Six calls, ended each in its own way: read, streamed, dumped, abandoned, stalled, hung. */
async function endEveryWay(c: UpstreamClient): Promise<void> {
    await (await c.request(get('/ok'))).json();
    await drain((await c.request(get('/big'))).body);
    await (await c.request(get('/big'))).dump();
    for await (const _ of (await c.request(get('/drip'))).body) break;
    await caught(drain((await c.request(get('/stall'))).body));
    await caught(c.request(get('/hang')));
}

describe('createUpstreamClient', () => {
  it('sends method, headers and body and returns status, headers and JSON', async () => {
    const c = client();
    const res = await c.request({
      provider: 'up',
      method: 'POST',
      url: `${base}/ok`,
      headers: { authorization: 'Bearer k', 'content-type': 'application/json' },
      body: '{"a":1}',
      signal: new AbortController().signal,
    });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expect(await res.json()).toEqual({ method: 'POST', body: '{"a":1}', auth: 'Bearer k' });
  });

  it('keeps connections alive between calls', async () => {
    const c = client();
    const a = await c.request(get('/ok'));
    await a.text();
    await new Promise((r) => setTimeout(r, 20)); // undici returns the socket to the pool on a later tick
    const b = await c.request(get('/ok'));
    await b.text();
    expect(b.headers['x-port']).toBe(a.headers['x-port']);
  });

  it('answers any status without throwing', async () => {
    const res = await client().request(get('/nowhere'));
    expect(res.status).toBe(404);
    expect(await res.text()).toBe('no route');
  });

  it('times out waiting for headers as "first byte"', async () => {
    const err = await caught(client().request(get('/hang')));
    expectGatewayError(err, 'upstream_timeout', { provider: 'up', timeoutMs: 300, phase: 'first byte' });
    expect((err as GatewayError).status).toBe(504);
  });

  it('text(maxBytes) cuts a longer body off instead of holding it; within the limit it reads it all', async () => {
    const c = client();
    await expect((await c.request(get('/huge'))).text(1_000_000)).rejects.toBeInstanceOf(UpstreamBodyTooLarge);
    expect((await (await c.request(get('/huge'))).text(4_000_000)).length).toBe(4_000_000);
  });

  it('text(maxBytes) refuses a body one byte past the limit', async () => {
    await expect((await client().request(get('/huge'))).text(3_999_999)).rejects.toBeInstanceOf(UpstreamBodyTooLarge);
  });

  it('text() reads a body that had already filled its queue and paused the socket', async () => {
    const res = await client({ idleTimeoutMs: 5_000 }).request(get('/huge'));
    await new Promise((r) => setTimeout(r, 100)); // 4 MB unread: the queue fills and the socket pauses
    const started = performance.now();
    expect((await res.text()).length).toBe(4_000_000);
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('dump() drops a long rest by closing the connection, not by reading it all', async () => {
    const c = client({ idleTimeoutMs: 5_000 });
    const res = await c.request(get('/huge-then-stall'));
    const started = performance.now();
    await res.dump();
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('a process that stalled past the timeout still takes the answer waiting on its socket', async () => {
    const upstream = await stallUpstream();
    const pending = client().request({ ...get('/late-head'), url: upstream.base + '/late-head' });
    // The event loop stops for longer than the first-byte limit (300 ms) while the answer comes
    // (50 ms in): on waking, the timer is due and the bytes are readable; timers run first.
    await upstream.received;
    stallEventLoop(600);
    const res = await pending;
    expect(await res.text()).toBe('made and billed');
  });

  it('a process that stalled past the timeout still takes a stream whose head and first bytes wait on its socket', async () => {
    // As above, but the body is not whole on waking: the call is not done, only its bytes say it is alive.
    const upstream = await stallUpstream();
    const pending = client().request({ ...get('/late-head-then-rest'), url: upstream.base + '/late-head-then-rest' });
    await upstream.received;
    stallEventLoop(600);
    const res = await pending;
    expect(await res.text()).toBe('made and billed');
  });

  it('times out a body that stalls as "idle", while iterating', async () => {
    const res = await client().request(get('/stall'));
    const seen: string[] = [];
    const err = await caught(
      (async () => {
        for await (const c of res.body) seen.push(Buffer.from(c).toString());
      })(),
    );
    expect(seen).toEqual(['first part']);
    expectGatewayError(err, 'upstream_timeout', { phase: 'idle', timeoutMs: 300 });
  });

  it('times out a body that stalls as "idle", in text()', async () => {
    const res = await client().request(get('/stall'));
    expectGatewayError(await caught(res.text()), 'upstream_timeout', { phase: 'idle' });
  });

  it('times the first byte and the silences after it each with its own limit', async () => {
    const c = client({ firstByteTimeoutMs: 5_000, idleTimeoutMs: 200 });
    const res = await c.request(get('/stall')); // the head came at once: the first-byte limit is done
    expectGatewayError(await caught(res.text()), 'upstream_timeout', { phase: 'idle', timeoutMs: 200 });
    const slow = client({ firstByteTimeoutMs: 200, idleTimeoutMs: 5_000 });
    expectGatewayError(await caught(slow.request(get('/hang'))), 'upstream_timeout', { phase: 'first byte', timeoutMs: 200 });
  });

  it('a reader slower than the idle timeout is not the upstream being idle (the socket is paused meanwhile)', async () => {
    const res = await client({ idleTimeoutMs: 100 }).request(get('/huge'));
    const it = res.body[Symbol.asyncIterator]();
    let got = Buffer.from(((await it.next()) as IteratorResult<Uint8Array>).value!).length;
    // More arrives meanwhile, fills the queue (16 chunks) and pauses the socket.
    await new Promise((r) => setTimeout(r, 400));
    for (let r = await it.next(); !r.done; r = await it.next()) got += r.value.length;
    expect(got).toBe(4_000_000);
  });

  it('after a pause for a slow reader, a stalled upstream still times out as idle', async () => {
    const res = await client({ idleTimeoutMs: 100 }).request(get('/huge-then-stall'));
    const it = res.body[Symbol.asyncIterator]();
    await it.next();
    await new Promise((r) => setTimeout(r, 400)); // paused meanwhile: no timeout
    let got = 0;
    const err = await caught(
      (async () => {
        for (let r = await it.next(); !r.done; r = await it.next()) got += r.value.length;
      })(),
    );
    expect(got).toBeGreaterThan(0);
    expectGatewayError(err, 'upstream_timeout', { phase: 'idle', timeoutMs: 100 });
  });

  it('first-byte and idle timers are cleared with their call however it ends', async () => {
    const FIRST_BYTE = 876_543;
    const IDLE = 765_432;
    const timers = watchTimers([FIRST_BYTE, IDLE]);
    const c = client({ firstByteTimeoutMs: FIRST_BYTE, idleTimeoutMs: IDLE, totalTimeoutMs: 300 });
    await endEveryWay(c);
    expect(timers.count()).toBeGreaterThanOrEqual(6);
    expect(timers.allCleared()).toBe(true);
  });

  it('a body that keeps dripping is not idle: each chunk restarts the idle limit', async () => {
    const res = await client().request(get('/drip'));
    const started = performance.now();
    let bytes = 0;
    for await (const c of res.body) {
      bytes += c.length;
      if (performance.now() - started > 900) break; // three idle limits (300 ms) of steady bytes
    }
    expect(bytes).toBeGreaterThan(10);
  });

  it('enforces the total timeout on a body that keeps dripping', async () => {
    const c = client({ totalTimeoutMs: 250, idleTimeoutMs: 5_000 });
    const res = await c.request(get('/drip'));
    expectGatewayError(await caught(drain(res.body)), 'upstream_timeout', { phase: 'total', timeoutMs: 250 });
  });

  it('waits for a whole answer past the first-byte limit (its head comes only when it is made), bounded by the total limit', async () => {
    // A non-streaming model call: a long answer's head came after 60 s and was thrown away as a
    // timeout once the provider had billed it.
    const res = await client().request({ ...get('/answer-after-600ms'), wholeAnswer: true });
    expect(await res.text()).toBe('the whole answer');
    expectGatewayError(await caught(client().request(get('/answer-after-600ms'))), 'upstream_timeout', { phase: 'first byte', timeoutMs: 300 });
    const bounded = client({ totalTimeoutMs: 150 });
    expectGatewayError(await caught(bounded.request({ ...get('/hang'), wholeAnswer: true })), 'upstream_timeout', { phase: 'total', timeoutMs: 150 });
    // Once the head came, the body's silences are timed as ever.
    const stalled = await client({ idleTimeoutMs: 200 }).request({ ...get('/stall'), wholeAnswer: true });
    expectGatewayError(await caught(stalled.text()), 'upstream_timeout', { phase: 'idle', timeoutMs: 200 });
  });

  it('answerTimeoutMs bounds a whole answer on its own (a provider that took the call and never answers lets its reservation go sooner), and leaves streams to the first-byte limit', async () => {
    const c = client({ answerTimeoutMs: 150, firstByteTimeoutMs: 5_000 });
    expectGatewayError(await caught(c.request({ ...get('/hang'), wholeAnswer: true })), 'upstream_timeout', { phase: 'answer', timeoutMs: 150 });
    // The same client still waits past 150 ms for a stream's head: only the answer's limit moved.
    const streamed = await c.request(get('/answer-after-600ms'));
    expect(await streamed.text()).toBe('the whole answer');
    // And an answer within the limit comes through.
    const patient = client({ answerTimeoutMs: 2_000 });
    expect(await (await patient.request({ ...get('/answer-after-600ms'), wholeAnswer: true })).text()).toBe('the whole answer');
  });

  it("waits for a stream's first event under the answer's limit, not the idle one (a reasoning model thinks before it streams)", async () => {
    // Before: the idle limit ran from the head, and a stream silent for a minute while the model
    // thought was cut as "idle", though the provider went on to make (and bill) the answer.
    const res = await client({ idleTimeoutMs: 200 }).request(get('/think-then-stream'));
    expect(await res.text()).toBe('data: 1\n\ndata: 2\n\n');
    const bounded = client({ idleTimeoutMs: 5_000, answerTimeoutMs: 200 });
    const hung = await bounded.request(get('/head-then-hang'));
    expectGatewayError(await caught(hung.text()), 'upstream_timeout', { phase: 'answer', timeoutMs: 200 });
    // Unset, the total limit bounds the wait.
    const total = await client({ idleTimeoutMs: 100, totalTimeoutMs: 400 }).request(get('/head-then-hang'));
    expectGatewayError(await caught(total.text()), 'upstream_timeout', { phase: 'total', timeoutMs: 400 });
    // Once the first event came, the silences after it are idle as ever (/stall: one part, then none).
    const stalled = await client({ idleTimeoutMs: 200, answerTimeoutMs: 5_000 }).request(get('/stall'));
    expectGatewayError(await caught(stalled.text()), 'upstream_timeout', { phase: 'idle', timeoutMs: 200 });
  });

  it('enforces the total timeout before headers', async () => {
    const c = client({ totalTimeoutMs: 150, firstByteTimeoutMs: 5_000 });
    expectGatewayError(await caught(c.request(get('/hang'))), 'upstream_timeout', { phase: 'total' });
  });

  it('maps a refused connection to upstream_unavailable', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const err = await caught(client().request({ ...get('/'), url: `http://127.0.0.1:${port}/` }));
    expectGatewayError(err, 'upstream_unavailable', { provider: 'up', detail: 'connection refused' });
    expect((err as GatewayError).status).toBe(502);
  });

  it('maps a socket destroyed before headers to upstream_unavailable', async () => {
    expectGatewayError(await caught(client().request(get('/destroy'))), 'upstream_unavailable', {});
  });

  it('maps a connection cut mid-body to upstream_unavailable', async () => {
    const res = await client().request(get('/cut'));
    expectGatewayError(await caught(drain(res.body)), 'upstream_unavailable', {});
  });

  it("rethrows the caller's abort reason untouched, before headers", async () => {
    const ac = new AbortController();
    const reason = new Error('client went away');
    const p = client().request(get('/hang', ac.signal));
    setTimeout(() => ac.abort(reason), 30);
    expect(await caught(p)).toBe(reason);
  });

  it("rethrows the caller's abort reason untouched, mid-body", async () => {
    const ac = new AbortController();
    const res = await client().request(get('/drip', ac.signal));
    const reason = new Error('client went away');
    setTimeout(() => ac.abort(reason), 60);
    expect(await caught(drain(res.body))).toBe(reason);
  });

  it("an abort before the turn's batched dispatch runs never reaches the upstream", async () => {
    let hits = 0;
    routes.set('/counted', (_req, res) => {
      hits++;
      res.end('{}');
    });
    const ac = new AbortController();
    const reason = new Error('client went away');
    const c = client();
    const p = c.request({ ...get('/counted', ac.signal), method: 'POST', body: '{}' });
    ac.abort(reason); // same turn: the request is still queued (lib/turn-queue.ts)
    expect(await caught(p)).toBe(reason);
    // The client still works, and the aborted call was never sent.
    expect((await (await c.request(get('/counted'))).text())).toBe('{}');
    expect(hits).toBe(1);
  });

  it('sends the requests of one turn together, in the order they were made', async () => {
    const order: string[] = [];
    routes.set('/order', (req, res) => {
      order.push(req.headers['x-n'] as string);
      res.end('ok');
    });
    const c = client({ connectionsPerOrigin: 1 }); // one connection: arrival order is send order
    const calls = ['1', '2', '3'].map((n) => c.request({ ...get('/order'), headers: { 'x-n': n } }).then((r) => r.text()));
    expect(await Promise.all(calls)).toEqual(['ok', 'ok', 'ok']);
    expect(order).toEqual(['1', '2', '3']);
  });

  it('rejects at once when the signal is already aborted', async () => {
    const ac = new AbortController();
    ac.abort();
    const err = await caught(client().request(get('/ok', ac.signal)));
    expect((err as Error).name).toBe('AbortError');
  });

  it('clears the total timer once the body is read, dumped, abandoned or failed', async () => {
    const timers = watchTimers();
    const c = client();
    await endEveryWay(c);
    expect(timers.count()).toBe(6);
    expect(timers.allCleared()).toBe(true);
  });

  it('maps undici errors by class, and leaves other errors alone', () => {
    const m = (e: unknown) => mapTransportError(e, 'p', opts);
    expectGatewayError(m(new undiciErrors.ConnectTimeoutError()), 'upstream_timeout', { phase: 'connect', timeoutMs: 1_000 });
    expectGatewayError(m(new undiciErrors.HeadersTimeoutError()), 'upstream_timeout', { phase: 'first byte' });
    expectGatewayError(m(new undiciErrors.BodyTimeoutError()), 'upstream_timeout', { phase: 'idle' });
    expectGatewayError(m(new undiciErrors.SocketError('other side closed')), 'upstream_unavailable', { stage: 'exchange' });
    const dns = Object.assign(new Error('getaddrinfo ENOTFOUND x'), { code: 'ENOTFOUND' });
    expectGatewayError(m(dns), 'upstream_unavailable', { detail: 'host name not found', stage: 'connect' });
    const eyeballs = new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })]);
    expectGatewayError(m(eyeballs), 'upstream_unavailable', { detail: 'connection refused', stage: 'connect' });
    // A reset (a provider's load balancer dropping the connection) is the upstream's failure, not a bug (500);
    // it may come after the provider read the request (`stage`: whether a next provider may take it, core/routes.ts).
    for (const code of ['ECONNRESET', 'EPIPE']) expectGatewayError(m(Object.assign(new Error(code), { code })), 'upstream_unavailable', { detail: 'connection reset', stage: 'exchange' });
    // The gateway's own limits (ulimit -n, ephemeral ports) are no bug of the request's either.
    for (const code of ['EMFILE', 'ENFILE', 'EADDRNOTAVAIL']) {
      expectGatewayError(m(Object.assign(new Error(`connect ${code}`), { code, syscall: 'connect' })), 'upstream_unavailable', {
        detail: `the gateway could not open a connection (${code}: out of file descriptors, ports or memory)`,
        stage: 'connect',
      });
    }
    const bug = new TypeError('bug');
    expect(m(bug)).toBe(bug);
  });
});
