// The upstream HTTP client on undici. One Agent pools keep-alive connections per origin; undici
// enforces the connect timeout, and native timers per call the first-byte, idle and total ones by
// aborting it. Transport failures leave here as catalogue errors (upstream_timeout /
// upstream_unavailable); the caller's own abort leaves untouched.
import { Agent, errors as undiciErrors, util as undiciUtil } from 'undici';
import { GatewayError } from '../errors/gateway-error.js';
import { TurnQueue } from '../lib/turn-queue.js';
import { UpstreamBodyTooLarge, type UpstreamClient, type UpstreamRequest, type UpstreamResponse } from './types.js';

export interface UpstreamClientOptions {
  connectTimeoutMs: number;
  firstByteTimeoutMs: number;
  totalTimeoutMs: number;
  idleTimeoutMs: number;
  /** Request sent → answer, for a call that does not stream (wholeAnswer); absent: the total limit alone. */
  answerTimeoutMs?: number | undefined;
  connectionsPerOrigin: number;
}

/** Abort reason of the total timer, recognised by identity. */
class TotalTimeout extends Error {}
/** Abort reason of a whole-answer call whose answer did not come within answerTimeoutMs. */
class AnswerTimeout extends Error {}

/** Why a body read fails after cancel(): the caller stopped it (not mapped to the catalogue). */
const cancelled = () => new undiciErrors.RequestAbortedError('the upstream response was cancelled');

// Chunks queued unread before the socket is paused (backpressure), and how much of an unwanted
// body dump() reads to keep the connection before closing it instead (as undici's own dump).
const HIGH_WATER_CHUNKS = 16;
const DUMP_LIMIT_BYTES = 128 * 1024;

type Waiter<T> = { resolve: (v: T) => void; reject: (err: unknown) => void };

/**
 * The timeouts of one call's phases, ms (0: none): the head, the body's first chunk after it, and
 * each silence after that; wholeAnswer: the head is the answer.
 */
type PhaseTimeouts = { firstByteMs: number; firstChunkMs: number; idleMs: number; wholeAnswer: boolean };

/**
 * A call's first-byte or idle timer fired: which one, by whether the head has come. Decided after
 * this turn's I/O, not at once: a process that was stalled (SIGSTOP, a paused VM) wakes with its
 * timers overdue and the upstream's bytes already waiting, and libuv runs timers before it reads
 * sockets — the answer the provider made and billed for would be thrown away as a timeout.
 */
function phaseTimedOut(call: Call): void {
  const seen = call.progress;
  setImmediate(() => {
    if (call.done || call.progress !== seen) return; // the bytes came: onData re-armed the timer
    const reason = !call.headSeen
      ? call.wholeAnswer
        ? new AnswerTimeout()
        : new undiciErrors.HeadersTimeoutError()
      : call.bodySeen || call.wholeAnswer
        ? new undiciErrors.BodyTimeoutError()
        : new AnswerTimeout(); // a stream's head came, its first event did not
    call.abort(reason);
  });
}

/**
 * One upstream call as an undici dispatch handler (the callback interface its clients drive:
 * https://undici.nodejs.org/#/docs/api/Dispatcher?id=dispatcherdispatchoptions-handler). Rather than
 * `Agent.request`, whose response body is a Readable consumed through its async iterator: a
 * stream's every chunk went through Readable's buffering, a nextTick and the iterator's events,
 * and every call paid an AsyncResource. Here a chunk goes straight to the reader waiting for it,
 * or into a short queue that pauses the socket when it fills.
 */
