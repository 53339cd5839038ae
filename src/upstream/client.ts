// The upstream HTTP client on undici. One Agent pools keep-alive connections per origin; undici
// enforces the connect, first-byte (headersTimeout) and idle (bodyTimeout) timeouts, and a timer
// per request enforces the total one by aborting it. Transport failures leave here as catalogue
// errors (upstream_timeout / upstream_unavailable); the caller's own abort leaves untouched.
import { EventEmitter } from 'node:events';
import { Agent, errors as undiciErrors } from 'undici';
import { GatewayError } from '../errors/gateway-error.js';
import type { UpstreamClient, UpstreamRequest, UpstreamResponse } from './types.js';

export interface UpstreamClientOptions {
  connectTimeoutMs: number;
  firstByteTimeoutMs: number;
  totalTimeoutMs: number;
  idleTimeoutMs: number;
  connectionsPerOrigin: number;
}

/** Abort reason of the total timer, recognised by identity. */
class TotalTimeout extends Error {}

/**
 * A call's cancellation. undici takes an EventEmitter as `signal` as well as an AbortSignal, and an
 * emitter is far cheaper to make than an AbortController (whose signal is an EventTarget): this
 * runs for every upstream call.
 */
class CallAbort extends EventEmitter {
  aborted = false;
  reason: unknown = undefined;

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.emit('abort');
  }
}

// Error codes that mean "the upstream could not be reached or dropped us" (node net/dns + undici).
const unavailableCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ETIMEDOUT',
  'EPROTO',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);

function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  // Happy-eyeballs connects fail with an AggregateError holding one error per address.
  const inner = (err as { errors?: unknown }).errors;
  if (Array.isArray(inner) && inner.length > 0) return errorCode(inner[0]);
  return undefined;
}

/**
 * Maps a transport error to the catalogue. Returns the input unchanged when it is not a transport
 * failure (a bug, or something the caller must see as is).
 */
export function mapTransportError(err: unknown, provider: string, opts: UpstreamClientOptions): unknown {
  if (err instanceof GatewayError) return err;
  const timeout = (timeoutMs: number, phase: string) =>
    new GatewayError('upstream_timeout', { vars: { provider, timeoutMs, phase }, cause: err });
  if (err instanceof TotalTimeout) return timeout(opts.totalTimeoutMs, 'total');
  const code = errorCode(err);
  if (err instanceof undiciErrors.ConnectTimeoutError || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return timeout(opts.connectTimeoutMs, 'connect');
  }
  if (err instanceof undiciErrors.HeadersTimeoutError || code === 'UND_ERR_HEADERS_TIMEOUT') {
    return timeout(opts.firstByteTimeoutMs, 'first byte');
  }
  if (err instanceof undiciErrors.BodyTimeoutError || code === 'UND_ERR_BODY_TIMEOUT') {
    return timeout(opts.idleTimeoutMs, 'idle');
  }
  if (code !== undefined && (unavailableCodes.has(code) || code.startsWith('HPE_'))) {
    return new GatewayError('upstream_unavailable', { vars: { provider, detail: describe(code) }, cause: err });
  }
  return err;
}

function describe(code: string): string {
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'connection reset';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host name not found';
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
      return 'connection closed before the response was complete';
    default:
      return code.startsWith('HPE_') ? 'invalid HTTP response' : code;
  }
}

export function createUpstreamClient(opts: UpstreamClientOptions): UpstreamClient {
  const agent = new Agent({
    connections: opts.connectionsPerOrigin,
    connect: { timeout: opts.connectTimeoutMs },
    headersTimeout: opts.firstByteTimeoutMs,
    bodyTimeout: opts.idleTimeoutMs,
  });

  async function request(req: UpstreamRequest): Promise<UpstreamResponse> {
    const caller = req.signal;
    caller?.throwIfAborted();

    // One controller per call, aborted by the caller's signal or the total timer.
    const ac = new CallAbort();
    const onCallerAbort = () => ac.abort(caller!.reason);
    caller?.addEventListener('abort', onCallerAbort, { once: true });
    const timer = setTimeout(() => ac.abort(new TotalTimeout()), opts.totalTimeoutMs);
    // The timer must never keep the process alive on its own; `finish` clears it anyway.
    timer.unref();
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      caller?.removeEventListener('abort', onCallerAbort);
    };
    // Aborting frees the connection, so nothing is left to time.
    ac.once('abort', finish);

    const fail = (err: unknown): never => {
      finish();
      if (caller?.aborted) throw caller.reason;
      throw mapTransportError(err, req.provider, opts);
    };

    const url = new URL(req.url);
    let res: Awaited<ReturnType<Agent['request']>>;
    try {
      res = await agent.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: req.method,
        headers: req.headers,
        body: req.body,
        signal: ac,
      });
    } catch (err) {
      return fail(err);
    }

    const raw = res.body;
    // A plain iterator over undici's rather than an async generator: a stream's every chunk passes
    // here, and a generator adds its own queue and promise per chunk. Errors map as in fail();
    // the end, an error or an early return() all finish the call.
    const body = (): AsyncIterator<Uint8Array> & AsyncIterable<Uint8Array> => {
      const it = raw[Symbol.asyncIterator]();
      const next = (r: IteratorResult<unknown>): IteratorResult<Uint8Array> => {
        if (r.done) finish();
        return r as IteratorResult<Uint8Array>;
      };
      return {
        next: () => it.next().then(next, fail),
        return: async () => {
          finish();
          return (await it.return?.()) ?? { done: true, value: undefined };
        },
        [Symbol.asyncIterator]() {
          return this;
        },
      };
    };
    const text = async (): Promise<string> => {
      try {
        return await raw.text();
      } catch (err) {
        return fail(err);
      } finally {
        finish();
      }
    };

    return {
      status: res.statusCode,
      headers: res.headers,
      body: body(),
      text,
      json: async () => JSON.parse(await text()) as unknown,
      cancel: () => {
        // Destroying a body that has ended is a no-op in undici; before the end it aborts the request.
        raw.destroy();
        finish();
      },
      dump: async () => {
        try {
          await raw.dump();
        } catch {
          // The connection is being discarded either way.
        } finally {
          finish();
        }
      },
    };
  }

  return {
    request,
    close: () => agent.close(),
  };
}
