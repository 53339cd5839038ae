// Builds the Fastify app: request ids, the one error handler, one log line per request, routes.
// Routes translate HTTP ⇄ core calls and nothing else.
import { isUtf8 } from 'node:buffer';
import { STATUS_CODES, maxHeaderSize as httpMaxHeaderSize, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { AccountService } from '../core/accounts.js';
import type { BillingProvider } from '../core/billing.js';
import type { Balances } from '../core/balances.js';
import type { Catalog } from '../core/catalog.js';
import { ClientConnection } from '../core/client-link.js';
import type { Gateway } from '../core/gateway.js';
import type { KeyService } from '../core/keys.js';
import type { PlanMeter } from '../core/plan-meter.js';
import type { Principal } from '../core/metering.js';
import type { Pricing } from '../core/pricing.js';
import { SessionEpochs, type Sessions } from '../core/sessions.js';
import type { SigninService } from '../core/signin.js';
import type { PasswordResets } from '../core/password-reset.js';
import { GatewayError, UpstreamHttpError } from '../errors/gateway-error.js';
import { toErrorResponse, type ErrorResponse } from '../errors/http.js';
import type { Clock } from '../lib/clock.js';
import type { IdGenerator } from '../lib/ids.js';
import { nestsDeeperThan } from '../lib/json-depth.js';
import type { Provider } from '../providers/provider.js';
import { CounterStoreUnavailableError, type CounterStore } from '../storage/counters.js';
import { StorageUnavailableError, type Storage } from '../storage/ports.js';
import type { Metrics } from './metrics.js';
import { WebSessions } from './web-session.js';
import { charsetOf, UTF8_CHARSETS } from './charset.js';
import { Connections } from './connections.js';
import { adminRoutes } from './routes/admin.js';
import { appApiRoutes } from './routes/app-api.js';
import { billingWebhookRoutes } from './routes/billing-webhook.js';
import { appPageRoutes, defaultWebDist } from './routes/app-pages.js';
import { healthRoutes } from './routes/health.js';
import { v1Routes } from './routes/v1.js';

export interface AppDeps {
  config: Config;
  logger: Logger;
  clock: Clock;
  ids: IdGenerator;
  storage: Storage;
  catalog: Catalog;
  pricing: Pricing;
  gateway: Gateway;
  keys: KeyService;
  accounts: AccountService;
  providers: ReadonlyMap<string, Provider>;
  metrics: Metrics;
  meter: PlanMeter;
  balances: Balances;
  counters: CounterStore;
  sessions: Sessions;
  signin: SigninService;
  resets: PasswordResets;
  billing: BillingProvider;
  /** The built web app; default: web/dist of this checkout. */
  webDistDir?: string;
  /** Whether a stop has begun its drain (server.shutdownDelayMs): /readyz answers 503 meanwhile. */
  draining?: () => boolean;
}

/** What a request learned on its way, for the access log line. */
export interface RequestFacts {
  principal?: Principal;
  model?: string;
  credits?: number;
  /**
   * The error answered (its body's `error.code` and plan `rule`); `ours`: the gateway's own, from
   * the closed catalogue, not a provider's passed through (whose codes are the provider's).
   */
  error?: { code: string; rule?: string; ours: boolean };
  /** Marked gone when the client goes away before the response is complete. */
  client: ClientConnection;
}

declare module 'fastify' {
  interface FastifyRequest {
    facts: RequestFacts;
  }
}

/**
 * The deepest nesting of objects and arrays a JSON body may have. OpenAI's structured outputs allow
 * schemas 10 levels deep; at a few thousand, serialising the body again overflows the stack.
 */
const MAX_JSON_DEPTH = 256;

/**
 * How long a client may take to send one whole request, headers and body, ms: a 10 MiB body at about
 * 1.4 Mbit/s. Fastify's default is none at all, so a body trickled a byte at a time held its socket,
 * and the part already sent in memory, for ever — before any key was checked. Node enforces it on its
 * connection check every 30 s; a response (a long stream included) is not bounded by it.
 */
const REQUEST_ARRIVAL_MS = 60_000;

/** Marks a request whose Expect header the server cannot meet (checkExpectation). */
const UNMET_EXPECTATION = Symbol('unmetExpectation');

/** An API key's shape (`tg-` + base62, ids.ts), wherever a client put one in a path. */
const KEY_IN_PATH = /tg-[0-9A-Za-z]+/g;

/**
 * A whole key (43 base62 characters) in a model name: a model id may hold `tg-` itself
 * (`qwen-stg-7b`), and only a key's length of characters after it is masked.
 */
const KEY_IN_TEXT = /tg-[0-9A-Za-z]{43}/g;

/**
 * A model name as the access line records it: the client's text, clipped (the line is not the
 * client's to fill) after any key in it is masked (a cut could leave part of a key no mask matches).
 */
export function loggedModel(model: string): string {
  if (model.length <= 256) return model;
  const masked = model.replace(KEY_IN_TEXT, 'tg-[masked]');
  return masked.length > 256 ? `${masked.slice(0, 256)}…` : masked;
}

/** The logging levels (config `log.level`) at which the per-request access line is written. */
const VERBOSE_LEVELS = new Set(['info', 'debug', 'trace']);

/** Fastify's own errors that are really bad input, mapped into the catalogue. */
function fromFastifyError(err: { code?: string; message: string }, config: Config, req: FastifyRequest): GatewayError | null {
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      // Fastify says the same for a body that is not JSON and for JSON with a __proto__ key.
      return new GatewayError('invalid_json', { vars: { detail: 'check quoting, commas and brackets (a __proto__ or constructor.prototype key is refused too)' } });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new GatewayError('invalid_json', { vars: { detail: 'the body is empty' } });
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      // The route's own limit where it has one (sign-up and sign-in take less than the server's).
      return new GatewayError('body_too_large', { vars: { limit: req.routeOptions.bodyLimit ?? config.server.bodyLimitBytes } });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new GatewayError('unsupported_media_type', { vars: { header: 'Content-Type', value: String(req.headers['content-type'] ?? ''), expected: 'application/json' } });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new GatewayError('invalid_request', { vars: { detail: 'Content-Length does not match the body' } });
    default:
      // secure-json-parse refuses __proto__ / constructor.prototype keys with a SyntaxError.
      return err instanceof SyntaxError ? new GatewayError('invalid_json', { vars: { detail: err.message } }) : null;
  }
}