class Call {
  status = 0;
  headers: Record<string, string | string[] | undefined> = {};
  /** Settles when the response head arrives, or with the error that came first. */
  readonly head: Promise<void>;
  private headWaiter!: Waiter<void>;
  headSeen = false;
  /** Whether a chunk of the body has come (the first starts the idle phase). */
  bodySeen = false;
  /** Counts the head and the body's chunks, so a timer that fired can tell whether bytes came since. */
  progress = 0;
  /**
   * First byte, then idle: one native timer, armed when undici puts the request on a socket,
   * refreshed by every chunk. undici's own (headersTimeout, bodyTimeout) are off: it allocates a
   * new fast timer per request and keeps it in its timer list until its next 500 ms tick, so each
   * request left one to the old generation (`bench/promotion.mjs`, 3,000 req/s: 73 → 18 B per
   * request promoted without them; bench/README.md).
   */
  private timer: NodeJS.Timeout | undefined;
  private abortFn: ((reason: Error) => void) | undefined;
  private abortReason: Error | undefined;
  private resumeFn: (() => void) | undefined;
  private paused = false;
  private queue: Buffer[] = [];
  private reader: Waiter<IteratorResult<Uint8Array>> | undefined;
  private endWaiters: Waiter<void>[] = [];
  private ended = false;
  private failure: { err: unknown } | undefined;
  /** dump(): chunks are dropped as they come. */
  private discarding = 0;
  /** text(): the queue holds the whole body, so it never pauses the socket. */
  private collecting = false;
  /** text(maxBytes): how much it may hold, and holds. */
  private collectLimit = Number.POSITIVE_INFINITY;
  private collected = 0;

  constructor(
    private readonly onDone: () => void,
    private readonly timeouts: PhaseTimeouts,
  ) {
    this.head = new Promise<void>((resolve, reject) => (this.headWaiter = { resolve, reject }));
  }

  /** Stops the call: before the head the request is aborted, after it the connection is closed. */
  abort(reason: Error): void {
    if (this.ended || this.failure) return;
    if (this.abortFn) this.abortFn(reason);
    else this.abortReason ??= reason; // not on a socket yet: aborted in onConnect
  }

  get wholeAnswer(): boolean {
    return this.timeouts.wholeAnswer;
  }

  get done(): boolean {
    return this.ended || this.failure !== undefined;
  }

  // --- undici's side ---

  onConnect(abort: (reason: Error) => void): void {
    if (this.abortReason) return abort(this.abortReason);
    this.abortFn = abort;
    this.arm(this.timeouts.firstByteMs);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx: the real head follows
    this.status = statusCode;
    this.headers = undiciUtil.parseHeaders(rawHeaders) as Record<string, string | string[] | undefined>;
    this.resumeFn = resume;
    this.headSeen = true;
    this.progress++;
    if (this.timeouts.firstChunkMs === this.timeouts.firstByteMs) this.timer?.refresh();
    else this.arm(this.timeouts.firstChunkMs);
    this.headWaiter.resolve();
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.bodySeen || this.timeouts.firstChunkMs === this.timeouts.idleMs) this.timer?.refresh();
    else this.arm(this.timeouts.idleMs);
    this.bodySeen = true;
    this.progress++;
    if (this.discarding > 0) {
      this.discarding -= chunk.length;
      if (this.discarding <= 0) this.abort(cancelled());
      return true;
    }
    const reader = this.reader;
    if (reader) {
      this.reader = undefined;
      reader.resolve({ done: false, value: chunk });
      return true;
    }
    this.queue.push(chunk);
    if (this.collecting) {
      this.collected += chunk.length;
      if (this.collected > this.collectLimit) {
        this.queue = [];
        this.abort(new UpstreamBodyTooLarge(this.collectLimit));
      }
      return true;
    }
    if (this.queue.length < HIGH_WATER_CHUNKS) return true;
    // Paused for our reader, not silent on the upstream's part: no idle timeout until resumed.
    this.paused = true;
    this.disarm();
    return false;
  }

  onComplete(): void {
    this.disarm();
    this.ended = true;
    this.onDone();
    if (this.reader) this.next().then(this.reader.resolve, this.reader.reject);
    for (const w of this.endWaiters.splice(0)) w.resolve();
  }

  onError(err: Error): void {
    if (this.done) return;
    this.disarm();
    this.failure = { err };
    this.onDone();
    if (!this.headSeen) this.headWaiter.reject(err);
    const reader = this.reader;
    this.reader = undefined;
    reader?.reject(err);
    for (const w of this.endWaiters.splice(0)) w.reject(err);
  }

  // --- the reader's side ---

  /** The next chunk; after the end `done`; a failure rejects (queued chunks are read first). */
  next(): Promise<IteratorResult<Uint8Array>> {
    const chunk = this.queue.shift();
    if (chunk !== undefined) {
      if (this.paused && this.queue.length === 0) this.unpause();
      return Promise.resolve({ done: false, value: chunk });
    }
    if (this.failure) return Promise.reject(this.failure.err);
    if (this.ended) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => (this.reader = { resolve, reject }));
  }

  /** The whole body as text; past `maxBytes` the call is cut off (UpstreamBodyTooLarge). */
  async text(maxBytes = Number.POSITIVE_INFINITY): Promise<string> {
    this.collecting = true;
    this.collectLimit = maxBytes;
    this.collected = this.queue.reduce((n, c) => n + c.length, 0);
    if (this.collected > maxBytes) this.abort(new UpstreamBodyTooLarge(maxBytes));
    if (this.paused) this.unpause();
    await this.end();
    const parts = this.queue.splice(0);
    return (parts.length === 1 ? parts[0]! : Buffer.concat(parts)).toString('utf8');
  }

  /** Reads and drops the rest of the body (up to DUMP_LIMIT_BYTES, then closes the connection). */
  async dump(): Promise<void> {
    if (this.done) return;
    this.queue = [];
    this.discarding = DUMP_LIMIT_BYTES;
    if (this.paused) this.unpause();
    await this.end().catch(() => {});
  }

  private unpause(): void {
    this.paused = false;
    // A cleared Node timer cannot be refreshed back to life: a new one.
    if (!this.done) this.arm(this.timeouts.idleMs);
    this.resumeFn?.();
  }

  /** Arms the phase timer; 0: no timer for this phase (the total timer still runs). */
  private arm(ms: number): void {
    clearTimeout(this.timer);
    if (ms === 0) {
      this.timer = undefined;
      return;
    }
    this.timer = setTimeout(phaseTimedOut, ms, this);
    this.timer.unref();
  }

  private disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private end(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure.err);
    if (this.ended) return Promise.resolve();
    return new Promise((resolve, reject) => this.endWaiters.push({ resolve, reject }));
  }
}

