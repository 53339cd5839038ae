// The admin API (SPEC §9): bearer TOLLGATE_ADMIN_TOKEN, refused entirely when none is configured.
import { Readable } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { hashPassword } from '../../core/passwords.js';
import { checkKeySettings } from '../../core/key-settings.js';
import { checkPasswordFor, idempotencyKeyPattern, keyExpiry, keyLimit, keyModels, keyPatch, newPassword, parseBody, storedName, suspensionReason, usageCursor } from '../../core/requests.js';
import { closeAccount } from '../../core/account-close.js';
import { SessionEpochs } from '../../core/sessions.js';
import { GatewayError } from '../../errors/gateway-error.js';
import { utcDay } from '../../lib/clock.js';
import { emailAddress } from '../../lib/email.js';
import { allDaily } from '../../storage/all-daily.js';
import type { UsageQuery } from '../../storage/ports.js';
import { canonicalInstant, emptyRange } from '../../storage/time.js';
import { sendError, type AppDeps } from '../app.js';
import { bearerToken, secretsEqual } from '../auth.js';
import { ledgerCsv } from '../csv-export.js';
import {
  accountSummaryView,
  accountView,
  dailyUsageCsv,
  dailyUsageCsvHeader,
  keyView,
  ruleView,
  summariseDaily,
  usageRecordCsv,
  usageRecordCsvHeader,
  usageRecordView,
} from '../views.js';

// `password` gives the account a web sign-in: with sign-up closed (web.signupsPerHour 0) the
// operator's accounts had no way into the web app.
const createAccount = z.strictObject({
  email: emailAddress.nullable().optional(),
  plan: z.string().min(1).optional(),
  password: newPassword.optional(),
});
const patchAccount = z.strictObject({
  plan: z.string().min(1).optional(),
  paymentMethod: z.boolean().optional(),
  password: newPassword.optional(),
  suspended: z.boolean().optional(),
  suspendedReason: suspensionReason.optional(),
  email: emailAddress.optional(),
})
  // An empty PATCH answered 200 having changed nothing: a caller's typo in a field's name (refused)
  // and a body that lost its fields on the way look alike otherwise.
  .refine((p) => Object.values(p).some((v) => v !== undefined), { message: 'give at least one of plan, paymentMethod, password, suspended, suspendedReason, email' });
const listAccounts = z.strictObject({
  email: z.string().min(1).optional(),
  suspended: z.enum(['true']).optional(),
  plan: z.string().min(1).optional(),
  before: z.string().min(1).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
const noEmail = () => new GatewayError('invalid_request', { vars: { detail: 'a password needs the account to have an email to sign in with' }, param: 'password' });
// A negative amount is an operator's correction (a mistyped top-up, a refund): never below zero.
const topUp = z.strictObject({
  amount: z.number().int().min(-1e15).max(1e15).refine((n) => n !== 0, { message: 'must not be 0: a top-up adds credits, a negative amount takes them away' }),
});
const topUpsQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(1000).default(100), before: z.string().min(1).max(100).optional() });
const keysQuery = z.strictObject({ revoked: z.enum(['true', 'false']).optional() });
const createKey = z.strictObject({ name: storedName.optional(), limit: keyLimit.optional(), expiresAt: keyExpiry.optional(), models: keyModels.optional() });
const isoBound = z.union([z.iso.date(), z.iso.datetime({ offset: true })]).refine(storable, { message: 'outside the years 0001-9999' });

/** An instant every store can hold and compare (PostgreSQL has no year 0). */
function storable(value: string): boolean {
  try {
    canonicalInstant(value);
    return true;
  } catch {
    return false;
  }
}
const usageQuery = z.strictObject({
  account: z.string().optional(),
  from: isoBound.optional(),
  to: isoBound.optional(),
  group: z.enum(['none', 'day']).default('none'),
  limit: z.coerce.number().int().min(1).max(10_000).optional(),
  before: usageCursor.optional(),
});
// The export is every row of the range: no page size, no cursor.
const exportQuery = usageQuery.omit({ limit: true, before: true });

