// The machinery shared by the fake upstreams: a node:http server on 127.0.0.1 port 0 that records
// every request and answers either with a scripted Behaviour (FIFO, one per request) or with the
// fake's default handler for that wire format.
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  /** Path and query as received, e.g. `/v1/chat/completions`. */
  path: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON, or the raw string when the body is not JSON ('' when empty). */
  body: unknown;
}

export type Behaviour =
  | { kind: 'json'; status?: number; body: unknown; headers?: Record<string, string> }
  | {
      kind: 'sse';
      /** Raw `data:` payloads, including "[DONE]" when wanted. */
      events: string[];
      intervalMs?: number;
      /** Write events[0..holdBeforeIndex), then wait for `release` before writing the rest. */
      holdBeforeIndex?: number;
      release?: Promise<void>;
    }
  /** An event stream written byte for byte as given (a recorded transcript, dialects included). */
  | { kind: 'transcript'; text: string }
  | { kind: 'hang' }
  | { kind: 'destroy' }
  | { kind: 'text'; status: number; body: string }
  /** Bytes as given, with exactly these headers (a compressed body and its Content-Encoding). */
  | { kind: 'raw'; status: number; headers: Record<string, string>; body: Buffer };

export interface FakeUpstream {
  url: string;
  requests: RecordedRequest[];
  /** Overrides the answer to the next request only; several queue up FIFO. */
  enqueue(b: Behaviour): void;
  /** Answers every request not covered by enqueue() with this, until reset with undefined. */
  setDefault(b: Behaviour | undefined): void;
  /** Requests being answered right now, and the most there ever were at once. */
  readonly inFlight: number;
  readonly maxInFlight: number;
  close(): Promise<void>;
}

export type DefaultHandler = (req: RecordedRequest, res: ServerResponse) => Promise<void> | void;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Writes an SSE response of raw data payloads, honouring interval and hold/release. */
export async function sendSse(
  res: ServerResponse,
  events: string[],
  opts: { intervalMs?: number; holdBeforeIndex?: number; release?: Promise<void> } = {},
): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
  res.flushHeaders();
  for (let i = 0; i < events.length; i++) {
    if (i === opts.holdBeforeIndex && opts.release) await opts.release;
    else if (i > 0 && opts.intervalMs) await sleep(opts.intervalMs);
    if (res.destroyed) return;
    res.write(`data: ${events[i]}\n\n`);
  }
  if (!res.destroyed) res.end();
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const parts: Buffer[] = [];
  for await (const c of req) parts.push(c as Buffer);
  const text = Buffer.concat(parts).toString('utf8');
  if (text.length === 0) return '';
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

export async function startFakeServer(opts: {
  pathPrefix: string;
  delayMs?: number;
  handle: DefaultHandler;
}): Promise<FakeUpstream> {
  const requests: RecordedRequest[] = [];
  const queue: Behaviour[] = [];
  let fallback: Behaviour | undefined;
  let inFlight = 0;
  let maxInFlight = 0;

  const server = createServer((req, res) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    res.once('close', () => inFlight--);
    void (async () => {
      const rec: RecordedRequest = {
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        headers: req.headers,
        body: await readBody(req),
      };
      requests.push(rec);
      const b = queue.shift() ?? fallback;
      if (b?.kind === 'hang') return;
      if (b?.kind === 'destroy') {
        req.socket.destroy();
        return;
      }
      if (opts.delayMs) await sleep(opts.delayMs);
      if (res.destroyed) return;
      if (b === undefined) return opts.handle(rec, res);
      switch (b.kind) {
        case 'json':
          return sendJson(res, b.status ?? 200, b.body, b.headers);
        case 'text': {
          const type = b.body.trimStart().startsWith('<') ? 'text/html; charset=utf-8' : 'text/plain; charset=utf-8';
          res.writeHead(b.status, { 'content-type': type });
          res.end(b.body);
          return;
        }
        case 'raw':
          res.writeHead(b.status, b.headers);
          res.end(b.body);
          return;
        case 'sse':
          return sendSse(res, b.events, b);
        case 'transcript':
          res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
          res.end(b.text);
          return;
      }
    })().catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: { message: String(err), type: 'fake_server_error' } });
      else res.destroy();
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${opts.pathPrefix}`,
    requests,
    enqueue: (b) => void queue.push(b),
    setDefault: (b) => {
      fallback = b;
    },
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
