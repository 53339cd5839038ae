// Prometheus metrics (SPEC §11). One registry per app, not prom-client's global one, so several
// gateways in one process (tests) do not collide.
import type { FastifyPluginAsync } from 'fastify';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import type { UsageRecord } from '../storage/ports.js';

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

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'tollgate_' });
  }

  observeHttp(route: string, status: number, seconds: number): void {
    this.requests.inc({ route, status: String(status) });
    this.duration.observe({ route }, seconds);
  }

  observeRecord(r: UsageRecord): void {
    this.settled.inc({ model: r.model, surface: r.surface, status: r.status });
    if (r.credits > 0) this.credits.inc({ model: r.model, surface: r.surface }, r.credits);
    if (r.promptTokens > 0) this.tokens.inc({ model: r.model, direction: 'prompt' }, r.promptTokens);
    if (r.outputTokens > 0) this.tokens.inc({ model: r.model, direction: 'output' }, r.outputTokens);
  }

  routes(): FastifyPluginAsync {
    return async (app) => {
      app.get('/metrics', async (_req, reply) => reply.type(this.registry.contentType).send(await this.registry.metrics()));
    };
  }
}