const LOCAL_EXHAUSTION = ['EMFILE', 'ENFILE', 'EADDRNOTAVAIL', 'ENOBUFS', 'ENOMEM'] as const;

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
  // The gateway's own side out of file descriptors, memory or local ports: the call could not be
  // made, which is no bug of the request's (it was a logged 500 internal_error).
  ...LOCAL_EXHAUSTION,
]);

/**
 * Of those, the ones that happen before a request is on the wire (no connection, no address, a
 * failed TLS handshake, the gateway's own exhaustion): `stage: 'connect'` in the error's vars, so a
 * model's next provider may take the call (core/routes.ts). A reset or a closed socket may come
 * after the provider read the request and did the work.
 */
const beforeSendCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EPROTO', ...LOCAL_EXHAUSTION]);

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
  if (err instanceof AnswerTimeout) return timeout(opts.answerTimeoutMs ?? opts.totalTimeoutMs, 'answer');
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
    const stage = beforeSendCodes.has(code) ? 'connect' : 'exchange';
    return new GatewayError('upstream_unavailable', { vars: { provider, detail: describe(code), stage }, cause: err });
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
    case 'EMFILE':
    case 'ENFILE':
    case 'EADDRNOTAVAIL':
    case 'ENOBUFS':
    case 'ENOMEM':
      return `the gateway could not open a connection (${code}: out of file descriptors, ports or memory)`;
    default:
      return code.startsWith('HPE_') ? 'invalid HTTP response' : code;
  }
}

/**
 * Parsed request URLs. Every URL the gateway calls is a configured base URL plus one of a few
 * endpoint paths, so the set is small and parsing each call's URL again (a WHATWG parse per
 * request) is waste. Bounded anyway: cleared if it ever grows past the cap.
 */
const targets = new Map<string, { origin: string; path: string }>();
const TARGETS_CAP = 1000;

