// The public OpenAI-compatible API (SPEC §6).
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { planServes } from '../../core/availability.js';
import type { Completed, RequestContext } from '../../core/gateway.js';
import { served } from '../../core/routes.js';
import type { Principal } from '../../core/metering.js';
import type { ModelConfig } from '../../config/schema.js';
import { GatewayError } from '../../errors/gateway-error.js';
import { CounterStoreUnavailableError } from '../../storage/counters.js';
import { utcDay } from '../../lib/clock.js';
import { loggedModel, routeNotFound, sendError, type AppDeps } from '../app.js';
import { bearerToken, requireKey } from '../auth.js';
import { Cors } from '../cors.js';
import { sendCompleted } from '../completed.js';
import { sendEventStream } from '../sse.js';
import { modelEntry, ruleView, summariseDaily } from '../views.js';

const CREDITS_HEADER = 'x-tollgate-credits-used';

/** How long an answer that reserved nothing waits for the counters behind its limit headers, ms. */
const LIMITS_READ_MS = 100;

/** The model a body names, for the access log (loggedModel). */
function modelOf(body: unknown): string | undefined {
  const m = (body as { model?: unknown } | null)?.model;
  return typeof m === 'string' ? loggedModel(m) : undefined;
}

export function v1Routes(deps: AppDeps): FastifyPluginAsync {
  const { gateway, keys } = deps;

  /**
   * The POST routes check the key before the body is read (onRequest): a caller without a valid key
   * gets its 401 without the server parsing what it sent (an unknown key with a 9 MB body held the
   * event loop 56–76 ms), and a valid key's bad body is answered with its limit headers.
   */
  const keyFirst = { onRequest: async (req: FastifyRequest) => void (await requireKey(keys, req)) };

  function context(req: FastifyRequest, path: string): RequestContext {
    req.facts.model = modelOf(req.body);
    return { requestId: req.id, principal: req.facts.principal!, client: req.facts.client, path };
  }

  function reply200(req: FastifyRequest, reply: FastifyReply, r: Completed) {
    req.facts.credits = r.credits;
    return sendCompleted(reply.headers(r.headers).header(CREDITS_HEADER, String(r.credits)), r);
  }

  /**
   * SPEC §6: every /v1 answer to a known key carries the binding budget's limit headers. Answers
   * after admission have them from it; the others (bad input, an unknown model, a refusal by shape,
   * /v1/usage, /v1/models) read them from the counters as they stand. Best effort: a limiter that
   * does not answer leaves them out rather than turn the answer into another error.
   */
  async function addCurrentLimits(req: FastifyRequest, reply: FastifyReply, principal: Principal, model: string | undefined): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const read = deps.meter.currentHeaders(principal, model === undefined ? undefined : deps.catalog.get(model));
      // A limiter that hangs (not down: slow) must not hold a plain 400 for its command timeout.
      const late = new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), LIMITS_READ_MS);
      });
      const headers = await Promise.race([read, late]);
      if (headers) reply.headers(headers);
      else read.catch(() => {}); // answered without them; a later failure is nobody's to handle
    } catch {
      // The answer goes out without them.
    } finally {
      clearTimeout(timer);
    }
  }
  // The credit budget's headers, which every answer to a key carries (SPEC §6). A refusal by a
  // requests rule has only its own x-ratelimit-*-requests (the store reports just the counter that
  // did not fit): the budget is read for it, and the refusal's own headers then go over what is read.
  const hasLimits = (err: unknown) => {
    const headers = (err as { headers?: Record<string, string> } | null)?.headers;
    return headers !== undefined && headers['x-ratelimit-reset-tokens'] !== undefined;
  };
  // The limiter has just not answered: asking it again for headers would hold the 503 for another
  // command timeout (a hung Redis: 2 s more).
  const limiterDown = (err: unknown) => err instanceof CounterStoreUnavailableError || (err instanceof GatewayError && err.code === 'limiter_unavailable');

  return async (app) => {
    if (deps.config.server.corsOrigins.length > 0) {
      const cors = new Cors(deps.config.server.corsOrigins);
      app.addHook('onRequest', (req, reply, done) => {
        cors.onRequest(req, reply);
        done();
      });
      // Answered from onRequest, before the body is read (a preflight has none): as the handler
      // only, a stranger's OPTIONS had its JSON body parsed first, up to server.bodyLimitBytes —
      // 9 MB held the event loop ~100 ms, where the same body to POST without a key costs nothing.
      const preflight = async (req: FastifyRequest, reply: FastifyReply) => cors.preflight(req, reply);
      app.options('/*', { onRequest: preflight }, preflight);
    }
    // Here, not only the app's: a 404 under /v1 (an endpoint or method not served) runs this
    // plugin's hooks, so a page reads it as it reads every other /v1 error.
    app.setNotFoundHandler(routeNotFound(deps));
    app.setErrorHandler(async (err, req, reply) => {
      const principal = req.facts?.principal;
      if (principal && !hasLimits(err) && !limiterDown(err)) await addCurrentLimits(req, reply, principal, req.facts.model ?? modelOf(req.body));
      return sendError(deps, req, reply, err);
    });

    app.post('/chat/completions', keyFirst, async (req, reply) => {
      const ctx = context(req, '/v1/chat/completions');
      if ((req.body as { stream?: unknown } | null)?.stream !== true) {
        return reply200(req, reply, await gateway.chat(ctx, req.body));
      }
      // Errors up to here (bad input, refusals, upstream errors before the first byte) are
      // ordinary JSON answers; from here on the answer is an event stream.
      await sendEventStream(deps, reply, await gateway.chatStream(ctx, req.body));
    });

    app.post('/embeddings', keyFirst, async (req, reply) => reply200(req, reply, await gateway.embed(context(req, '/v1/embeddings'), req.body)));

    app.post('/images/generations', keyFirst, async (req, reply) =>
      reply200(req, reply, await gateway.image(context(req, '/v1/images/generations'), req.body)),
    );

    /** A model's /v1/models entry; with a key, whether this key (its models) and its plan may use it. */
    const entry = (m: ModelConfig, principal: Principal | null) => ({
      ...modelEntry(m, deps.pricing),
      ...(principal && {
        available:
          served(m, deps.providers) &&
          (principal.key?.models?.includes(m.id) ?? true) &&
          planServes(deps.meter.planOf(principal.account), 'api', m, deps.pricing),
      }),
    });
    // No key needed; a key that is sent must be valid, so a typo is not silently ignored.
    const optionalKey = async (req: FastifyRequest) => (bearerToken(req) === null ? null : await requireKey(keys, req));

    app.get('/models', async (req, reply) => {
      const principal = await optionalKey(req);
      if (principal) await addCurrentLimits(req, reply, principal, undefined);
      return { object: 'list', data: deps.catalog.models.map((m) => entry(m, principal)) };
    });

    // OpenAI's GET /v1/models/{model} (the SDKs' models.retrieve). A wildcard: ids such as flux/schnell hold slashes.
    app.get('/models/*', async (req, reply) => {
      const id = (req.params as { '*': string })['*'];
      // The key first: a 404 to a valid key carries its limit headers too (the error handler adds them).
      const principal = await optionalKey(req);
      const model = deps.catalog.get(id);
      if (!model) throw new GatewayError('model_not_found', { vars: { model: id }, param: 'model' });
      if (principal) await addCurrentLimits(req, reply, principal, id);
      return entry(model, principal);
    });

    app.get('/usage', async (req, reply) => {
      const principal = await requireKey(keys, req);
      await addCurrentLimits(req, reply, principal, undefined);
      const { account } = principal;
      const now = deps.clock.now();
      const day = utcDay(now);
      const [status, balance, rows] = await Promise.all([
        deps.meter.status(principal, deps.catalog.models),
        deps.balances.get(account.id),
        deps.storage.ledger.daily({ accountId: account.id, from: day, to: utcDay(now + 86_400_000) }),
      ]);
      const today = summariseDaily(rows);
      return {
        object: 'usage',
        account: account.id,
        plan: status.plan.name,
        prepaid: status.plan.prepaid,
        balance,
        day,
        rules: status.rules.map(ruleView),
        today: { credits: today.credits, requests: today.requests, by_model: today.byModel },
      };
    });
  };
}
