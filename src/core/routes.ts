// A model's routes: its provider, then its fallbacks (config `models[].fallbacks`), each a provider
// that serves the same model under its own upstream name — the same model on OpenAI and on Azure,
// or on two accounts of one provider whose rate limits add up. A request is admitted once, priced
// by the model, and tried on each route in turn while the one before failed without doing any work.
import type { ModelConfig } from '../config/schema.js';
import { GatewayError, UpstreamHttpError } from '../errors/gateway-error.js';
import type { Clock } from '../lib/clock.js';
import type { Provider } from '../providers/provider.js';

export interface Route<M extends ModelConfig = ModelConfig> {
  /** The model as this route's provider serves it: `provider` and `upstream` are the route's. */
  readonly model: M;
  readonly provider: Provider;
}

/**
 * The model's routes whose provider has credentials, primary first. None: 503
 * provider_not_configured naming the primary, as a model without fallbacks always answered.
 */
export function routesOf<M extends ModelConfig>(model: M, providers: ReadonlyMap<string, Provider>): readonly Route<M>[] {
  const routes: Route<M>[] = [];
  const primary = providers.get(model.provider);
  if (primary?.configured) routes.push({ model, provider: primary });
  for (const f of model.fallbacks ?? []) {
    const provider = providers.get(f.provider);
    if (!provider?.configured) continue;
    routes.push({ model: Object.freeze({ ...model, provider: f.provider, upstream: f.upstream ?? model.upstream ?? model.id }) as M, provider });
  }
  if (routes.length === 0) throw new GatewayError('provider_not_configured', { vars: { model: model.id, provider: model.provider } });
  return routes;
}

/**
 * Whether any route of the model has a provider with credentials: what routesOf serves, so what
 * `/v1/models` and the Playground may call available (a model whose own provider has no key is
 * served by a fallback that has one).
 */
export function served(model: ModelConfig, providers: ReadonlyMap<string, Provider>): boolean {
  if (providers.get(model.provider)?.configured) return true;
  return model.fallbacks?.some((f) => providers.get(f.provider)?.configured === true) ?? false;
}

/** A proxy's answer that it timed out waiting for the provider it passed the request to. */
const GATEWAY_TIMEOUTS = new Set([504, 524]);

/** Answers that say the provider refused the request before doing anything with it. */
const REFUSED = new Set(['upstream_auth_failed', 'upstream_quota_exhausted', 'provider_not_configured']);

/**
 * Whether a route's failure lets the next route take the request: the request never reached the
 * provider (no connection: `stage` / `phase` 'connect', upstream/client.ts), or the provider
 * refused the gateway's key or quota, or answered 429 or 5xx. Not a connection reset or a timeout
 * after the request was sent — the provider may have done or still be doing the work, and bill
 * it — nor an invalid answer to a call it took (502 invalid_upstream_response), nor a 4xx about
 * the request itself, which the next provider would refuse the same way. Nor a 504 or Cloudflare's
 * 524: a proxy in front of the provider gave up waiting for an answer to a request it had passed
 * on (Cloudflare's 524: the origin sent nothing for 100 s), a timeout after sending like the gateway's own.
 * Nor an error the provider answered with HTTP 200 (`taken`), whatever status it names: the
 * provider took the call.
 */
export function fallsBack(err: unknown): boolean {
  if (err instanceof GatewayError) {
    if (err.code === 'upstream_unavailable') return err.vars.stage === 'connect';
    if (err.code === 'upstream_timeout') return err.vars.phase === 'connect';
    return REFUSED.has(err.code);
  }
  if (err instanceof UpstreamHttpError) {
    if (err.taken) return false;
    return (err.status === 429 || (err.status >= 500 && !GATEWAY_TIMEOUTS.has(err.status))) && err.body.error.code !== 'invalid_upstream_response';
  }
  return false;
}

/** A provider's rate limit (HTTP 429, not a spent quota: that is upstream_quota_exhausted), with its Retry-After. */
export function isRateLimit(err: unknown): err is UpstreamHttpError {
  return err instanceof UpstreamHttpError && err.status === 429;
}

const routeKey = (r: Route) => `${r.provider.id}\u0000${r.model.upstream ?? r.model.id}`;

/**
 * Routes that failed without doing the work lately, in this process: for `ms` after such a failure
 * a route is tried after the model's others, so an outage (an address that drops packets costs the
 * whole connect timeout, 10 s by default) or a provider's rate limit is not paid first by every
 * request. Never skipped: when every route is cooling the configured order stands. Keyed by
 * provider and upstream name, since providers rate-limit per model.
 */
export class RouteCooldown {
  private readonly until = new Map<string, number>();

  constructor(
    private readonly clock: Clock,
    private readonly ms: number,
  ) {}

  failed(route: Route): void {
    if (this.ms > 0) this.until.set(routeKey(route), this.clock.now() + this.ms);
  }

  /** `routes` with the cooling ones moved last, in their order; the same array when none is cooling. */
  order<M extends ModelConfig>(routes: readonly Route<M>[]): readonly Route<M>[] {
    if (this.until.size === 0) return routes;
    const now = this.clock.now();
    const ready: Route<M>[] = [];
    const cooling: Route<M>[] = [];
    for (const r of routes) {
      const key = routeKey(r);
      const until = this.until.get(key);
      if (until !== undefined && until <= now) this.until.delete(key);
      (until !== undefined && until > now ? cooling : ready).push(r);
    }
    return cooling.length === 0 ? routes : [...ready, ...cooling];
  }
}
