// Prometheus metrics (SPEC §11). One registry per app, not prom-client's global one, so several
// gateways in one process (tests) do not collide.
import type { FastifyPluginAsync } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Registry, type MetricValueWithName } from 'prom-client';
import { GatewayError } from '../errors/gateway-error.js';
import type { UsageRecord } from '../storage/ports.js';
import { bearerToken, secretsEqual } from './auth.js';

/**
 * A counter whose per-request increments are plain additions: prom-client hashes and validates
 * the label object on every inc() (≈ 2 % of a request's CPU with five counters a request), so the
 * totals are kept here by label values and handed to prom-client when it is scraped (collect).
 * Label sets are bounded (routes, statuses, configured models, surfaces, directions).
 */
class FastCounter<L extends string> {
  private readonly totals = new Map<string, { values: string[]; total: number; reported: number }>();

  constructor(registry: Registry, config: { name: string; help: string; labelNames: readonly L[] }) {
    const totals = this.totals;
    const names = config.labelNames;
    new Counter({
      ...config,
      registers: [registry],
      collect() {
        for (const t of totals.values()) {
          if (t.total === t.reported) continue;
          const labels = Object.fromEntries(names.map((n, i) => [n, t.values[i]!])) as Record<L, string>;
          this.inc(labels, t.total - t.reported);
          t.reported = t.total;
        }
      },
    });
  }

  /** Label values in labelNames order. */
  inc(values: string[], by = 1): void {
    const key = values.join('\u0000');
    const t = this.totals.get(key);
    if (t) t.total += by;
    else this.totals.set(key, { values, total: by, reported: 0 });
  }
}

/**
 * A histogram with one label whose observe() is an array increment, for the same reason as
 * FastCounter: prom-client's Histogram validates and hashes the label object on every observation.
 * It is exported through prom-client's registry as a histogram of the usual shape (cumulative
 * `_bucket{le}`, `_sum`, `_count`), built by get() at scrape time.
 */
class FastHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();

  constructor(
    registry: Registry,
    readonly name: string,
    readonly help: string,
    private readonly labelName: string,
    private readonly bounds: readonly number[],
  ) {
    // The registry needs only name, help, type, get() and reset(); see prom-client's Registry.
    registry.registerMetric(this as never);
  }

  observe(label: string, value: number): void {
    let s = this.series.get(label);
    if (s === undefined) this.series.set(label, (s = { counts: new Array<number>(this.bounds.length).fill(0), sum: 0, count: 0 }));
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]!) i++;
    if (i < this.bounds.length) s.counts[i]! += 1;
    s.sum += value;
    s.count += 1;
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValueWithName<string>[] } {
    const values: MetricValueWithName<string>[] = [];
    for (const [label, s] of this.series) {
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += s.counts[i]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { le, [this.labelName]: label }, value: acc });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', [this.labelName]: label }, value: s.count });
      values.push({ metricName: `${this.name}_sum`, labels: { [this.labelName]: label }, value: s.sum });
      values.push({ metricName: `${this.name}_count`, labels: { [this.labelName]: label }, value: s.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.series.clear();
  }
}

export class Metrics {
  readonly registry = new Registry();
  private readonly requests = new FastCounter(this.registry, {
    name: 'tollgate_http_requests_total',
    help: 'HTTP requests answered, by route and status.',
    labelNames: ['route', 'status'] as const,
  });
  private readonly duration = new FastHistogram(
    this.registry,
    'tollgate_http_request_duration_seconds',
    'Time to the end of the response (streams: the whole stream), by route.',
    'route',
    // Up to upstream.totalTimeoutMs' default (10 min): an LLM call, a stream above all, takes
    // seconds to minutes, and with 60 s the last bound every long one fell in +Inf, where no
    // quantile can be read (a p99 of "over a minute"). The bounds below a second are the gateway's own routes.
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
  );
  private readonly settled = new FastCounter(this.registry, {
    name: 'tollgate_settled_requests_total',
    help: 'Requests settled into the ledger, by model, surface and status.',
    labelNames: ['model', 'surface', 'status'] as const,
  });
  private readonly credits = new FastCounter(this.registry, {
    name: 'tollgate_credits_charged_total',
    help: 'Credits charged, by model, surface and the provider that served the call (a fallback included).',
    labelNames: ['model', 'surface', 'provider'] as const,
  });
  private readonly tokens = new FastCounter(this.registry, {
    name: 'tollgate_tokens_total',
    help: 'Tokens metered, by model and direction (prompt, output).',
    labelNames: ['model', 'direction'] as const,
  });

