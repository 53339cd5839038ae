// Billing through Stripe (SPEC §8): the Billing page's calls create Checkout Sessions on a fake
// Stripe API (form-encoded, as Stripe takes them), and signed webhooks complete them — a setup
// session marks the payment method (free → paid), a paid one credits the balance, once per event.
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/lib/clock.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const WEBHOOK_SECRET = 'whsec_test_0123456789';
let t: TestGateway;
let stripe: Server;
const sessions: Array<{ auth: string | undefined; form: URLSearchParams }> = [];
/** The Checkout Sessions the fake API lists by payment intent (GET /v1/checkout/sessions?payment_intent=). */
const paid = new Map<string, object>();

beforeAll(async () => {
  stripe = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://stripe.test');
      if (req.method === 'GET' && url.pathname === '/v1/checkout/sessions' && req.headers.authorization === 'Bearer sk_test_abc') {
        const session = paid.get(url.searchParams.get('payment_intent') ?? '');
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', url: '/v1/checkout/sessions', has_more: false, data: session ? [session] : [] }));
        return;
      }
      if (req.method !== 'POST' || req.url !== '/v1/checkout/sessions') {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"Unrecognized request URL"}}');
        return;
      }
      sessions.push({ auth: req.headers.authorization, form: new URLSearchParams(text) });
      const id = `cs_test_${sessions.length}`;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id, object: 'checkout.session', url: `https://checkout.stripe.test/c/pay/${id}` }));
    });
  });
  await new Promise<void>((r) => stripe.listen(0, '127.0.0.1', r));
  const apiBase = `http://127.0.0.1:${(stripe.address() as AddressInfo).port}`;
  t = await startTestGateway({ config: { billing: { provider: 'stripe', stripe: { secretKey: 'sk_test_abc', webhookSecret: WEBHOOK_SECRET, apiBase, currency: 'usd' } } } });
});
afterAll(async () => {
  await t?.close();
  stripe?.closeAllConnections();
  await new Promise((r) => stripe?.close(r));
});

