import type { FastifyPluginAsync } from 'fastify';
import { GatewayError } from '../../errors/gateway-error.js';
import { CounterStoreUnavailableError } from '../../storage/counters.js';
import type { AppDeps } from '../app.js';

export function healthRoutes(deps: AppDeps): FastifyPluginAsync {
  return async (app) => {
    /** Liveness: the process answers. */
    app.get('/healthz', async () => ({ status: 'ok' }));
    /**
     * Readiness: storage and the limiter answer, so requests can be served. Under
     * limiter.onUnavailable: open an unreachable limiter does not stop the serving (requests are
     * admitted unmetered), so it does not make the instance unready: every instance shares the one
     * Redis, and a load balancer that follows /readyz (a Kubernetes Service) took them all out at
     * once, turning the outage the operator chose to serve through into a total one.
     */
    app.get('/readyz', async () => {
      // A stop's drain: still serving, but the load balancer should send nothing new here.
      if (deps.draining?.()) throw new GatewayError('not_ready', { vars: { detail: 'shutting down' } });
      try {
        await deps.storage.ping();
      } catch (err) {
        throw new GatewayError('not_ready', { vars: { detail: 'storage does not answer' }, cause: err });
      }
      try {
        await deps.counters.ping();
      } catch (err) {
        if (err instanceof CounterStoreUnavailableError && deps.config.limiter.onUnavailable === 'open') return { status: 'ready' };
        throw new GatewayError('not_ready', { vars: { detail: 'the limiter does not answer' }, cause: err });
      }
      return { status: 'ready' };
    });
  };
}
