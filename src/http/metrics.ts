// Prometheus metrics (SPEC §11). One registry per app, not prom-client's global one, so several
// gateways in one process (tests) do not collide.
import type { FastifyPluginAsync } from 'fastify';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import type { UsageRecord } from '../storage/ports.js';

/**
 * A labelled metric's children, cached by their label values: prom-client builds and hashes the
 * label object on every inc()/observe() (≈ 2 % of a request's CPU with six calls per request). The
 * label sets are bounded (routes, statuses, configured models, surfaces).
 */
function byLabels<C>(child: (...values: string[]) => C): (...values: string[]) => C {
  const children = new Map<string, C>();
  return (...values) => {
    const key = values.join('\u0000');
    let c = children.get(key);
    if (c === undefined) children.set(key, (c = child(...values)));
    return c;
  };
}

export class Metrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({
    name: 'tollgate_http_requests_total',
    help: 'HTTP requests answered, by route and status.',
    labelNames: ['route', 'status'] as const,
    registers: [this.registry],
  });
  private readonly duration = new Histogram({
    name: 'tollgate_http_request_duration_seconds',
    help: 'Time to the end of the response (streams: the whole stream), by route.',
    labelNames: ['route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  private readonly settled = new Counter({
    name: 'tollgate_settled_requests_total',
    help: 'Requests settled into the ledger, by model, surface and status.',
    labelNames: ['model', 'surface', 'status'] as const,
    registers: [this.registry],
  });
  private readonly credits = new Counter({
    name: 'tollgate_credits_charged_total',
    help: 'Credits charged, by model and surface.',
    labelNames: ['model', 'surface'] as const,
    registers: [this.registry],
  });
  private readonly tokens = new Counter({
    name: 'tollgate_tokens_total',
    help: 'Tokens metered, by model and direction (prompt, output).',
    labelNames: ['model', 'direction'] as const,
    registers: [this.registry],
  });

  private readonly requestsBy = byLabels((route, status) => this.requests.labels(route, status));
  private readonly durationBy = byLabels((route) => this.duration.labels(route));
  private readonly settledBy = byLabels((model, surface, status) => this.settled.labels(model, surface, status));
  private readonly creditsBy = byLabels((model, surface) => this.credits.labels(model, surface));
  private readonly tokensBy = byLabels((model, direction) => this.tokens.labels(model, direction));

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'tollgate_' });
  }

  observeHttp(route: string, status: number, seconds: number): void {
    this.requestsBy(route, String(status)).inc();
    this.durationBy(route).observe(seconds);
  }

  observeRecord(r: UsageRecord): void {
    this.settledBy(r.model, r.surface, r.status).inc();
    if (r.credits > 0) this.creditsBy(r.model, r.surface).inc(r.credits);
    if (r.promptTokens > 0) this.tokensBy(r.model, 'prompt').inc(r.promptTokens);
    if (r.outputTokens > 0) this.tokensBy(r.model, 'output').inc(r.outputTokens);
  }

  routes(): FastifyPluginAsync {
    return async (app) => {
      app.get('/metrics', async (_req, reply) => reply.type(this.registry.contentType).send(await this.registry.metrics()));
    };
  }
}
