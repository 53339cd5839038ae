// POST /app/api/billing/webhook: the billing provider's signed callback (Stripe's). Outside the
// web app's session and CSRF checks — the provider's signature over the raw body is the check —
// so registered as its own plugin, whose JSON bodies stay raw bytes for that signature.
import type { FastifyPluginAsync } from 'fastify';
import { GatewayError } from '../../errors/gateway-error.js';
import type { AppDeps } from '../app.js';

/**
 * The webhook's body limit, bytes. It is open to anyone, and every body is HMAC'd whole before
 * anything else: at server.bodyLimitBytes a stranger had 10 MiB hashed per request. Stripe's
 * events are a few kilobytes (one object and its changes); 1 MiB leaves room for the largest.
 */
const WEBHOOK_BODY_LIMIT = 1024 * 1024;

export function billingWebhookRoutes(deps: Pick<AppDeps, 'billing'>): FastifyPluginAsync {
  return async (app) => {
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

    app.post('/webhook', { bodyLimit: WEBHOOK_BODY_LIMIT }, async (req, reply) => {
      const { billing } = deps;
      if (!billing.handleWebhook) throw new GatewayError('route_not_found', { vars: { method: 'POST', path: '/app/api/billing/webhook' } });
      await billing.handleWebhook(req.body as Buffer, req.headers);
      return reply.code(200).send({ received: true });
    });
  };
}
