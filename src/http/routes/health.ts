import type { FastifyPluginAsync } from 'fastify';
import { GatewayError } from '../../errors/gateway-error.js';
import type { AppDeps } from '../app.js';

export function healthRoutes(deps: AppDeps): FastifyPluginAsync {
  return async (app) => {
    /** Liveness: the process answers. */
    app.get('/healthz', async () => ({ status: 'ok' }));
    /** Readiness: storage and the limiter answer, so requests can be served. */
    app.get('/readyz', async () => {
      try {
        await deps.storage.ping();
      } catch (err) {
        throw new GatewayError('not_ready', { vars: { detail: 'storage does not answer' }, cause: err });
      }
      try {
        await deps.counters.ping();
      } catch (err) {
        throw new GatewayError('not_ready', { vars: { detail: 'the limiter does not answer' }, cause: err });
      }
      return { status: 'ready' };
    });
  };
}
