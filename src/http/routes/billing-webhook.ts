// POST /app/api/billing/webhook: the billing provider's signed callback (Stripe's). Outside the
// web app's session and CSRF checks — the provider's signature over the raw body is the check —
// so registered as its own plugin, whose JSON bodies stay raw bytes for that signature.
import type { FastifyPluginAsync } from 'fastify';
import { GatewayError } from '../../errors/gateway-error.js';
import type { AppDeps } from '../app.js';

export function billingWebhookRoutes(deps: Pick<AppDeps, 'billing'>): FastifyPluginAsync {
  return async (app) => {
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

    app.post('/webhook', async (req, reply) => {
      const { billing } = deps;
      if (!billing.handleWebhook) throw new GatewayError('route_not_found', { vars: { method: 'POST', path: '/app/api/billing/webhook' } });
      await billing.handleWebhook(req.body as Buffer, req.headers);
      return reply.code(200).send({ received: true });
    });
  };
}