/** A signed-in browser: cookies and the CSRF header. */
async function signedIn() {
  const jar = new Map<string, string>();
  const call = async (method: string, path: string, body?: unknown) => {
    const headers: Record<string, string> = {};
    if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    if (jar.has('tg_csrf')) headers['x-csrf-token'] = jar.get('tg_csrf')!;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${t.url}/app/api${path}`, { method, headers, ...(body !== undefined && { body: JSON.stringify(body) }) });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      jar.set(pair!.slice(0, eq), pair!.slice(eq + 1));
    }
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  await call('GET', '/session');
  const up = await call('POST', '/signup', { email: `s${Math.random().toString(36).slice(2)}@example.test`, password: 'correct horse battery' });
  expect(up.status).toBe(201);
  return { call, accountId: up.body.account.id as string };
}

function webhook(event: object, opts: { secret?: string; t?: number; gateway?: TestGateway } = {}) {
  const body = JSON.stringify(event);
  const ts = opts.t ?? Math.floor(Date.now() / 1000);
  const sig = createHmac('sha256', opts.secret ?? WEBHOOK_SECRET).update(`${ts}.${body}`).digest('hex');
  return fetch(`${(opts.gateway ?? t).url}/app/api/billing/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', 'stripe-signature': `t=${ts},v1=${sig}` }, body });
}

/** A checkout.session.completed event for a session this gateway made (metadata.tollgate = its public URL). */
const completed = (id: string, session: { metadata?: Record<string, string>; [k: string]: unknown }) => ({
  id,
  object: 'event',
  type: 'checkout.session.completed',
  data: { object: { object: 'checkout.session', id: `cs_${id}`, ...session, metadata: { tollgate: 'http://gateway.test', ...session.metadata } } },
});

describe('Stripe billing', () => {
  it('add payment method: a setup Checkout Session, then the signed webhook moves the account to paid', async () => {
    const { call, accountId } = await signedIn();
    const pm = await call('POST', '/billing/payment-method');
    expect(pm.body).toEqual({ redirectUrl: expect.stringMatching(/^https:\/\/checkout\.stripe\.test\/c\/pay\/cs_test_/) });
    const sent = sessions.at(-1)!;
    expect(sent.auth).toBe('Bearer sk_test_abc');
    expect(Object.fromEntries(sent.form)).toMatchObject({ mode: 'setup', currency: 'usd', client_reference_id: accountId, success_url: 'http://gateway.test/app/billing?checkout=done' });
    // Nothing changes until Stripe says so.
    expect((await call('GET', '/billing')).body).toMatchObject({ plan: 'free', paymentMethod: false, provider: 'stripe', hostedCheckout: true, paymentMethodLifts: true, selfTopUp: true });

    const res = await webhook(completed(`evt_setup_${accountId}`, { mode: 'setup', client_reference_id: accountId, status: 'complete', metadata: { account: accountId } }));
    expect(res.status).toBe(200);
    expect((await call('GET', '/billing')).body).toMatchObject({ plan: 'paid', paymentMethod: true });
  });

  it('top up: a payment Checkout Session for the credits’ price; the paid webhook credits once, however often Stripe delivers it', async () => {
    const { call, accountId } = await signedIn();
    // Credits are for the prepaid plan: a payment method first.
    expect((await call('POST', '/billing/topup', { amount: 250_000_000 })).body.error).toMatchObject({ code: 'invalid_request', param: 'amount' });
    await webhook(completed(`evt_pm_${accountId}`, { mode: 'setup', metadata: { account: accountId } }));
    // Below Stripe's smallest charge ($0.50 = 1,000,000 credits): refused here, not by Stripe.
    const tiny = await call('POST', '/billing/topup', { amount: 500_000 });
    expect(tiny.body.error).toMatchObject({ code: 'invalid_request', param: 'amount' });
    const top = await call('POST', '/billing/topup', { amount: 250_000_000 });
    expect(top.body.redirectUrl).toMatch(/^https:\/\/checkout\.stripe\.test\//);
    // 250,000,000 credits at 2,000,000 a dollar: $125.
    expect(Object.fromEntries(sessions.at(-1)!.form)).toMatchObject({
      mode: 'payment',
      'metadata[credits]': '250000000',
      'line_items[0][price_data][unit_amount]': '12500',
      'line_items[0][price_data][currency]': 'usd',
    });
    expect((await call('GET', '/billing')).body.balance).toBe(0);

    const event = completed(`evt_pay_${accountId}`, { mode: 'payment', payment_status: 'paid', currency: 'usd', amount_total: 12500, client_reference_id: accountId, metadata: { account: accountId, credits: '250000000' } });
    // Stripe delivers at least once, sometimes together; the same session under another event
    // (async_payment_succeeded after completed) credits no more either.
    const again = { ...event, id: `evt_pay2_${accountId}`, type: 'checkout.session.async_payment_succeeded' };
    const deliveries = await Promise.all([webhook(event), webhook(event), webhook(again)]);
    expect(deliveries.every((r) => r.status === 200 || r.status === 503)).toBe(true);
    await webhook(event);
    expect((await call('GET', '/billing')).body.balance).toBe(250_000_000);
    // An unpaid session (a delayed payment method) credits nothing yet; nor does one whose total
    // does not cover the credits it names.
    await webhook(completed(`evt_unpaid_${accountId}`, { mode: 'payment', payment_status: 'unpaid', currency: 'usd', amount_total: 12500, metadata: { account: accountId, credits: '250000000' } }));
    await webhook(completed(`evt_short_${accountId}`, { mode: 'payment', payment_status: 'paid', currency: 'usd', amount_total: 12499, metadata: { account: accountId, credits: '250000000' } }));
    // Nor one this gateway did not make (another product on the Stripe account, a Payment Link).
    await webhook(completed(`evt_foreign_${accountId}`, { mode: 'payment', payment_status: 'paid', currency: 'usd', amount_total: 12500, metadata: { tollgate: 'https://elsewhere.test', account: accountId, credits: '250000000' } }));
    const billing = (await call('GET', '/billing')).body;
    expect(billing.balance).toBe(250_000_000);
    // The balance's history has the checkout once, however often it was delivered.
    expect(billing.topUps).toEqual([{ id: expect.stringMatching(/^top_/), credits: 250_000_000, source: 'stripe', createdAt: expect.any(String) }]);
    const history = (await t.admin('GET', `/accounts/${accountId}/top-ups`)).body.data;
    expect(history).toEqual([expect.objectContaining({ credits: 250_000_000, source: 'stripe', reference: event.data.object.id })]);
  });

  it('a refund or a chargeback of a paid session takes its credits back (the balance may go below zero); a won dispute returns them', async () => {
    const { call, accountId } = await signedIn();
    await webhook(completed(`evt_pm_r_${accountId}`, { mode: 'setup', metadata: { account: accountId } }));
    const session = { mode: 'payment', payment_status: 'paid', currency: 'usd', amount_total: 500, payment_intent: `pi_${accountId}`, metadata: { account: accountId, credits: '10000000' } };
    const event = completed(`evt_r_${accountId}`, session);
    paid.set(`pi_${accountId}`, event.data.object);
    await webhook(event);
    expect((await call('GET', '/billing')).body.balance).toBe(10_000_000);

    const refund = (id: string, type: string, status: string, amount: number) => ({
      id: `evt_${id}_${status}`, object: 'event', type,
      data: { object: { id, object: 'refund', amount, currency: 'usd', status, charge: `ch_${accountId}`, payment_intent: `pi_${accountId}` } },
    });
    // $1 of the $5 back: a fifth of the credits.
    expect((await webhook(refund(`re_a_${accountId}`, 'refund.created', 'succeeded', 100))).status).toBe(200);
    expect((await webhook(refund(`re_a_${accountId}`, 'refund.updated', 'succeeded', 100))).status).toBe(200);
    expect((await call('GET', '/billing')).body.balance).toBe(8_000_000);
    // The rest refunded after the account spent 9,000,000 of it: it owes 1,000,000.
    await t.admin('POST', `/accounts/${accountId}/credits`, { amount: -7_000_000 });
    await webhook(refund(`re_b_${accountId}`, 'refund.created', 'succeeded', 400));
    const billing = (await call('GET', '/billing')).body;
    expect(billing.balance).toBe(-7_000_000);
    expect(billing.topUps.slice(0, 3).map((r: { credits: number; source: string }) => [r.credits, r.source])).toEqual([[-8_000_000, 'stripe'], [-7_000_000, 'admin'], [-2_000_000, 'stripe']]);

    const dispute = (type: string) => ({ id: `evt_${type}_${accountId}`, object: 'event', type, data: { object: { id: `dp_${accountId}`, object: 'dispute', amount: 500, currency: 'usd', status: 'needs_response', payment_intent: `pi_${accountId}` } } });
    await webhook(dispute('charge.dispute.funds_withdrawn'));
    expect((await call('GET', '/billing')).body.balance).toBe(-17_000_000);
    await webhook(dispute('charge.dispute.funds_reinstated'));
    expect((await call('GET', '/billing')).body.balance).toBe(-7_000_000);
  });

  it('a paid session redelivered weeks later (a Dashboard resend: Stripe keeps events 30 days) credits no more', async () => {
    const clock = new ManualClock(Date.now());
    const s = await startTestGateway({
      config: { billing: { provider: 'stripe', stripe: { secretKey: 'sk_test_abc', webhookSecret: WEBHOOK_SECRET, apiBase: 'http://127.0.0.1:9', currency: 'usd' } } },
      gateway: { clock },
    });
    try {
      const accountId = (await s.admin('POST', '/accounts', {})).body.id as string;
      await s.admin('PATCH', `/accounts/${accountId}`, { paymentMethod: true });
      const event = completed(`evt_late_${accountId}`, { mode: 'payment', payment_status: 'paid', currency: 'usd', amount_total: 50, metadata: { account: accountId, credits: '1000000' } });
      const deliver = async () => (await webhook(event, { gateway: s, t: Math.floor(clock.now() / 1000) })).status;
      expect(await deliver()).toBe(200);
      for (const days of [3, 5, 10, 10, 5]) {
        clock.advance(days * 86_400_000);
        // The sweep a running gateway does now and then, forgetting counters past their expiry.
        await s.gw.counters.sweep(clock.now());
        expect(await deliver()).toBe(200);
        expect((await s.admin('GET', `/accounts/${accountId}`)).body.balance, `after ${days} more days`).toBe(1_000_000);
      }
      // An event older than the memory (Stripe keeps none this old) is not acted on.
      const created = Math.floor(clock.now() / 1000);
      const old = completed(`evt_old_${accountId}`, { mode: 'payment', payment_status: 'paid', currency: 'usd', amount_total: 50, metadata: { account: accountId, credits: '1000000' } });
      clock.advance(36 * 86_400_000);
      expect((await webhook({ ...old, created }, { gateway: s, t: Math.floor(clock.now() / 1000) })).status).toBe(200);
      expect((await s.admin('GET', `/accounts/${accountId}`)).body.balance).toBe(1_000_000);
    } finally {
      await s.close();
    }
  });

  it('refuses a webhook not signed with the endpoint secret, or signed too long ago, and acts on nothing in it', async () => {
    const { call, accountId } = await signedIn();
    const event = completed(`evt_forged_${accountId}`, { mode: 'payment', payment_status: 'paid', currency: 'usd', amount_total: 1, metadata: { account: accountId, credits: '999999' } });
    for (const res of [await webhook(event, { secret: 'whsec_wrong' }), await webhook(event, { t: Math.floor(Date.now() / 1000) - 3600 })]) {
      expect(res.status).toBe(400);
      expect((await res.json()).error).toMatchObject({ code: 'webhook_signature_invalid' });
    }
    // A body past 1 MiB is refused before it is hashed.
    const big = await fetch(`${t.url}/app/api/billing/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', 'stripe-signature': 't=1,v1=00' }, body: JSON.stringify({ ...event, pad: 'x'.repeat(1024 * 1024) }) });
    expect(big.status).toBe(413);
    expect((await big.json()).error).toMatchObject({ code: 'body_too_large' });
    const unsigned = await fetch(`${t.url}/app/api/billing/webhook`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(event) });
    expect(unsigned.status).toBe(400);
    // No body at all: refused as unsigned, not a 500.
    const empty = await fetch(`${t.url}/app/api/billing/webhook`, { method: 'POST', headers: { 'stripe-signature': `t=${Math.floor(Date.now() / 1000)},v1=00` } });
    expect(empty.status).toBe(400);
    expect((await call('GET', '/billing')).body.balance).toBe(0);
  });
});