function targetOf(href: string): { origin: string; path: string } {
  let t = targets.get(href);
  if (t === undefined) {
    const url = new URL(href);
    t = { origin: url.origin, path: url.pathname + url.search };
    if (targets.size >= TARGETS_CAP) targets.clear();
    targets.set(href, t);
  }
  return t;
}

export function createUpstreamClient(opts: UpstreamClientOptions): UpstreamClient {
  const dispatches = new TurnQueue();
  const agent = new Agent({
    connections: opts.connectionsPerOrigin,
    connect: { timeout: opts.connectTimeoutMs },
    // 0: off. Each Call runs these two on a native timer instead (Call.timer says why).
    headersTimeout: 0,
    bodyTimeout: 0,
  });
  // A stream's head comes at once, but its first event only when the model has an answer to begin:
  // OpenAI's Chat Completions sends nothing while a reasoning model thinks, often past a minute
  // (https://github.com/mezmo/aura/issues/62). The idle limit there cut streams the provider made
  // and billed; the wait for the first event has the answer's limit, or none but the total one.
  const phases: PhaseTimeouts = { firstByteMs: opts.firstByteTimeoutMs, firstChunkMs: opts.answerTimeoutMs ?? 0, idleMs: opts.idleTimeoutMs, wholeAnswer: false };
  // A call that does not stream gets its head only with the whole answer, so the first-byte limit
  // (made for a stream's head, which a live upstream sends at once) would cut long answers the
  // provider made and billed; its own limit, or none but the total one. Its body follows its head.
  const wholeAnswerPhases: PhaseTimeouts = { firstByteMs: opts.answerTimeoutMs ?? 0, firstChunkMs: opts.idleTimeoutMs, idleMs: opts.idleTimeoutMs, wholeAnswer: true };

  async function request(req: UpstreamRequest): Promise<UpstreamResponse> {
    const caller = req.signal;
    caller?.throwIfAborted();

    // The total timer and the caller's signal both end in call.abort(); `finish` runs once the
    // call is over however it ended, and lets go of both.
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      caller?.removeEventListener('abort', onCallerAbort);
    };
    const call = new Call(finish, req.wholeAnswer === true ? wholeAnswerPhases : phases);
    const onCallerAbort = () => call.abort(caller!.reason instanceof Error ? caller!.reason : new Error(String(caller!.reason)));
    caller?.addEventListener('abort', onCallerAbort, { once: true });
    const timer = setTimeout(() => call.abort(new TotalTimeout()), opts.totalTimeoutMs);
    // The timer must never keep the process alive on its own; `finish` clears it anyway.
    timer.unref();

    const fail = (err: unknown): never => {
      finish();
      if (caller?.aborted) throw caller.reason;
      throw mapTransportError(err, req.provider, opts);
    };

    try {
      const target = targetOf(req.url);
      const options = { origin: target.origin, path: target.path, method: req.method, headers: req.headers, body: req.body ?? null };
      const send = () => {
        try {
          agent.dispatch(options, call);
        } catch (err) {
          call.onError(err as Error);
        }
      };
      // Sent with the rest of this turn's upstream requests (lib/turn-queue.ts). A caller abort
      // in between reaches undici through onConnect, as one before the socket is ready does.
      dispatches.push(send);
      await call.head;
    } catch (err) {
      return fail(err);
    }

    // A plain iterator, not an async generator: a stream's every chunk passes here. Errors map as
    // in fail(); the end, an error or an early return() all finish the call.
    const body: AsyncIterator<Uint8Array> & AsyncIterable<Uint8Array> = {
      next: () => call.next().catch(fail),
      return: async () => {
        cancel();
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
    const text = (maxBytes?: number) => call.text(maxBytes).catch(fail);
    const cancel = () => {
      // Once the body has ended there is nothing to stop (the usual case: a stream read to its end
      // is closed too, so no error is built for it); before, the connection is closed.
      if (!call.done) call.abort(cancelled());
      finish();
    };

    return {
      status: call.status,
      headers: call.headers,
      body,
      text,
      json: async () => JSON.parse(await text()) as unknown,
      cancel,
      dump: async () => {
        await call.dump();
        finish();
      },
    };
  }

  return {
    request,
    close: () => agent.close(),
  };
}
