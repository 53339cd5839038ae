// Composition root: config → stores and providers → gateway → HTTP app → listen. Tests build the
// same thing with an injected clock, ids, upstream client or config and listen on port 0.
import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import type { Config } from './config/schema.js';
import { createBillingProvider } from './billing/registry.js';
import { Gateway } from './core/gateway.js';
import { PlanMeter } from './core/plan-meter.js';
import { ReceiptDrain } from './core/receipt-drain.js';
import { Sessions, sessionSecretOf } from './core/sessions.js';
import { PasswordResets } from './core/password-reset.js';
import { SigninService } from './core/signin.js';
import { buildApp } from './http/app.js';
import { Metrics } from './http/metrics.js';
import { createProviders } from './providers/registry.js';
import { buildServices, type ServiceOptions, type Services } from './services.js';
import { RedisCounterStore } from './storage/redis/counters.js';
import { SqliteCounterStore } from './storage/sqlite/counters.js';
import { createUpstreamClient } from './upstream/client.js';
import type { UpstreamClient } from './upstream/types.js';

/**
 * A receipt younger than this is left to its own process, which writes the record within a ledger
 * commit of settling; an older one was left behind (the drain writing a young one is harmless,
 * only wasted).
 */
const RECEIPT_GRACE_MS = 1000;

/** The shortest admin token or session secret that passes without a warning (256 bits of base64). */
const MIN_SECRET_CHARS = 32;

export interface GatewayOptions extends ServiceOptions {
  config: Config;
  logger?: Logger;
  upstream?: UpstreamClient;
  /** The built web app to serve (tests); default web/dist of this checkout. */
  webDistDir?: string;
  /** Told after the gateway closed itself because it can no longer serve safely (its database file's lease was taken). */
  onFatal?: () => void;
}

export interface RunningGateway extends Services {
  app: FastifyInstance;
  gateway: Gateway;
  meter: PlanMeter;
  logger: Logger;
  /** Base URL the server listens on (after listen()). */
  url: string;
  /**
   * The first step of a stop: /readyz answers 503 while requests are still served, for
   * server.shutdownDelayMs; resolves when that has passed (at once for 0). close() comes after.
   */
  drain(): Promise<void>;
  close(): Promise<void>;
}

export function createLogger(config: Config): Logger {
  return pino({
    level: config.logging.level,
    // Defence in depth: no code path logs these, and if one ever does they come out redacted.
    redact: {
      paths: ['req.headers.authorization', 'headers.authorization', 'authorization', 'apiKey', '*.apiKey', 'secret', 'key.secret', 'token'],
      censor: '[redacted]',
    },
  });
}

