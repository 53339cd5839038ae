// The web app's JSON API under /app/api (docs/web-api.md is the contract). Authenticated by the
// session cookie, never by an API key; every state-changing call carries the CSRF token. Playground
// calls enter the same gateway path as /v1 with surface `playground`.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AccountInfo } from '../../core/accounts.js';
import { planServes } from '../../core/availability.js';
import type { Completed, RequestContext } from '../../core/gateway.js';
import { served } from '../../core/routes.js';
import { KEY_LIMIT_CHANGES, KeyQuota } from '../../core/key-quota.js';
import type { Principal } from '../../core/metering.js';
import type { ApiKey, TopUp, UsagePage, UsageRecord } from '../../storage/ports.js';
import { checkPasswordFor, keyExpiry, keyLimit, keyModels, keyPatch, newPassword, parseBody, storedName, usageCursor } from '../../core/requests.js';
import { checkKeySettings } from '../../core/key-settings.js';
import { equal } from '../../core/sessions.js';
import { unchangedBy } from '../../core/keys.js';
import { GatewayError } from '../../errors/gateway-error.js';
import { utcDay } from '../../lib/clock.js';
import { emailAddress } from '../../lib/email.js';
import { allDaily } from '../../storage/all-daily.js';
import { loggedModel, type AppDeps } from '../app.js';
import { sendCompleted } from '../completed.js';
import { ledgerCsv } from '../csv-export.js';
import { sendEventStream } from '../sse.js';
import { accountUsageCsv, accountUsageCsvHeader, accountUsageRecordView, keyView, modelEntry } from '../views.js';
import { CSRF_HEADER, type WebSessions } from '../web-session.js';
import { webAppHeaders } from './app-pages.js';

const DAY_MS = 86_400_000;
const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/**
 * The body limit of sign-up and sign-in, bytes. They are open to anyone (the anonymous CSRF token
 * is anyone's to mint: GET /session), so at server.bodyLimitBytes a stranger had 10 MiB of JSON
 * parsed per request (a 9 MB body: ~50 ms against ~17 ms to /v1 without a key). The largest
 * credentials the schema takes, every character escaped as \uXXXX, are under 8 KiB.
 */
const CREDENTIALS_BODY_LIMIT = 16 * 1024;

const credentials = z.strictObject({ email: z.string().min(1).max(254), password: z.string().min(1).max(1024) });
const signup = z.strictObject({ email: emailAddress, password: newPassword });
const passwordChange = z.strictObject({ current: z.string().min(1).max(1024), password: newPassword });
const passwordReset = z.strictObject({ token: z.string().min(1).max(512), password: newPassword });
const chatBody = z.strictObject({
  model: z.string(),
  messages: z.array(z.unknown()),
  max_tokens: z.unknown().optional(),
  temperature: z.unknown().optional(),
  top_p: z.unknown().optional(),
});
const imageBody = z.strictObject({ model: z.string(), prompt: z.unknown(), size: z.unknown().optional(), n: z.unknown().optional(), image_url: z.unknown().optional() });
const embedBody = z.strictObject({ model: z.string(), input: z.unknown() });
const createKey = z.strictObject({ name: z.string().trim().pipe(storedName), limit: keyLimit.optional(), expiresAt: keyExpiry.optional(), models: keyModels.optional() });
const usageQuery = z.strictObject({ days: z.coerce.number().int().min(1).max(366).default(30) });
const recordsQuery = z.strictObject({ before: usageCursor.optional(), limit: z.coerce.number().int().min(1).max(1000).default(100) });
/** How many of its latest top-ups the Billing page lists at first, and per Show more. */
const BILLING_TOP_UPS = 20;
/** Requests on the Usage page at first (Show more: /usage/records, 100 unless `limit`). */
const USAGE_PAGE = 100;
const topUpsQuery = z.strictObject({ before: z.string().min(1).max(100).optional(), limit: z.coerce.number().int().min(1).max(100).default(BILLING_TOP_UPS) });

/**
 * Top-ups as their account sees them, with the cursor of the page after (the last one's id, or
 * null). The operator's references (idempotency keys, checkout ids) are theirs: not shown.
 */
function topUpsView(page: { data: readonly TopUp[]; hasMore: boolean }) {
  return {
    topUps: page.data.map((t) => ({ id: t.id, credits: t.credits, source: t.source, createdAt: t.createdAt })),
    topUpsNext: page.hasMore ? page.data.at(-1)!.id : null,
  };
}
const meterQuery = z.strictObject({ model: z.string().min(1).optional() });
const topUp = z.strictObject({ amount: z.number().int().positive().max(1e12) });

