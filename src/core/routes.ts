// A model's routes: its provider, then its fallbacks (config `models[].fallbacks`), each a provider
// that serves the same model under its own upstream name — the same model on OpenAI and on Azure,
// or on two accounts of one provider whose rate limits add up. A request is admitted once, priced
// by the model, and tried on each route in turn while the one before failed without doing any work.
import type { ModelConfig } from '../config/schema.js';
import { GatewayError, UpstreamHttpError } from '../errors/gateway-error.js';
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

/** Upstream errors that say nothing was done with the request, so another provider may do it. */
const UNDONE = new Set(['upstream_unavailable', 'upstream_auth_failed', 'upstream_quota_exhausted', 'provider_not_configured']);

/**
 * Whether a route's failure lets the next route take the request: the provider could not be
 * reached, refused the gateway's key or quota, or answered 429 or 5xx. Not a timeout — the
 * provider may still be working on the request and bill it, and the time is spent — nor an
 * invalid answer to a call it took (502 invalid_upstream_response), nor a 4xx about the request
 * itself, which the next provider would refuse the same way.
 */
export function fallsBack(err: unknown): boolean {
  if (err instanceof GatewayError) return UNDONE.has(err.code);
  if (err instanceof UpstreamHttpError) {
    return (err.status === 429 || err.status >= 500) && err.body.error.code !== 'invalid_upstream_response';
  }
  return false;
}
