// Stripe as the Billing page's provider (SPEC §8): "add payment method" and "top up" send the user
// to a Stripe Checkout page, and Stripe's signed webhook completes them. Nothing is credited or
// marked before the webhook says the session completed.
// API: https://docs.stripe.com/api/checkout/sessions/create (form-encoded, Bearer secret key).
// Webhooks: https://docs.stripe.com/webhooks#verify-events — `Stripe-Signature: t=<unix s>,v1=<hex>`,
// v1 = HMAC-SHA256(endpoint secret, `${t}.${raw body}`), checked in constant time within a tolerance.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config/schema.js';
import type { AccountInfo } from '../core/accounts.js';
import { accountKeyPrefix, balanceKey } from '../core/balances.js';
import { DuplicateReservationError } from '../storage/counter-ops.js';
import type { CounterOp } from '../storage/counters.js';
import type { BillingDeps, BillingProvider } from '../core/billing.js';
import { GatewayError } from '../errors/gateway-error.js';
import { isObject } from '../lib/is-object.js';
import { creditsFor, reversalOf, sessionOfList, type Reversal } from './stripe-reversals.js';

/** Stripe's smallest charge in dollars' cents (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts). */
const MIN_CENTS = 50;
/** How old a webhook's signed timestamp may be, s (Stripe's libraries default to 300). */
const TOLERANCE_S = 300;
/**
 * How long a credited session is remembered. Stripe retries a webhook for up to three days, but an
 * operator can resend any event it still keeps — 30 days (Dashboard "Resend", or the List Events
 * API of docs.stripe.com/webhooks/process-undelivered-events) — with a fresh signature: remembered
 * 7 days, such a resend credited the session again. An event older than this is not acted on.
 */
const SESSION_MEMORY_MS = 35 * 86_400_000;
/**
 * How long a refund's or dispute's mark is remembered: longer than the time between taking its
 * credits and giving them back (a dispute is decided within about 75 days; a refund fails within
 * days), and than Stripe keeps an event to resend (30 days).
 */
const REVERSAL_MEMORY_MS = 400 * 86_400_000;
/** once()'s answer when a give-back found its take reserved but not yet settled (no mark value is negative). */
const TAKE_UNSETTLED = -1;