declare module 'fastify' {
  interface FastifyContextConfig {
    /** /app/api routes reachable without a session (session, signup, signin). */
    public?: boolean;
  }
  interface FastifyRequest {
    /** The signed-in account and its session token, set by the /app/api session hook. */
    web?: { account: AccountInfo; token: string } | null;
  }
}

function sessionAccountView(a: AccountInfo) {
  return { id: a.id, email: a.email, plan: a.plan, balance: a.balance, paymentMethod: a.hasPaymentMethod };
}

/** A key as its account sees it: never its hash; with what it spent of its own limit, when it has one and that was read. */
function clientKeyView(k: ApiKey, limitUsed?: number) {
  const { accountId: _, ...view } = keyView(k);
  return { ...view, ...(limitUsed !== undefined && { limitUsed }) };
}

/** The account a web app page was loaded for (request), and the session's account (response). */
const ACCOUNT_HEADER = 'x-tollgate-account';

export function appApiRoutes(deps: AppDeps, web: WebSessions): FastifyPluginAsync {
  const { accounts, gateway, keys, storage, clock, meter, catalog, signin, billing } = deps;
  const keyQuota = new KeyQuota(deps.counters, clock, deps.config.web.keysPerDay);
  const limitChanges = new KeyQuota(deps.counters, clock, deps.config.web.keyLimitChangesPerDay, KEY_LIMIT_CHANGES);
  /** What the web app must not offer (docs/web-api.md): a form that can only be refused. */
  const offered = { signup: signin.signupOpen, keyCreation: keyQuota.open };

  /** The signed-in account (loaded fresh: plan and balance change), or null. */
  async function currentAccount(req: FastifyRequest): Promise<{ account: AccountInfo; token: string } | null> {
    const found = await web.read(req);
    if (!found) return null;
    const account = await accounts.get(found.session.accountId).catch((err: unknown) => {
      if (err instanceof GatewayError && err.code === 'account_not_found') return null;
      throw err;
    });
    // A suspended account is signed out: its session stands, unusable, until the suspension is lifted.
    return account && account.suspendedAt === null ? { account, token: found.token } : null;
  }

  function signedIn(req: FastifyRequest): { account: AccountInfo; token: string } {
    if (!req.web) throw new GatewayError('session_required');
    return req.web;
  }

  function principal(req: FastifyRequest): Principal {
    const p: Principal = { account: signedIn(req).account, key: null, surface: 'playground' };
    req.facts.principal = p;
    return p;
  }

  function context(req: FastifyRequest, path: string, model: string): RequestContext {
    // Clipped as /v1's: a Playground body is up to server.bodyLimitBytes too, and a 10 MB `model`
    // (an unknown one: a 404 that counts against nothing) was written whole into the access line.
    req.facts.model = loggedModel(model);
    return { requestId: req.id, principal: principal(req), client: req.facts.client, path };
  }

  function completed(req: FastifyRequest, reply: FastifyReply, r: Completed) {
    req.facts.credits = r.credits;
    return sendCompleted(reply.headers(r.headers), r);
  }

  return async (app) => {
    app.decorateRequest('web', null);
    // Session first (401), then CSRF (403): a stranger learns nothing about the CSRF scheme.
    app.addHook('onRequest', async (req) => {
      req.web = await currentAccount(req);
      if (!req.web && req.routeOptions.config.public !== true) throw new GatewayError('session_required');
      if (req.web) req.facts.principal = { account: req.web.account, key: null, surface: 'playground' };
      if (!UNSAFE.has(req.method)) return;
      const header = req.headers[CSRF_HEADER];
      const given = typeof header === 'string' ? header : '';
      // Signed in: the token must be the one bound to this session. Before sign-in: double submit,
      // the header must repeat the cookie (a cross-site page can send neither).
      const expected = req.web ? deps.sessions.csrfFor(req.web.token) : (web.cookies(req)[web.csrfCookie] ?? '');
      if (given === '' || expected === '' || !equal(given, expected)) throw new GatewayError('csrf_failed');
      // The page names the account it was loaded for: a sign-in as another account in another tab
      // would otherwise have this page act (create a key, run a chat, top up) for an account it
      // does not show. Refused before anything is done.
      const loadedFor = req.headers[ACCOUNT_HEADER];
      if (req.web && typeof loadedFor === 'string' && loadedFor !== req.web.account.id) throw new GatewayError('session_changed');
    });
    const common = webAppHeaders(web.secure);
    app.addHook('onSend', async (req, reply) => {
      reply.header('cache-control', 'no-store').headers(common);
      // Whose answer this is, so a page loaded for another account sees that its reads changed hands.
      if (req.web) reply.header(ACCOUNT_HEADER, req.web.account.id);
    });

    app.get('/session', { config: { public: true } }, async (req, reply) => {
      if (req.web) {
        const csrfToken = deps.sessions.csrfFor(req.web.token);
        web.issueCsrf(reply, csrfToken, false);
        return { authenticated: true, csrfToken, account: sessionAccountView(req.web.account), ...offered };
      }
      const csrfToken = deps.sessions.anonymousCsrf();
      web.issueCsrf(reply, csrfToken, web.cookies(req)[web.sessionCookie] !== undefined);
      return { authenticated: false, csrfToken, ...offered };
    });

    app.post('/signup', { config: { public: true }, bodyLimit: CREDENTIALS_BODY_LIMIT }, async (req, reply) => {
      const body = parseBody(signup, req.body);
      checkPasswordFor(body.password, body.email);
      const account = await signin.signUp(body.email, body.password, req.ip, req.id);
      await web.start(reply, account.id);
      return reply.code(201).send({ account: sessionAccountView(account) });
    });

    app.post('/signin', { config: { public: true }, bodyLimit: CREDENTIALS_BODY_LIMIT }, async (req, reply) => {
      const body = parseBody(credentials, req.body);
      const account = await signin.signIn(body.email, body.password, req.ip, req.id);
      await web.start(reply, account.id);
      return { account: sessionAccountView(account) };
    });

    app.post('/password', { bodyLimit: CREDENTIALS_BODY_LIMIT }, async (req, reply) => {
      const body = parseBody(passwordChange, req.body);
      const { account } = signedIn(req);
      checkPasswordFor(body.password, account.email);
      await signin.changePassword(account, body.current, body.password, req.ip, req.id);
      // The other sessions end; this one goes on under a new cookie (and CSRF token).
      return { csrfToken: await web.restart(reply, account.id) };
    });

    // A reset link's password (core/password-reset.ts): every session of the account ends, and this
    // browser is signed in as the account (whoever signed in here before is signed out).
    app.post('/password/reset', { config: { public: true }, bodyLimit: CREDENTIALS_BODY_LIMIT }, async (req, reply) => {
      const body = parseBody(passwordReset, req.body);
      const account = await deps.resets.redeem(body.token, body.password, (id) => web.endEverywhere(id));
      // Ended again: a session begun between that end and the new password (the old one, still good) goes too.
      await web.restart(reply, account.id);
      return { account: sessionAccountView(account) };
    });

    app.post('/signout', async (req, reply) => {
      await web.end(reply, req.web?.account.id);
      return reply.code(204).send();
    });

    app.get('/models', async (req) => {
      const { account } = signedIn(req);
      return {
        data: catalog.models.map((m) => {
          // Why a model is out of reach, so the Playground can say which: no provider on this
          // gateway serves it, or the account's plan does not reach it here.
          const unavailable = !served(m, deps.providers) ? 'provider' : !planServes(meter.planOf(account), 'playground', m, deps.pricing) ? 'plan' : null;
          return { ...modelEntry(m, deps.pricing), available: unavailable === null, ...(unavailable && { unavailable }) };
        }),
      };
    });

    app.get('/meter', async (req) => {
      const q = parseBody(meterQuery, req.query);
      const model = q.model === undefined ? undefined : catalog.get(q.model);
      if (q.model !== undefined && !model) throw new GatewayError('model_not_found', { vars: { model: q.model }, param: 'model' });
      const p = principal(req);
      const now = clock.now();
      const [status, balance] = await Promise.all([meter.status(p, catalog.models), deps.balances.get(p.account.id)]);
      const forPlayground = status.rules.filter((r) => r.surfaces.includes('playground'));
      // The binding day budget: of the credit rules that apply, the one with least left.
      const credits = forPlayground
        .filter((r) => r.measure === 'credits' && r.scope !== 'account+model')
        .sort((a, b) => a.remaining - b.remaining)[0];
      let requests: { limit: number; used: number; remaining: number; reset: string | null } | null = null;
      if (model) {
        for (const r of forPlayground) {
          if (r.measure !== 'requests' || !r.byModel) continue;
          const m = r.byModel.find((x) => x.model === model.id);
          if (m && (requests === null || m.remaining < requests.remaining)) {
            requests = { limit: r.limit, used: m.used, remaining: m.remaining, reset: r.reset };
          }
        }
      }
      // The plan's Playground rules, for the page's summary of them: an operator sets its own numbers
      // (docs/plans.md), and another plan has other rules or none.
      // Which models a rule counts, as its filter says: a rule for Pro or image models only read as
      // one for every model, a limit the account's other models do not have.
      const limits = forPlayground.map((r) => {
        const models = status.plan.rules.find((x) => x.id === r.id)?.models;
        return {
          measure: r.measure,
          limit: r.limit,
          window: r.window,
          perModel: r.scope === 'account+model',
          pro: models?.pro !== false,
          regular: models?.pro !== true,
          kinds: models?.kinds ?? null,
          ids: models?.ids ?? null,
          api: r.surfaces.includes('api'),
        };
      });
      return {
        day: utcDay(now),
        plan: status.plan.name,
        balance,
        credits: credits ? { limit: credits.limit, used: credits.used, remaining: credits.remaining, reset: credits.reset } : null,
        requests,
        limits,
        // Whether Billing's payment method lifts these: only the default plan moves to paid with one.
        paymentMethodLifts: accounts.upgradesWithPaymentMethod(p.account),
      };
    });

    app.post('/playground/chat', async (req, reply) => {
      const body = parseBody(chatBody, req.body);
      const ctx = context(req, '/app/api/playground/chat', body.model);
      // Always streamed, always with the usage chunk: the Playground shows the credits charged.
      const started = await gateway.chatStream(ctx, { ...body, stream: true, stream_options: { include_usage: true } });
      await sendEventStream(deps, reply, started);
    });

    app.post('/playground/image', async (req, reply) => {
      const body = parseBody(imageBody, req.body);
      return completed(req, reply, await gateway.image(context(req, '/app/api/playground/image', body.model), body));
    });

    app.post('/playground/embed', async (req, reply) => {
      const body = parseBody(embedBody, req.body);
      return completed(req, reply, await gateway.embed(context(req, '/app/api/playground/embed', body.model), body));
    });

    app.get('/keys', async (req) => {
      const { account } = signedIn(req);
      const list = await storage.keys.listByAccount(account.id);
      const used = await meter.keyLimitsUsed(account, list);
      return { data: list.map((k) => clientKeyView(k, used.get(k.id))) };
    });

    app.post('/keys', async (req, reply) => {
      const { name, ...given } = parseBody(createKey, req.body ?? {});
      const settings = checkKeySettings(given, clock.now(), catalog);
      const accountId = signedIn(req).account.id;
      const { key, secret } = await keyQuota.create(accountId, req.id, () => keys.create(accountId, name, settings));
      return reply.code(201).send({ ...clientKeyView(key), key: secret });
    });

    // A key's own credit limit, expiry and models: the account caps what one of its keys may spend
    // (an app, a teammate, a script that could loop), for how long and on what, within the plan's
    // rules, which still bind every key.
    app.patch<{ Params: { id: string } }>('/keys/:id', async (req) => {
      const body = checkKeySettings(parseBody(keyPatch, req.body ?? {}), clock.now(), catalog);
      const { account } = signedIn(req);
      const key = await storage.keys.get(req.params.id);
      // Another account's key is answered exactly like a missing one.
      if (!key || key.accountId !== account.id) throw new GatewayError('key_not_found', { vars: { id: req.params.id } });
      // A change empties every instance's key cache: counted (web.keyLimitChangesPerDay). One that
      // changes nothing writes nothing, and costs nothing.
      const updated = unchangedBy(key, body) ? key : await limitChanges.create(account.id, req.id, () => keys.update(key.id, body));
      return clientKeyView(updated, (await meter.keyLimitsUsed(account, [updated])).get(updated.id));
    });

    app.delete<{ Params: { id: string } }>('/keys/:id', async (req) => {
      const { account } = signedIn(req);
      const key = await storage.keys.get(req.params.id);
      // Another account's key is answered exactly like a missing one.
      if (!key || key.accountId !== account.id) throw new GatewayError('key_not_found', { vars: { id: req.params.id } });
      return clientKeyView(await keys.revoke(key.id));
    });

    /**
     * Which key made each API request, by the name its owner gave it: an account with a key per
     * app or teammate could not tell which one spent. Null for the Playground's and a deleted key's.
     */
    const keyNamesOf = async (accountId: string) => {
      const names = new Map((await storage.keys.listByAccount(accountId)).map((k) => [k.id, k.name]));
      return (r: UsageRecord) => (r.keyId === null ? null : (names.get(r.keyId) ?? null));
    };
    const recordsView = (page: UsagePage, keyName: (r: UsageRecord) => string | null) => ({
      records: page.records.map((r) => ({ ...accountUsageRecordView(r), keyName: keyName(r) })),
      next: page.next,
    });

    app.get('/usage', async (req) => {
      const q = parseBody(usageQuery, req.query);
      const { account } = signedIn(req);
      const now = clock.now();
      const [rows, page, keyName] = await Promise.all([
        // Up to 366 days of every model on both surfaces: more than one page of the ledger's answer.
        allDaily(storage.ledger, { accountId: account.id, from: utcDay(now - (q.days - 1) * DAY_MS), to: utcDay(now + DAY_MS) }),
        storage.ledger.page({ accountId: account.id, limit: USAGE_PAGE }),
        keyNamesOf(account.id),
      ]);
      return {
        // The UTC day the range ends on: the page's "today" and the last bar of its chart. The
        // browser's own date is another day for a page read across midnight or on a clock that is off.
        day: utcDay(now),
        days: rows.map((r) => ({
          day: r.day,
          model: r.model,
          surface: r.surface,
          requests: r.requests,
          credits: r.credits,
          promptTokens: r.promptTokens,
          outputTokens: r.outputTokens,
        })),
        ...recordsView(page, keyName),
      };
    });

    // The requests before a page's last: the Usage page's "Show more".
    app.get('/usage/records', async (req) => {
      const q = parseBody(recordsQuery, req.query);
      const { account } = signedIn(req);
      const [page, keyName] = await Promise.all([
        storage.ledger.page({ accountId: account.id, limit: q.limit, ...(q.before !== undefined && { before: q.before }) }),
        keyNamesOf(account.id),
      ]);
      return recordsView(page, keyName);
    });

    // Every request of the last `days` as CSV, however many: read and sent a page at a time.
    app.get('/usage/export', async (req, reply) => {
      const q = parseBody(usageQuery, req.query);
      const { account } = signedIn(req);
      const now = clock.now();
      const range = { accountId: account.id, from: utcDay(now - (q.days - 1) * DAY_MS), to: utcDay(now + DAY_MS) };
      const keyName = await keyNamesOf(account.id);
      const body = await ledgerCsv(storage.ledger, range, accountUsageCsvHeader, (r) => accountUsageCsv(r, keyName(r)));
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="tollgate-usage-${range.from}-to-${utcDay(now)}.csv"`)
        .send(body);
    });

    // The top-ups before one the Billing page shows: its "Show more".
    app.get('/billing/top-ups', async (req) => {
      const q = parseBody(topUpsQuery, req.query);
      const { account } = signedIn(req);
      return topUpsView(await accounts.topUpHistory(account.id, q.limit, q.before));
    });

    app.get('/billing', async (req) => {
      const { account } = signedIn(req);
      // The balance's last additions, so the account can see where its credits came from. The
      // operator's references (idempotency keys, checkout ids) are theirs: not shown.
      const page = await accounts.topUpHistory(account.id, BILLING_TOP_UPS);
      return {
        plan: account.plan,
        balance: account.balance,
        paymentMethod: account.hasPaymentMethod,
        paymentMethodLifts: accounts.upgradesWithPaymentMethod(account),
        provider: billing.id,
        hostedCheckout: billing.hostedCheckout,
        selfTopUp: billing.selfTopUp,
        ...topUpsView(page),
      };
    });

    app.post('/billing/payment-method', async (req) => {
      const r = await billing.addPaymentMethod(signedIn(req).account);
      return 'account' in r ? { account: sessionAccountView(r.account) } : r;
    });

    app.post('/billing/topup', async (req) => {
      const body = parseBody(topUp, req.body);
      return billing.topUp(signedIn(req).account, body.amount);
    });
  };
}