/** Builds the whole gateway without listening. */
export async function createGateway(opts: GatewayOptions): Promise<RunningGateway> {
  const { config } = opts;
  const logger = opts.logger ?? createLogger(config);
  const services = await buildServices(config, {
    ...opts,
    onBackgroundError: opts.onBackgroundError ?? ((err) => logger.warn({ err }, 'background write failed')),
  });
  services.accounts.onRecordFailed = (err) => logger.error({ err }, 'a top-up was credited but its record in the balance history was not written');
  // Closes once, however often asked (a lost lease, a signal, a test); set up once everything exists.
  let closeGateway: (() => Promise<void>) | undefined;
  let closing: Promise<void> | undefined;
  /** The lease was lost before the gateway was whole: it closes as soon as it is. */
  let lostEarly = false;
  const close = (): Promise<void> => (closing ??= closeGateway?.() ?? Promise.resolve());
  if (services.counters instanceof SqliteCounterStore) {
    try {
      await services.counters.claimServer({
        // Fail-stop: the other server now counts and writes for this file; serving on would
        // admit past every limit and write beside its log. Stop accepting and close.
        onLost: (holder) => {
          logger.error({ holder }, 'another server took over this database file: this one stops serving');
          if (closeGateway) void close().then(() => opts.onFatal?.());
          else lostEarly = true;
        },
        onError: (err) => logger.warn({ err }, 'the server lease heartbeat failed; the next one tries again'),
        applyEveryMs: config.storage.pendingApplyMs,
        onWriteError: (err) => logger.error({ err }, 'applying the pending log to the database failed'),
      });
    } catch (err) {
      // Counters first: the embedded limiter writes through the storage's connection.
      await services.counters.close();
      await services.storage.close();
      throw err;
    }
  }
  const upstream = opts.upstream ?? createUpstreamClient(config.upstream);
  const providers = createProviders(config.providers, upstream);
  const metrics = new Metrics();
  if (services.counters instanceof SqliteCounterStore) {
    const counters = services.counters;
    metrics.watchPendingLog(() => counters.pendingLogStats());
  }
  if (services.counters instanceof RedisCounterStore) {
    const counters = services.counters;
    const refusing = config.limiter.onUnavailable === 'closed';
    counters.watchConnection(
      (err) =>
        logger.error(
          { err: err.message },
          refusing ? 'limiter (Redis) unreachable: metered requests get 503 limiter_unavailable until it answers' : 'limiter (Redis) unreachable: admitting requests unmetered (limiter.onUnavailable: open) until it answers',
        ),
      () => {
        logger.warn('limiter (Redis) answers again');
        // What `serve` checked at start may have changed with the restart (a Redis started without
        // its config file runs without appendonly, and loses every balance on its next restart).
        void counters.persistenceWarning().then((warning) => warning && logger.warn(warning));
      },
    );
  }
  const meter = new PlanMeter({
    plans: services.plans,
    defaultPlan: config.defaultPlan,
    publicUrl: config.server.publicUrl,
    store: services.counters,
    clock: services.clock,
    reservationTtlMs: config.metering.reservationTtlMs,
    renewEveryMs: config.metering.renewEveryMs,
    // Rounds of upstream calls, each bounded by totalTimeoutMs on its own: an image answer that
    // names files, then their downloads (b64_json), and before the answer one call per route a
    // model's fallbacks give it (core/routes.ts). Bounded by one round, the reservation of a call
    // still downloading lapsed, and the credits or balance it held were admitted again meanwhile.
    maxHoldMs: (longestRoutes(config) + 1) * config.upstream.totalTimeoutMs + config.metering.drainUsageMs + config.metering.reservationTtlMs,
    onUnavailable: config.limiter.onUnavailable,
    logger,
  });
  const counters = services.counters;
  metrics.watchLimiter(() => !(counters instanceof RedisCounterStore) || counters.answering, () => meter.pendingCharges);
  const { receipts } = services.counters;
  const receiptDrain =
    receipts &&
    new ReceiptDrain({
      receipts,
      ledger: services.storage.ledger,
      clock: services.clock,
      everyMs: config.metering.reservationTtlMs,
      graceMs: RECEIPT_GRACE_MS,
      logger,
    });
  if (services.counters instanceof RedisCounterStore) {
    // Charges owed since Redis went away (kept in the ledger, storage/ports.ts OwedCharges), and
    // those and the give-backs the meter holds in memory, land as soon as it answers, not a drain
    // period or a renewal later: until they do, the counters miss the charges (a request that does
    // not fit the limit is admitted) and still hold what was to be given back (a concurrency slot).
    services.counters.watchConnection(
      () => {},
      () => {
        receiptDrain?.soon();
        void meter.drainBacklog();
      },
    );
  }
  const gateway = new Gateway({
    catalog: services.catalog,
    pricing: services.pricing,
    providers,
    meter,
    drainUsageMs: config.metering.drainUsageMs,
    fallbackCooldownMs: config.upstream.fallbackCooldownMs,
    ledger: services.storage.ledger,
    clock: services.clock,
    logger,
    onRecord: (r) => metrics.observeRecord(r),
    onFallback: (model, provider) => metrics.observeFallback(model, provider),
    ...(receiptDrain && { receipts: receiptDrain }),
  });
  // Left empty: a random secret per start (as before) signed everybody out at every restart and
  // made each instance refuse the others' sessions and reset links. Kept in the database instead, it
  // is made once and shared by every instance on the same storage, as a set one would be.
  const sessionSecret = await sessionSecretOf(config.web.sessionSecret, services.storage);
  if (config.web.sessionSecret === '') {
    logger.info(
      'web.sessionSecret is empty: signing sessions with a secret kept in the database (set TOLLGATE_SESSION_SECRET, or web.sessionSecret in a config file, to keep it out of the database)',
    );
  }
  // Both are guessed offline or online by whoever has time: a session cookie is an HMAC under the
  // secret, so a short secret is found from one's own cookie, and then any account's session forged.
  for (const [name, value] of [['web.sessionSecret', config.web.sessionSecret], ['admin.token', config.admin.token]] as const) {
    if (value !== '' && value.length < MIN_SECRET_CHARS) {
      logger.warn(`${name} is ${value.length} characters: use at least ${MIN_SECRET_CHARS} random ones (e.g. openssl rand -base64 32)`);
    }
  }
  const sessions = new Sessions(sessionSecret, config.web.sessionTtlHours * 3_600_000, services.clock);
  const signin = new SigninService(services.accounts, services.counters, services.clock, {
    attemptsPerMinute: config.web.signinAttemptsPerMinute,
    failuresPerHour: config.web.signinFailuresPerHour,
    signupsPerHour: config.web.signupsPerHour,
    wrongPasswordDelayMs: config.web.wrongPasswordDelayMs,
  });
  const resets = new PasswordResets(services.accounts, sessions, services.clock, config.server.publicUrl);
  const billing = createBillingProvider(config.billing, {
    accounts: services.accounts,
    counters: services.counters,
    clock: services.clock,
    publicUrl: config.server.publicUrl,
    creditsPerUsd: config.credits.perUsd,
    upstream,
  });
  // A stop's first step (server.shutdownDelayMs): /readyz answers 503 while requests are still served.
  let draining: Promise<void> | undefined;
  const drain = (): Promise<void> =>
    (draining ??= new Promise<void>((resolve) => {
      const ms = config.server.shutdownDelayMs;
      if (ms === 0) resolve();
      else setTimeout(resolve, ms);
    }));
  const app = await buildApp({
    ...services,
    logger,
    gateway,
    providers,
    metrics,
    meter,
    sessions,
    signin,
    resets,
    billing,
    ...(opts.webDistDir !== undefined && { webDistDir: opts.webDistDir }),
    draining: () => draining !== undefined,
  });
  closeGateway = async () => {
    // Stop accepting, let in-flight requests finish (and settle), then release resources.
    await app.close();
    await meter.close();
    await receiptDrain?.close();
    await upstream.close();
    // Counters first: the embedded limiter writes through the storage's connection.
    await services.counters.close();
    await services.storage.close();
  };
  if (lostEarly) void close().then(() => opts.onFatal?.());
  return {
    ...services,
    app,
    gateway,
    meter,
    logger,
    url: '',
    drain,
    close,
  };
}

/** Builds and listens on config.server.host:port. */
export async function startGateway(opts: GatewayOptions): Promise<RunningGateway> {
  const gw = await createGateway(opts);
  try {
    await gw.app.listen({ host: opts.config.server.host, port: opts.config.server.port });
  } catch (err) {
    await gw.close();
    throw err;
  }
  const addr = gw.app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.config.server.port;
  const host = opts.config.server.host.includes(':') ? `[${opts.config.server.host}]` : opts.config.server.host;
  gw.url = `http://${host}:${port}`;
  return gw;
}

/** The most routes one model has: its provider and its fallbacks. */
function longestRoutes(config: Config): number {
  return config.models.reduce((most, m) => Math.max(most, 1 + (m.fallbacks?.length ?? 0)), 1);
}