/** The stores' outages as the catalogue names them: a 503 to retry, not a bug's 500. */
function outageOf(err: unknown): GatewayError | null {
  // Admission maps the limiter's itself (limiter.onUnavailable); any other read or write of a
  // counter — a balance, a rule's usage — while the limiter is down lands here.
  if (err instanceof CounterStoreUnavailableError) return new GatewayError('limiter_unavailable', { cause: err, headers: { 'retry-after': '1' } });
  if (err instanceof StorageUnavailableError) return new GatewayError('storage_unavailable', { cause: err, headers: { 'retry-after': '1' } });
  return null;
}

/** An error as this request's answer (SPEC §5): status, headers and body; a bug is logged here. */
export function errorAnswer(deps: Pick<AppDeps, 'config' | 'clock'>, req: FastifyRequest, err: unknown): ErrorResponse {
  const mapped = outageOf(err) ?? (err instanceof Error ? (fromFastifyError(err as Error & { code?: string }, deps.config, req) ?? err) : err);
  const r = toErrorResponse(mapped, {
    requestId: req.id,
    path: req.url.split('?')[0] ?? req.url,
    publicUrl: deps.config.server.publicUrl,
    now: deps.clock.now(),
  });
  const answered = r.body.error as { code?: unknown; rule?: unknown } | undefined;
  if (req.facts && typeof answered?.code === 'string') {
    req.facts.error = { code: answered.code, ours: !(mapped instanceof UpstreamHttpError), ...(typeof answered.rule === 'string' && { rule: answered.rule }) };
  }
  if (r.unexpected) req.log.error({ reqId: req.id, err }, 'unexpected error');
  else if (mapped instanceof GatewayError && (mapped.code === 'upstream_auth_failed' || mapped.code === 'upstream_quota_exhausted')) {
    // The caller gets a 502 that hides the provider's words (they are about the operator's key or
    // account): the operator reads them here. Long key-like runs are masked, in case a provider echoes a key.
    const detail = mapped.cause instanceof Error ? mapped.cause.message.slice(0, 300).replace(/[\w-]{24,}/g, '[masked]') : undefined;
    // The messages stay literal in the call: docs.test.ts finds every logged message there, and the
    // quota one, kept in a variable, was the one line docs/operations.md never named.
    req.log.error(
      { reqId: req.id, ...mapped.vars, detail },
      mapped.code === 'upstream_auth_failed' ? "the provider refused the gateway's credentials: check its apiKey in providers" : "the provider account behind the gateway's key is out of quota or credit: top it up",
    );
  }
  return r;
}