  private readonly errors = new FastCounter(this.registry, {
    name: 'tollgate_errors_total',
    help: "Error answers the gateway made itself (docs/errors.md codes, not a provider's errors passed through), by code and the plan rule that refused ('' for none).",
    labelNames: ['code', 'rule'] as const,
  });

  private readonly fallbacks = new FastCounter(this.registry, {
    name: 'tollgate_upstream_fallbacks_total',
    help: "Calls handed to a model's next provider (models[].fallbacks), by model and the provider that failed without doing the work.",
    labelNames: ['model', 'provider'] as const,
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'tollgate_' });
  }

  /**
   * Exports the SQLite server's pending log (storage/sqlite/pending-log.ts): batches applied by
   * its worker thread and on the event loop, and the writes waiting. Batches applied on the event
   * loop stall every request meanwhile; a rising count of them under load means the worker falls
   * behind (docs/operations.md).
   */
  watchPendingLog(stats: () => { here: number; byWorker: number; waiting: number } | undefined): void {
    const reported = { worker: 0, event_loop: 0 };
    new Counter({
      name: 'tollgate_pending_log_applies_total',
      help: 'Batches of the pending log applied to the SQLite tables, by thread (worker, event_loop).',
      labelNames: ['thread'] as const,
      registers: [this.registry],
      collect() {
        const s = stats();
        if (s === undefined) return;
        for (const [thread, total] of [['worker', s.byWorker], ['event_loop', s.here]] as const) {
          this.inc({ thread }, total - reported[thread]);
          reported[thread] = total;
        }
      },
    });
    new Gauge({
      name: 'tollgate_pending_log_waiting_writes',
      help: 'Writes (usage records, counter settlements) in the pending log, not yet applied to the SQLite tables.',
      registers: [this.registry],
      collect() {
        this.set(stats()?.waiting ?? 0);
      },
    });
  }

  /**
   * Exports the limiter's state at scrape time: whether it answers (Redis: not lost nor stalled,
   * RedisCounterStore.answering; the embedded limiter lives in the process) and the charges and
   * give-backs waiting in memory for it (PlanMeter.pendingCharges, dropped past 100,000). Under
   * limiter.onUnavailable: open an outage refuses nothing, so no error count shows it: without
   * these /metrics said nothing while every request was served unmetered.
   */
  watchLimiter(answering: () => boolean, waiting: () => number): void {
    new Gauge({
      name: 'tollgate_limiter_up',
      help: 'Whether the limiter (Redis) answers: 1, or 0 from a lost connection or a timed-out command until its next answer.',
      registers: [this.registry],
      collect() {
        this.set(answering() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'tollgate_limiter_backlog_charges',
      help: 'Charges and give-backs waiting in memory for the limiter to answer again (dropped past 100,000).',
      registers: [this.registry],
      collect() {
        this.set(waiting());
      },
    });
  }

  observeHttp(route: string, status: number, seconds: number): void {
    this.requests.inc([route, String(status)]);
    this.duration.observe(route, seconds);
  }

  observeRecord(r: UsageRecord): void {
    this.settled.inc([r.model, r.surface, r.status]);
    // By provider too: what each provider's invoice should hold, fallbacks included (UsageRecord.provider).
    if (r.credits > 0) this.credits.inc([r.model, r.surface, r.provider ?? ''], r.credits);
    if (r.promptTokens > 0) this.tokens.inc([r.model, 'prompt'], r.promptTokens);
    if (r.outputTokens > 0) this.tokens.inc([r.model, 'output'], r.outputTokens);
  }

  /** One of the gateway's own error answers: `code` from the closed catalogue, `rule` a configured plan rule's id. */
  observeError(code: string, rule = ''): void {
    this.errors.inc([code, rule]);
  }

  observeFallback(model: string, provider: string): void {
    this.fallbacks.inc([model, provider]);
  }

  /** GET /metrics; with a `token`, only for `Authorization: Bearer <token>` (compared in constant time). */
  routes(token = ''): FastifyPluginAsync {
    return async (app) => {
      app.get('/metrics', async (req, reply) => {
        if (token !== '') {
          const given = bearerToken(req);
          if (given === null || !secretsEqual(given, token)) throw new GatewayError('metrics_unauthorized');
        }
        return reply.type(this.registry.contentType).send(await this.registry.metrics());
      });
    };
  }
}