/** Whether `header` (Stripe-Signature) signs `rawBody` with `secret`, within the tolerance of `nowMs`. */
export function verifyStripeSignature(rawBody: Buffer, header: string | undefined, secret: string, nowMs: number): boolean {
  if (!header || secret === '') return false;
  let t: number | undefined;
  const signatures: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't') t = Number(value);
    else if (key === 'v1') signatures.push(value);
  }
  if (t === undefined || !Number.isSafeInteger(t) || Math.abs(nowMs / 1000 - t) > TOLERANCE_S) return false;
  const expected = createHmac('sha256', secret).update(`${t}.`).update(rawBody).digest();
  return signatures.some((s) => {
    const given = Buffer.from(s, 'hex');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

export class StripeBilling implements BillingProvider {
  readonly id = 'stripe';
  /** Users top up themselves: they pay Stripe first. */
  readonly selfTopUp = true;
  readonly hostedCheckout = true;
  private readonly conf: Config['billing']['stripe'];

  constructor(
    config: Config['billing'],
    private readonly deps: BillingDeps,
  ) {
    this.conf = config.stripe;
  }

  private get returnUrl(): string {
    return `${this.deps.publicUrl.replace(/\/$/, '')}/app/billing`;
  }

  /**
   * One call to Stripe's API; its JSON answer. Transport failures and timeouts are the upstream
   * client's (502 / 504); an answer that is not a 2xx JSON one is 502 — Stripe's message names the
   * problem (a bad key, a currency), and the caller gets the status without it.
   */
  private async api(what: string, method: 'GET' | 'POST', path: string, form?: Record<string, string>): Promise<Record<string, unknown>> {
    const res = await this.deps.upstream.request({
      provider: 'stripe',
      method,
      url: `${this.conf.apiBase.replace(/\/$/, '')}${path}`,
      headers: { authorization: `Bearer ${this.conf.secretKey}`, ...(form && { 'content-type': 'application/x-www-form-urlencoded' }) },
      ...(form && { body: new URLSearchParams(form).toString() }),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (res.status < 200 || res.status >= 300 || !isObject(json)) {
      throw new GatewayError('upstream_unavailable', { vars: { provider: 'stripe', detail: `${what} answered HTTP ${res.status}` }, cause: new Error(text.slice(0, 500)) });
    }
    return json;
  }

  /** Creates a Checkout Session; returns its hosted page's URL. */
  private async checkout(fields: Record<string, string>): Promise<string> {
    const json = await this.api('Checkout', 'POST', '/v1/checkout/sessions', fields);
    if (typeof json.url !== 'string') {
      throw new GatewayError('upstream_unavailable', { vars: { provider: 'stripe', detail: 'Checkout answered without a URL' } });
    }
    return json.url;
  }

  async addPaymentMethod(account: AccountInfo): Promise<{ redirectUrl: string }> {
    const redirectUrl = await this.checkout({
      mode: 'setup',
      currency: this.conf.currency,
      client_reference_id: account.id,
      'metadata[account]': account.id,
      'metadata[tollgate]': this.deps.publicUrl,
      success_url: `${this.returnUrl}?checkout=done`,
      cancel_url: `${this.returnUrl}?checkout=cancelled`,
    });
    return { redirectUrl };
  }

  /** What `credits` cost in cents, at credits.perUsd (rounded up). */
  private centsFor(credits: number): number {
    return Math.ceil((credits / this.deps.creditsPerUsd) * 100);
  }

  /**
   * The seal of a payment session's figures (metadata.price): an HMAC, with the endpoint's secret,
   * of the account, the credits and the cents the session asks for them, so the webhook can trust
   * the price the session was made at without trusting whoever wrote its metadata.
   */
  private priceSeal(accountId: string, credits: number, cents: number): string {
    return createHmac('sha256', this.conf.webhookSecret).update(`price.${accountId}.${credits}.${cents}`).digest('hex');
  }

  /**
   * What a paid session must total for its credits: the cents it asked for them when it was made,
   * where its seal holds — credits.perUsd may have changed since (a restart with new prices, while
   * a bank debit took days), and the customer paid what the session said — else their price now.
   */
  private centsOwed(metadata: Record<string, unknown>, accountId: string, credits: number): number {
    const cents = Number(metadata.cents);
    const seal = typeof metadata.price === 'string' ? Buffer.from(metadata.price, 'hex') : undefined;
    const expected = Number.isSafeInteger(cents) && cents >= MIN_CENTS ? Buffer.from(this.priceSeal(accountId, credits, cents), 'hex') : undefined;
    return seal && expected && seal.length === expected.length && timingSafeEqual(seal, expected) ? cents : this.centsFor(credits);
  }

  async topUp(account: AccountInfo, credits: number): Promise<{ redirectUrl: string }> {
    // Credits are spent by the prepaid plan a payment method moves the account to; bought before, they would sit unused.
    if (!account.hasPaymentMethod) {
      throw new GatewayError('invalid_request', { vars: { detail: 'add a payment method before buying credits' }, param: 'amount' });
    }
    const cents = this.centsFor(credits);
    if (cents < MIN_CENTS) {
      const least = Math.ceil((MIN_CENTS / 100) * this.deps.creditsPerUsd);
      throw new GatewayError('invalid_request', { vars: { detail: `the smallest top-up Stripe charges is $0.50: ${least.toLocaleString('en-US')} credits` }, param: 'amount' });
    }
    const redirectUrl = await this.checkout({
      mode: 'payment',
      client_reference_id: account.id,
      'metadata[account]': account.id,
      'metadata[tollgate]': this.deps.publicUrl,
      'metadata[credits]': String(credits),
      'metadata[cents]': String(cents),
      'metadata[price]': this.priceSeal(account.id, credits, cents),
      'line_items[0][quantity]': '1',
      'line_items[0][price_data][currency]': this.conf.currency,
      'line_items[0][price_data][unit_amount]': String(cents),
      'line_items[0][price_data][product_data][name]': `${credits.toLocaleString('en-US')} credits`,
      success_url: `${this.returnUrl}?checkout=done`,
      cancel_url: `${this.returnUrl}?checkout=cancelled`,
    });
    return { redirectUrl };
  }

  /**
   * Acts on a signed event: a Checkout Session this gateway made completing (sessionCompleted), or
   * money of one of its paid sessions going back to the customer (reverse). Any other event is
   * answered 200 and ignored.
   */
  async handleWebhook(rawBody: Buffer, headers: Record<string, string | string[] | undefined>): Promise<void> {
    const signature = headers['stripe-signature'];
    if (!Buffer.isBuffer(rawBody) || !verifyStripeSignature(rawBody, typeof signature === 'string' ? signature : undefined, this.conf.webhookSecret, this.deps.clock.now())) {
      throw new GatewayError('webhook_signature_invalid');
    }
    const event = JSON.parse(rawBody.toString('utf8')) as unknown;
    if (!isObject(event) || !isObject(event.data) || !isObject(event.data.object)) return;
    if (event.type === 'checkout.session.completed' || event.type === 'checkout.session.async_payment_succeeded') {
      // Its session may be forgotten already (SESSION_MEMORY_MS); Stripe keeps no event this old.
      if (typeof event.created === 'number' && this.deps.clock.now() - event.created * 1000 > SESSION_MEMORY_MS) return;
      await this.sessionCompleted(event.data.object);
      return;
    }
    const reversal = reversalOf(event.type, event.data.object);
    if (reversal) await this.reverse(reversal);
  }

  /**
   * The account a session's metadata names, if this gateway made the session and the account
   * still exists. Only sessions this gateway created: the Stripe account may sell other things, or
   * serve another instance, and a Payment Link's buyer can set client_reference_id.
   */
  private async ownAccount(metadata: Record<string, unknown>): Promise<string | undefined> {
    // publicUrl is kept without a trailing slash since 2026-12-06: a session made before, under one
    // written with it, is still this deployment's.
    const tag = typeof metadata.tollgate === 'string' ? metadata.tollgate.replace(/\/+$/, '') : undefined;
    if (tag !== this.deps.publicUrl.replace(/\/+$/, '')) return undefined;
    const accountId = typeof metadata.account === 'string' ? metadata.account : undefined;
    if (accountId === undefined) return undefined;
    const account = await this.deps.accounts.get(accountId).catch((err: unknown) => {
      if (err instanceof GatewayError && err.code === 'account_not_found') return null;
      throw err;
    });
    return account === null ? undefined : accountId;
  }

  /**
   * Completes a Checkout Session this gateway made: a setup one marks the payment method (free →
   * paid; doing it twice changes nothing), a paid one credits the balance — once per session,
   * however often Stripe delivers its events (at least once): the session's mark and the credit
   * are one reservation in the limiter's store (once), so a crash or a lost reply between them
   * leaves neither and Stripe's retry tries anew.
   */
  private async sessionCompleted(session: Record<string, unknown>): Promise<void> {
    const metadata = isObject(session.metadata) ? session.metadata : {};
    if (typeof session.id !== 'string') return;
    const accountId = await this.ownAccount(metadata);
    if (accountId === undefined) return;
    if (session.mode === 'setup') {
      await this.deps.accounts.update(accountId, { paymentMethod: true });
      return;
    }
    const credits = Number(metadata.credits);
    // Credited only as much as was paid for: the session's total must cover the credits' price —
    // the one it was made at. Checked against today's price, a session made before credits.perUsd
    // went up was paid and never credited (answered 200, so Stripe did not send it again).
    const paid =
      session.mode === 'payment' &&
      session.payment_status === 'paid' &&
      Number.isSafeInteger(credits) &&
      credits > 0 &&
      session.currency === this.conf.currency &&
      typeof session.amount_total === 'number' &&
      session.amount_total >= this.centsOwed(metadata, accountId, credits);
    if (!paid) return;

    const now = this.deps.clock.now();
    await this.once(`stripe:${session.id}`, [
      { key: `${accountKeyPrefix(accountId)}:stripe_session:${session.id}`, amount: 1, max: 1, settle: 'keep', expiresAt: now + SESSION_MEMORY_MS },
      { key: balanceKey(accountId), amount: credits, settle: 'keep', expiresAt: null },
    ]);
    // Credited already (its mark was taken): recorded again, which the history keeps once, as the
    // delivery that credited it may have died before its record.
    await this.deps.accounts.recordTopUp({ accountId, credits, source: 'stripe', reference: session.id });
  }

  /**
   * Takes back the credits a refund or a dispute's withdrawal returns to the customer, or gives
   * them back when the refund fails or the dispute is won — each once per refund or dispute. The
   * balance may go below zero: the credits were spent before the money went back, and the debt is
   * paid by the next top-up (a paid request needs a balance that covers its worst case).
   *
   * The payment is found through Stripe's API (the Checkout Session of its payment intent), not
   * through the event: a Refund or Dispute carries no metadata, and a session's is the one this
   * gateway wrote and sealed.
   *
   * One counter per refund or dispute says where it stands: 0 nothing yet, 1 taken, 2 taken and
   * given back, 3 given back before anything was taken (a failed refund whose creation was never
   * delivered — nothing to give back, and a late delivery of its creation takes nothing). A second
   * counter turns 1 when the take is settled: a give-back waits for it (503, Stripe delivers again),
   * as a take still held may yet lapse and undo itself.
   */
  private async reverse(r: Reversal): Promise<void> {
    const list = await this.api('Listing Checkout Sessions', 'GET', `/v1/checkout/sessions?payment_intent=${encodeURIComponent(r.paymentIntent)}&limit=1`);
    const session = sessionOfList(list);
    if (session === undefined || session.mode !== 'payment' || session.currency !== r.currency) return;
    const metadata = isObject(session.metadata) ? session.metadata : {};
    const accountId = await this.ownAccount(metadata);
    const credits = Number(metadata.credits);
    const total = session.amount_total;
    if (accountId === undefined || typeof session.id !== 'string' || !Number.isSafeInteger(credits) || credits <= 0 || typeof total !== 'number' || !(total > 0)) return;
    const amount = creditsFor(r.amount, total, credits);
    if (amount === 0) return;
    // Only a payment that was credited: one that never was (paid short of its price) took credits
    // the account never had. The history is the proof that lasts: a session's mark is forgotten
    // after 35 days, and a dispute may come months later. The credit's delivery writes the record
    // before it answers 200, so a credit without its record is one Stripe is still delivering.
    if (!(await this.deps.accounts.hasTopUp(accountId, 'stripe', session.id))) return;

    const now = this.deps.clock.now();
    const mark = { key: `${accountKeyPrefix(accountId)}:stripe_${r.kind}:${r.id}`, settle: 'keep' as const, expiresAt: now + REVERSAL_MEMORY_MS };
    const balance = { key: balanceKey(accountId), settle: 'keep' as const, expiresAt: null };
    const taken = { key: `${mark.key}:settled`, settle: 'keep' as const, expiresAt: mark.expiresAt };
    const reference = `${r.kind}:${r.id}`;
    if (r.direction === 'take') {
      // Settled at 1 (`actual`): the take counts as done only once its hold can no longer lapse.
      const state = await this.once(`stripe:${reference}:take`, [{ ...mark, amount: 1, max: 1 }, { ...balance, amount: -amount }, { ...taken, amount: 0, settle: 'actual' }], 1);
      if (state === 1 || state === 2) await this.deps.accounts.recordTopUp({ accountId, credits: -amount, source: 'stripe', reference });
      return;
    }
    // Only over a settled take: given back over one still held, the take's lapse then gave its
    // credits back too and left the mark at 1, where the next delivery of the failure (Stripe sends
    // refund.failed, refund.updated and charge.refund.updated for one) gave them back again.
    let state = await this.once(`stripe:${reference}:back`, [{ ...mark, amount: 1, min: 2, max: 2 }, { ...taken, amount: 0, min: 1 }, { ...balance, amount }]);
    if (state === TAKE_UNSETTLED) throw new GatewayError('limiter_unavailable', { headers: { 'retry-after': '5' } });
    if (state === 0) {
      state = await this.once(`stripe:${reference}:close`, [{ ...mark, amount: 3, max: 3 }]);
      // Taken meanwhile (its creation delivered at the same moment): Stripe delivers again.
      if (state !== 3) throw new GatewayError('limiter_unavailable', { headers: { 'retry-after': '5' } });
    }
    if (state === 2) await this.deps.accounts.recordTopUp({ accountId, credits: amount, source: 'stripe', reference: `${reference}:back` });
  }

  /**
   * Applies `ops` — a once-only mark first, then what it guards — as one reservation settled at
   * once; returns the mark's value after (applied) or as found (not applied: nothing changed).
   * A reservation held past its minute (a paused process) lapses and settles nothing: answered
   * 503, Stripe delivers again and that delivery applies it — answered 200, the change was lost
   * and the history said it was made. Another delivery applying the same ops right now: 503 too.
   */
  private async once(id: string, ops: CounterOp[], actual = 0): Promise<number> {
    const now = this.deps.clock.now();
    let reserved;
    try {
      reserved = await this.deps.counters.reserve(id, ops, now + 60_000, now);
    } catch (err) {
      if (err instanceof DuplicateReservationError) throw new GatewayError('limiter_unavailable', { cause: err, headers: { 'retry-after': '5' } });
      throw err;
    }
    // The mark's refusal gives its value; a second bounded op's (a give-back's settled take), TAKE_UNSETTLED.
    if (!reserved.ok) return reserved.failed === 0 ? reserved.value : TAKE_UNSETTLED;
    if (!(await this.deps.counters.settle(id, actual))) throw new GatewayError('limiter_unavailable', { headers: { 'retry-after': '5' } });
    return reserved.values[0] ?? 0;
  }
}