/**
 * An error Node's HTTP parser raised on a connection (clientError): answered on the raw socket,
 * which is then closed, as Fastify's default handler does — with SPEC §5's body and a request id.
 */
function answerClientError(deps: Pick<AppDeps, 'config' | 'clock' | 'ids' | 'logger' | 'metrics'>, err: Error & { code?: string; rawPacket?: unknown }, socket: Duplex): void {
  // A client that left, or a socket already answered: nothing to say, nobody to say it to. Nor on
  // a socket whose response has begun (a request pipelined behind a stream): a status line in its
  // body would corrupt it. Node's own handler checks the same (lib/_http_server.js socketOnError).
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const error =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? new GatewayError('headers_too_large', { vars: { limit: httpMaxHeaderSize } })
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new GatewayError('request_timeout', { vars: { seconds: REQUEST_ARRIVAL_MS / 1000 } })
        : new GatewayError('invalid_request', { vars: { detail: 'the HTTP request is malformed' } });
  const requestId = deps.ids.requestId();
  const packet = Buffer.isBuffer(err.rawPacket) ? err.rawPacket.toString('latin1', 0, 2048) : '';
  const [, method = '', path = ''] = /^([A-Z]+) ([^\s?]+)/.exec(packet) ?? [];
  const r = toErrorResponse(error, { requestId, path, publicUrl: deps.config.server.publicUrl, now: deps.clock.now() });
  const body = JSON.stringify(r.body);
  socket.end(
    `HTTP/1.1 ${r.status} ${STATUS_CODES[r.status] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
  );
  // No Fastify request exists, so no hook runs: the access line and the count are written here, or
  // a flood of oversized or trickled requests (431, 408) left no trace in the log or /metrics. Not
  // for a connection that sent nothing (Node times out a preconnect or a TCP health check too):
  // no request was made, and each was a 408 in the log and /metrics.
  if ((socket as Duplex & { bytesRead?: number }).bytesRead === 0) return;
  deps.metrics.observeHttp('unmatched', r.status, 0);
  deps.metrics.observeError(error.code);
  if (VERBOSE_LEVELS.has(deps.logger.level)) {
    // The socket's address: no request was parsed, so no forwarded one can be believed.
    const ip = (socket as Duplex & { remoteAddress?: string }).remoteAddress;
    deps.logger.info({ reqId: requestId, method, path: path.replace(KEY_IN_PATH, 'tg-[masked]'), status: r.status, ms: 0, ip, code: error.code }, 'request');
  }
}

export function sendError(deps: Pick<AppDeps, 'config' | 'clock'>, req: FastifyRequest, reply: FastifyReply, err: unknown): FastifyReply {
  const r = errorAnswer(deps, req, err);
  return reply.code(r.status).headers(r.headers).send(r.body);
}

/**
 * What /v1 serves, said in its 404s: an SDK user's first call is often one of OpenAI's endpoints
 * this gateway does not serve (client.responses.create, moderations, audio), and "No route" alone
 * did not say which call to make instead.
 */
const V1_SERVED = ' This API serves POST /v1/chat/completions, POST /v1/embeddings, POST /v1/images/generations, GET /v1/models and GET /v1/usage; the rest of OpenAI\'s API (the Responses API included) is not served.';

/** The 404 of a path or method nothing serves (the app's, and /v1's so that its hooks run). */
export function routeNotFound(deps: AppDeps) {
  return (req: FastifyRequest, reply: FastifyReply) => {
    const path = req.url.split('?')[0] ?? '';
    const detail = path.startsWith('/v1/') ? V1_SERVED : '';
    sendError(deps, req, reply, new GatewayError('route_not_found', { vars: { method: req.method, path, detail } }));
  };
}

/** The status logged for a request whose client left before any response was sent (nginx's, and the ledger's). */
const CLIENT_CLOSED = 499;

/** An answered request in the metrics and, at info level and below, its one access line. */
function recordAnswer(deps: Pick<AppDeps, 'metrics'>, req: FastifyRequest, reply: FastifyReply, status = reply.statusCode): void {
  const f = req.facts;
  deps.metrics.observeHttp(req.routeOptions.url ?? 'unmatched', status, reply.elapsedTime / 1000);
  if (f.error?.ours) deps.metrics.observeError(f.error.code, f.error.rule);
  // With the level above info, the line is not even built.
  if (VERBOSE_LEVELS.has(req.log.level)) {
    req.log.info(
      {
        reqId: req.id,
        method: req.method,
        // An unmatched path is the client's text: a key pasted into the URL by mistake stays out.
        path: req.routeOptions.url ?? req.url.split('?')[0]!.replace(KEY_IN_PATH, 'tg-[masked]'),
        status,
        ms: Math.round(reply.elapsedTime * 100) / 100,
        // Who sent it (server.trustProxy decides whether a proxy's X-Forwarded-For is believed): the
        // first thing an operator asks of a line about a guessed password or a flood of 401s.
        ip: req.ip,
        account: f.principal?.account.id,
        key: f.principal?.key?.id,
        // The client's text too (an unknown model is logged as sent): a key pasted there stays out.
        model: f.model !== undefined && f.model.length >= 46 ? f.model.replace(KEY_IN_TEXT, 'tg-[masked]') : f.model,
        credits: f.credits,
        code: f.error?.code,
        rule: f.error?.rule,
        aborted: f.client.gone || undefined,
      },
      'request',
    );
  }
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // One access line per request comes from the onResponse hook below, not Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: () => deps.ids.requestId(),
    // No pino child per request (with redaction configured, making one cost ~2.5 % of the CPU of a
    // request even when nothing is logged): req.log is the app logger, and the two lines this app
    // writes per request carry `reqId` themselves.
    childLoggerFactory: (logger) => logger,
    // The request id is always ours (SPEC §5: a UUID equal to the body's requestId).
    requestIdHeader: false,
    bodyLimit: config.server.bodyLimitBytes,
    requestTimeout: REQUEST_ARRIVAL_MS,
    trustProxy: config.server.trustProxy,
    // Fastify's own 503 while closing has its own body and no request id; the onRequest hook below
    // answers those requests in SPEC §5's shape instead.
    return503OnClosing: false,
    // What Node's HTTP parser refuses before Fastify sees a request (bad framing, headers too
    // large, a request that never arrived whole) answers in SPEC §5's shape too, not Fastify's.
    clientErrorHandler: (err, socket) => answerClientError(deps, err, socket),
    // A URL the router refuses before any hook runs (bad percent-encoding, a path parameter over
    // 100 characters) is bad input like any other: SPEC §5's body and x-request-id, not Fastify's.
    frameworkErrors: (err, req, reply) => {
      req.facts = { client: new ClientConnection() };
      reply.header('x-request-id', req.id);
      sendError(deps, req, reply, new GatewayError('invalid_request', { vars: { detail: err.message } }));
      // No hook runs for these (Fastify's onBadUrl): without this, a request refused here left no
      // access line and no count in /metrics.
      recordAnswer(deps, req, reply);
    },
  });

  // JSON only: Fastify's default text/plain parser handed a string to the routes, which then said
  // "the body must be a JSON object" (400, no param) where every other wrong type gets 415. fetch()
  // and curl send text/plain or a form type when the caller forgets the header.
  app.removeContentTypeParser('text/plain');
  // Fastify's JSON parser (which refuses __proto__ keys), behind a check of how deeply the body nests.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, raw: Buffer, done) => {
    // Bodies are read as sent (Fastify decodes no Content-Encoding): a gzipped one was answered
    // "not valid JSON: check quoting…", and a plain one labelled compressed was served regardless.
    const encoding = req.headers['content-encoding'];
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
      done(new GatewayError('unsupported_media_type', { vars: { header: 'Content-Encoding', value: encoding, expected: 'the JSON body uncompressed' } }), undefined);
      return;
    }
    const charset = charsetOf(req.headers['content-type']);
    if (charset !== undefined && !UTF8_CHARSETS.has(charset)) {
      done(new GatewayError('unsupported_media_type', { vars: { header: 'Content-Type charset', value: charset, expected: 'the JSON body in UTF-8' } }), undefined);
      return;
    }
    // No body at all is no body, whatever the header says: many HTTP clients label every request
    // JSON, and a DELETE or an optional-body POST (a key's name) sent that way was refused as
    // "the body is empty". A route that needs a body says so itself (parseBody).
    if (raw.length === 0) {
      done(null, undefined);
      return;
    }
    // Read as a string, bytes that are not UTF-8 became U+FFFD and the request was served: an
    // undeclared latin-1 "é" reached the model as "�", as a declared one did before (charset.ts).
    if (!isUtf8(raw)) {
      done(new GatewayError('invalid_json', { vars: { detail: 'the body is not valid UTF-8 (JSON on the wire is UTF-8, RFC 8259 §8.1)' } }), undefined);
      return;
    }
    const body = raw.toString('utf8');
    if (nestsDeeperThan(body, MAX_JSON_DEPTH)) {
      done(new GatewayError('invalid_request', { vars: { detail: `the body nests objects and arrays more than ${MAX_JSON_DEPTH} deep` } }), undefined);
      return;
    }
    parseJson(req, body, done);
  });
  app.decorateRequest('facts', null as unknown as RequestFacts);
  // An Expect other than 100-continue (RFC 9110 §10.1.1): Node answers it itself with a bare 417 —
  // no body, no x-request-id, no access line — unless the server listens for it. Handed to Fastify
  // as any request, marked, and refused by the onRequest hook below in SPEC §5's shape.
  app.server.on('checkExpectation', (raw: IncomingMessage, res: ServerResponse) => {
    (raw as IncomingMessage & { [UNMET_EXPECTATION]?: true })[UNMET_EXPECTATION] = true;
    app.server.emit('request', raw, res);
  });
  /**
   * Set once close() began (a signal): the listener is closed, but a keep-alive connection still
   * carries requests — the next one after a stream that was in flight — until Fastify closes it.
   */
  let closing = false;
  const connections = new Connections(app.server);
  app.addHook('preClose', (done) => {
    closing = true;
    connections.closeUnused();
    done();
  });
  // Callback-style hooks: an async hook costs a promise per request on the hot path.
  app.addHook('onRequest', (req, reply, done) => {
    const client = new ClientConnection();
    req.facts = { client };
    const socket = req.raw.socket;
    connections.enter(socket);
    reply.raw.once('close', () => {
      connections.leave(socket);
      if (!reply.raw.writableFinished) {
        client.markGone();
        // Fastify runs onResponse on the response's 'finish', which a response the client left
        // never emits: such a request had no access line and no count in /metrics (`aborted` was
        // never logged). Its line is written now; what it is charged, once settled, is in the ledger.
        recordAnswer(deps, req, reply, reply.raw.headersSent ? reply.statusCode : CLIENT_CLOSED);
      }
    });
    reply.header('x-request-id', req.id);
    if ((req.raw as IncomingMessage & { [UNMET_EXPECTATION]?: true })[UNMET_EXPECTATION]) {
      // The client may be holding its body back for a 100 that will not come: the connection closes.
      done(new GatewayError('expectation_failed', { vars: { value: String(req.headers.expect) }, headers: { connection: 'close' } }));
      return;
    }
    done();
  });

  // A path or method nothing serves is answered before its body is parsed: Fastify parses the body
  // of a 404 like any other, so anyone could make the server parse megabytes of JSON (a 9 MB body
  // to POST /nothing: ~55 ms against ~17 ms for the same body to /v1 without a key). preParsing,
  // not onRequest: the plugins' own onRequest hooks run first — /v1's CORS headers, the admin
  // token and the web session (a stranger's unknown /admin or /app/api path stays a 401).
  const notFound = routeNotFound(deps);
  app.addHook('preParsing', (req, reply, _payload, done) => {
    if (closing) {
      // Here, not in onRequest, for the same reason: /v1's CORS headers let a page read the 503 and
      // its Retry-After. Fastify has already set `Connection: close`, so the retry opens a
      // connection elsewhere.
      sendError(deps, req, reply, new GatewayError('shutting_down', { headers: { 'retry-after': '1' } }));
      return;
    }
    if (req.is404) {
      notFound(req, reply);
      return;
    }
    done();
  });

  app.addHook('onResponse', (req, reply, done) => {
    recordAnswer(deps, req, reply);
    // Closing: the listener closed the connections idle at the time, but this one was busy. Left
    // open, it would hold the close (and the process) until the keep-alive timeout, 72 s after the
    // last stream ended. Next tick: Node detaches the response from its socket on the same event.
    if (closing) setImmediate(() => app.server.closeIdleConnections());
    done();
  });

  app.setErrorHandler((err, req, reply) => sendError(deps, req, reply, err));
  app.setNotFoundHandler(notFound);

  await app.register(healthRoutes(deps));
  await app.register(deps.metrics.routes(config.server.metricsToken));
  await app.register(v1Routes(deps), { prefix: '/v1' });
  await app.register(adminRoutes(deps), { prefix: '/admin/v1' });
  const web = new WebSessions(deps.sessions, new SessionEpochs(deps.counters, deps.clock), config.server.publicUrl);
  await app.register(appApiRoutes(deps, web), { prefix: '/app/api' });
  await app.register(billingWebhookRoutes(deps), { prefix: '/app/api/billing' });
  await app.register(appPageRoutes(web, deps.webDistDir ?? defaultWebDist()));
  return app;
}