export function adminRoutes(deps: AppDeps): FastifyPluginAsync {
  const { accounts, keys, storage, clock } = deps;
  const token = deps.config.admin.token;
  const epochs = new SessionEpochs(deps.counters, clock);

  return async (app) => {
    app.addHook('onRequest', async (req) => {
      if (token === '') {
        throw new GatewayError('admin_unauthorized', { vars: { detail: ' The admin API is disabled: no admin token is configured.' } });
      }
      const given = bearerToken(req);
      if (given === null || !secretsEqual(given, token)) throw new GatewayError('admin_unauthorized');
    });
    // Registered inside this plugin so the token check above runs first: without the token, an
    // unknown admin path is a 401 like any other, and the API's shape is not probeable.
    app.setNotFoundHandler((req, reply) =>
      sendError(deps, req, reply, new GatewayError('route_not_found', { vars: { method: req.method, path: req.url.split('?')[0] ?? '' } })),
    );

    app.post('/accounts', async (req, reply) => {
      const body = parseBody(createAccount, req.body ?? {});
      if (body.password !== undefined) {
        if (!body.email) throw noEmail();
        checkPasswordFor(body.password, body.email);
      }
      const account = await accounts.create({
        email: body.email ?? null,
        ...(body.plan !== undefined && { plan: body.plan }),
        ...(body.password !== undefined && { passwordHash: await hashPassword(body.password) }),
      });
      return reply.code(201).send(accountView(account));
    });

    // Newest first; the next page is `before=<the last id of this one>`.
    app.get('/accounts', async (req) => {
      const q = parseBody(listAccounts, req.query);
      const page = await accounts.list({
        limit: q.limit,
        ...(q.email !== undefined && { email: q.email }),
        ...(q.suspended !== undefined && { suspended: true }),
        ...(q.plan !== undefined && { plan: q.plan }),
        ...(q.before !== undefined && { before: q.before }),
      });
      return { object: 'list', data: page.data.map(accountSummaryView), hasMore: page.hasMore };
    });

    app.get<{ Params: { id: string } }>('/accounts/:id', async (req) => {
      const account = await accounts.get(req.params.id);
      const now = clock.now();
      const day = utcDay(now);
      const [rows, status] = await Promise.all([
        storage.ledger.daily({ accountId: account.id, from: day, to: utcDay(now + 86_400_000) }),
        deps.meter.status({ account, key: null, surface: 'api' }, deps.catalog.models),
      ]);
      const today = summariseDaily(rows);
      // SPEC §9: today's usage per rule. A key-scoped rule counts per key (GET /v1/usage with that
      // key shows it), so the account's view lists the account-wide rules.
      const rules = status.rules.filter((r) => r.scope !== 'key').map(ruleView);
      return { ...accountView(account), usage: { day, ...today, rules } };
    });

    app.patch<{ Params: { id: string } }>('/accounts/:id', async (req) => {
      const body = parseBody(patchAccount, req.body ?? {});
      if (body.suspendedReason !== undefined && body.suspended !== true) {
        throw new GatewayError('invalid_request', { vars: { detail: 'suspendedReason goes with suspended: true' }, param: 'suspendedReason' });
      }
      if (body.password !== undefined) {
        // The email it will sign in with: the one given here, else the account's.
        const email = body.email ?? (await accounts.get(req.params.id)).email;
        if (!email) throw noEmail();
        checkPasswordFor(body.password, email);
      }
      // The update first: it refuses an unknown plan before it changes anything, so a refused
      // PATCH leaves the password and the sessions as they were (set first, a typo in the plan
      // answered 400 after the password had changed and every session had ended).
      const account = await accounts.update(req.params.id, {
        ...(body.plan !== undefined && { plan: body.plan }),
        ...(body.paymentMethod !== undefined && { paymentMethod: body.paymentMethod }),
        ...(body.suspended !== undefined && { suspended: body.suspended }),
        ...(body.suspendedReason !== undefined && { suspendedReason: body.suspendedReason }),
        ...(body.email !== undefined && { email: body.email }),
      });
      if (body.password !== undefined) {
        const hash = await hashPassword(body.password);
        // A password set for someone is a reset: the sessions signed in with the old one end — first,
        // so a limiter that cannot end them (503) leaves the old password standing, not a new one
        // beside a stranger's live session; the operator's retry completes it. Ended again after,
        // as a reset link's redeem is: a sign-in between that end and the new password (the old
        // one still good) began a session of the new epoch, which outlived the reset.
        await epochs.end(req.params.id);
        await accounts.setPasswordHash(req.params.id, hash);
        await epochs.end(req.params.id);
      }
      return accountView(account);
    });

    // A one-time link on which the account's owner sets a password of their own (core/password-reset.ts).
    app.post<{ Params: { id: string } }>('/accounts/:id/password-reset', async (req, reply) => {
      parseBody(z.strictObject({}), req.body ?? {});
      return reply.code(201).send(await deps.resets.issue(req.params.id));
    });

    // Closes the account: its email, password, keys and sessions end; its ledger and balance history stay.
    app.delete<{ Params: { id: string } }>('/accounts/:id', async (req) => {
      const account = await closeAccount(req.params.id, { accounts, keys, keyStore: storage.keys });
      await epochs.end(account.id);
      return accountView(account);
    });

    app.post<{ Params: { id: string } }>('/accounts/:id/credits', async (req, reply) => {
      const body = parseBody(topUp, req.body);
      const idempotencyKey = req.headers['idempotency-key'];
      if (idempotencyKey === undefined) return accountView(await accounts.addCredits(req.params.id, body.amount, 'admin'));
      if (typeof idempotencyKey !== 'string' || !idempotencyKeyPattern.test(idempotencyKey)) {
        throw new GatewayError('invalid_request', { vars: { detail: 'Idempotency-Key must be 1 to 255 printable ASCII characters' }, param: 'Idempotency-Key' });
      }
      const { account, replayed } = await accounts.addCreditsOnce(req.params.id, body.amount, idempotencyKey, 'admin');
      // Stripe's name for it: the answer is the account as it is now, the top-up made earlier.
      if (replayed) reply.header('idempotent-replayed', 'true');
      return accountView(account);
    });

    // The balance's history: every top-up, newest first (the balance itself: GET /accounts/:id).
    app.get<{ Params: { id: string } }>('/accounts/:id/top-ups', async (req) => {
      const q = parseBody(topUpsQuery, req.query);
      // Newest first; the next page is `before=<the last id of this one>`.
      const page = await accounts.topUpHistory(req.params.id, q.limit, q.before);
      return { object: 'list', data: page.data, hasMore: page.hasMore };
    });

    app.post<{ Params: { id: string } }>('/accounts/:id/keys', async (req, reply) => {
      const { name, ...settings } = parseBody(createKey, req.body ?? {});
      const { key, secret } = await keys.create(req.params.id, name, checkKeySettings(settings, clock.now(), deps.catalog));
      return reply.code(201).send({ ...keyView(key), key: secret });
    });

    app.patch<{ Params: { id: string } }>('/keys/:id', async (req) => {
      const body = parseBody(keyPatch, req.body ?? {});
      return keyView(await keys.update(req.params.id, checkKeySettings(body, clock.now(), deps.catalog)));
    });

    app.get<{ Params: { id: string } }>('/accounts/:id/keys', async (req) => {
      const q = parseBody(keysQuery, req.query);
      const account = await accounts.get(req.params.id);
      const all = await storage.keys.listByAccount(account.id);
      // ?revoked=false: the keys that still work (what rotating or auditing access starts from).
      const list = q.revoked === undefined ? all : all.filter((k) => (k.revokedAt !== null) === (q.revoked === 'true'));
      const used = await deps.meter.keyLimitsUsed(account, list);
      return { object: 'list', data: list.map((k) => ({ ...keyView(k), ...(used.has(k.id) && { limitUsed: used.get(k.id) }) })) };
    });

    // One key by its id, as the ledger's rows name it: its account, settings and what it has used
    // of its own limit. (Not by its secret: a URL is logged by every proxy on the way.)
    app.get<{ Params: { id: string } }>('/keys/:id', async (req) => {
      const key = await storage.keys.get(req.params.id);
      if (!key) throw new GatewayError('key_not_found', { vars: { id: req.params.id } });
      // The stored account, not accounts.get: that reads the balance too, which this does not show.
      const account = await storage.accounts.get(key.accountId);
      const used = account ? await deps.meter.keyLimitsUsed(account, [key]) : new Map<string, number>();
      return { ...keyView(key), ...(used.has(key.id) && { limitUsed: used.get(key.id) }) };
    });

    app.delete<{ Params: { id: string } }>('/keys/:id', async (req) => keyView(await keys.revoke(req.params.id)));

    /** The ledger filter of a usage query, once its range and account are checked. */
    const usageFilter = async (q: z.infer<typeof exportQuery> & { limit?: number | undefined }): Promise<UsageQuery> => {
      if (emptyRange(q.from, q.to)) {
        const detail = `'to' (${q.to}) must come after 'from' (${q.from}): 'to' is exclusive (one day: from=2026-11-25&to=2026-11-26)`;
        throw new GatewayError('invalid_request', { vars: { detail }, param: 'to' });
      }
      // An id with a typo is 404 account_not_found, as on every other account call, not an empty list.
      // The stored row only: the ledger must stay readable while the limiter (the balance) is down.
      if (q.account !== undefined && !(await storage.accounts.get(q.account))) throw new GatewayError('account_not_found', { vars: { id: q.account } });
      return {
        ...(q.account !== undefined && { accountId: q.account }),
        ...(q.from !== undefined && { from: q.from }),
        ...(q.to !== undefined && { to: q.to }),
        ...(q.limit !== undefined && { limit: q.limit }),
      };
    };

    app.get('/usage', async (req) => {
      const q = parseBody(usageQuery, req.query);
      const filter = await usageFilter(q);
      if (q.group === 'day') {
        if (q.before !== undefined) throw new GatewayError('invalid_request', { vars: { detail: "'before' pages ledger rows, not daily totals: narrow the range with 'from' and 'to'" }, param: 'before' });
        return { object: 'list', data: await storage.ledger.daily(filter) };
      }
      // Newest first; the next page is `before=<next>`, until `next` is null.
      const page = await storage.ledger.page({ ...filter, ...(q.before !== undefined && { before: q.before }) });
      return { object: 'list', data: page.records.map(usageRecordView), hasMore: page.next !== null, next: page.next };
    });

    // The same rows as CSV, every one of the range however many (billing runs, spreadsheets):
    // records read and sent a page at a time, so memory stays flat; daily totals in one go.
    app.get('/usage/export', async (req, reply) => {
      const q = parseBody(exportQuery, req.query);
      const filter = await usageFilter(q);
      const { ledger } = storage;
      // Read before the answer starts (ledgerCsv): a ledger that cannot be read is 503, not a 200 cut short.
      const body =
        q.group === 'day'
          ? Readable.from([dailyUsageCsvHeader, (await allDaily(ledger, filter)).map(dailyUsageCsv).join('')])
          : await ledgerCsv(ledger, filter, usageRecordCsvHeader, usageRecordCsv);
      const name = ['tollgate', q.group === 'day' ? 'daily' : 'usage', q.account, q.from && `from-${q.from.slice(0, 10)}`, q.to && `to-${q.to.slice(0, 10)}`];
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="${name.filter(Boolean).join('-')}.csv"`)
        .send(body);
    });
  };
}
