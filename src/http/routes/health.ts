import type { FastifyPluginAsync } from 'fastify';
import { GatewayError } from '../../errors/gateway-error.js';
import type { AppDeps } from '../app.js';

export function healthRoutes(deps: AppDeps): FastifyPluginAsync {
  return async (app) => {
    /** Liveness: the process answers. */
    app.get('/healthz', async () => ({ status: 'ok' }));
    /** Readiness: storage answers, so requests can be served. */
    app.get('/readyz', async () => {
      try {
        await deps.storage.ping();
      } catch (err) {
        throw new GatewayError('not_ready', { vars: { detail: 'storage does not answer' }, cause: err });
      }
      return { status: 'ready' };
    });
  };
}
