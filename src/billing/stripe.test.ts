import { createHmac } from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import { AccountService } from '../core/accounts.js';
import { Balances } from '../core/balances.js';
import { ManualClock } from '../lib/clock.js';
import { randomIds } from '../lib/ids.js';
import { MemoryCounterStore } from '../storage/memory/counters.js';
import { openSqliteStorage } from '../storage/sqlite/index.js';
import { StripeBilling, verifyStripeSignature } from './stripe.js';

const secret = 'whsec_test_secret';
const body = Buffer.from('{"id":"evt_1","type":"checkout.session.completed"}');
const now = Date.UTC(2026, 11, 4, 12);
const sign = (t: number, payload = body, key = secret) => createHmac('sha256', key).update(`${t}.`).update(payload).digest('hex');

/** A gateway's billing parts on a fresh store; `stripeAt` makes the provider at a credit rate (as a restart with other prices would). */
function billingWorld(counters = new MemoryCounterStore()) {
  const clock = new ManualClock();
  const storage = openSqliteStorage('sqlite::memory:');
  const balances = new Balances(counters, () => clock.now());
  const accounts = new AccountService(storage.accounts, balances, { plans: { paid: {} as never }, defaultPlan: 'paid' }, clock, randomIds, storage.topUps);
  const stripeAt = (creditsPerUsd = 2_000_000, upstream: unknown = {}) =>
    new StripeBilling(
      { provider: 'stripe', selfTopUp: false, stripe: { secretKey: 'sk_test', webhookSecret: secret, apiBase: 'https://api.stripe.test', currency: 'usd' } } as never,
      { accounts, counters, clock, publicUrl: 'http://gateway.test', creditsPerUsd, upstream: upstream as never },
    );
  return { clock, storage, counters, balances, accounts, stripeAt };
}

describe('Stripe webhook signatures', () => {
  it('accepts a v1 signature of t.body with the endpoint secret, among several', () => {
    const t = now / 1000;
    expect(verifyStripeSignature(body, `t=${t},v1=${sign(t)}`, secret, now)).toBe(true);
    // Stripe sends one v1 per active secret while one is rolled: any may match.
    expect(verifyStripeSignature(body, `t=${t},v1=${'0'.repeat(64)},v1=${sign(t)},v0=abc`, secret, now)).toBe(true);
  });

  it('refuses another body, another secret, a missing or malformed header, and an old or future timestamp', () => {
    const t = now / 1000;
    expect(verifyStripeSignature(Buffer.from('{"id":"evt_2"}'), `t=${t},v1=${sign(t)}`, secret, now)).toBe(false);
    expect(verifyStripeSignature(body, `t=${t},v1=${sign(t, body, 'whsec_other')}`, secret, now)).toBe(false);
    for (const header of [undefined, '', 'garbage', `v1=${sign(t)}`, `t=${t}`, `t=abc,v1=${sign(t)}`, `t=${t},v1=zz`]) {
      expect(verifyStripeSignature(body, header, secret, now), String(header)).toBe(false);
    }
    expect(verifyStripeSignature(body, `t=${t - 301},v1=${sign(t - 301)}`, secret, now)).toBe(false);
    expect(verifyStripeSignature(body, `t=${t + 301},v1=${sign(t + 301)}`, secret, now)).toBe(false);
    expect(verifyStripeSignature(body, `t=${t - 299},v1=${sign(t - 299)}`, secret, now)).toBe(true);
    // No secret configured: nothing verifies.
    expect(verifyStripeSignature(body, `t=${t},v1=${createHmac('sha256', '').update(`${t}.`).update(body).digest('hex')}`, '', now)).toBe(false);
  });
});

describe('Stripe webhook: a paid session', () => {
  it('whose credit lapsed before it was settled is neither recorded nor answered as done: the redelivery credits and records it', async () => {
    const counters = new MemoryCounterStore();
    const { clock, storage, balances, accounts, stripeAt } = billingWorld(counters);
    // The hold lapses between the reserve and the settle (a process paused past its minute): the
    // store settles nothing and says so.
    let pause = true;
    const settle = counters.settle.bind(counters);
    counters.settle = async (id: string, actual: number) => {
      if (pause) {
        pause = false;
        await counters.sweep(clock.now() + 61_000);
      }
      return settle(id, actual);
    };
    const stripe = stripeAt();
    try {
      const { id } = await accounts.create({ plan: 'paid' });
      const event = Buffer.from(JSON.stringify({
        id: 'evt_1', type: 'checkout.session.completed', created: Math.floor(clock.now() / 1000),
        data: { object: { id: 'cs_1', mode: 'payment', payment_status: 'paid', currency: 'usd', amount_total: 100, metadata: { tollgate: 'http://gateway.test', account: id, credits: '2000000' } } },
      }));
      const t = Math.floor(clock.now() / 1000);
      const deliver = () => stripe.handleWebhook(event, { 'stripe-signature': `t=${t},v1=${sign(t, event)}` });
      // Nothing was credited: Stripe is told to deliver again (a 503), and the history says nothing.
      await expect(deliver()).rejects.toMatchObject({ code: 'limiter_unavailable' });
      expect(await balances.get(id)).toBe(0);
      expect((await accounts.topUpHistory(id, 10)).data).toEqual([]);
      await deliver();
      expect(await balances.get(id)).toBe(2_000_000);
      expect((await accounts.topUpHistory(id, 10)).data.map((r) => [r.credits, r.source, r.reference])).toEqual([[2_000_000, 'stripe', 'cs_1']]);
    } finally {
      storage.close();
    }
  });
});

describe('Stripe webhook: the deployment a session belongs to', () => {
  it("credits a session tagged with this publicUrl written with a trailing slash (made before publicUrl was kept without one)", async () => {
    const { clock, storage, balances, accounts, stripeAt } = billingWorld();
    const stripe = stripeAt();
    try {
      const { id } = await accounts.create({ plan: 'paid' });
      const t = Math.floor(clock.now() / 1000);
      const deliver = async (n: number, tollgate: string) => {
        const event = Buffer.from(JSON.stringify({
          id: `evt_${n}`, type: 'checkout.session.completed', created: t,
          data: { object: { id: `cs_${n}`, mode: 'payment', payment_status: 'paid', currency: 'usd', amount_total: 100, metadata: { tollgate, account: id, credits: '2000000' } } },
        }));
        await stripe.handleWebhook(event, { 'stripe-signature': `t=${t},v1=${sign(t, event)}` });
      };
      await deliver(1, 'http://gateway.test/');
      expect(await balances.get(id)).toBe(2_000_000);
      // Another deployment's session is still not this one's.
      await deliver(2, 'http://other.test/');
      await deliver(3, 'http://gateway.test/x');
      expect(await balances.get(id)).toBe(2_000_000);
    } finally {
      storage.close();
    }
  });
});

describe('Stripe webhook: the price a session was made at', () => {
  it('credits a paid session at the price it was made at, though credits.perUsd changed before its webhook (a restart with new prices)', async () => {
    const { clock, storage, balances, accounts, stripeAt: stripeWith } = billingWorld();
    const forms: URLSearchParams[] = [];
    const upstream = {
      request: async (req: { body?: unknown }) => {
        forms.push(new URLSearchParams(String(req.body)));
        return { status: 200, text: async () => JSON.stringify({ url: 'https://checkout.stripe.test/cs_1' }) };
      },
    };
    const stripeAt = (creditsPerUsd: number) => stripeWith(creditsPerUsd, upstream);
    try {
      const account = await accounts.create({ plan: 'paid' });
      await accounts.update(account.id, { paymentMethod: true });
      // 2,000,000 credits at 2,000,000 a dollar: $1.00, paid as asked.
      await stripeAt(2_000_000).topUp({ ...account, hasPaymentMethod: true }, 2_000_000);
      const form = Object.fromEntries(forms[0]!);
      expect(form['line_items[0][price_data][unit_amount]']).toBe('100');
      const metadata = Object.fromEntries(Object.entries(form).filter(([k]) => k.startsWith('metadata[')).map(([k, v]) => [k.slice(9, -1), v]));
      const session = { id: 'cs_1', mode: 'payment', payment_status: 'paid', currency: 'usd', amount_total: 100, metadata };
      const event = (over: object = {}) => Buffer.from(JSON.stringify({ id: 'evt_1', type: 'checkout.session.async_payment_succeeded', created: Math.floor(clock.now() / 1000), data: { object: { ...session, ...over } } }));
      const t = Math.floor(clock.now() / 1000);
      // Days later (a bank debit settles), the gateway runs at twice the price: the customer paid
      // what the session asked, and gets what it sold.
      const later = stripeAt(1_000_000);
      // A session's figures altered after it was made (its total, or the credits it names) pay nothing.
      const forged = event({ metadata: { ...metadata, credits: '4000000' } });
      await later.handleWebhook(forged, { 'stripe-signature': `t=${t},v1=${sign(t, forged)}` });
      const short = event({ amount_total: 99 });
      await later.handleWebhook(short, { 'stripe-signature': `t=${t},v1=${sign(t, short)}` });
      expect(await balances.get(account.id)).toBe(0);
      const paid = event();
      await later.handleWebhook(paid, { 'stripe-signature': `t=${t},v1=${sign(t, paid)}` });
      expect(await balances.get(account.id)).toBe(2_000_000);
      expect((await accounts.topUpHistory(account.id, 10)).data.map((r) => [r.credits, r.source, r.reference])).toEqual([[2_000_000, 'stripe', 'cs_1']]);
    } finally {
      storage.close();
    }
  });
});

describe('Stripe webhook: refunds and disputes take the credits back', () => {
  /**
   * A paid session of 2,000,000 credits for 100 cents, credited; `stripe` finds it by its payment
   * intent through a fake API that counts its calls (`down` makes it answer 500).
   */
  async function paidWorld() {
    const world = billingWorld();
    onTestFinished(() => world.storage.close());
    const { clock, accounts } = world;
    const account = await accounts.create({ plan: 'paid' });
    const session = { id: 'cs_1', object: 'checkout.session', mode: 'payment', payment_status: 'paid', currency: 'usd', amount_total: 100, payment_intent: 'pi_1', metadata: { tollgate: 'http://gateway.test', account: account.id, credits: '2000000' } };
    const api = { down: false, calls: [] as string[], sessions: [session] as object[] };
    const upstream = {
      request: async (req: { method: string; url: string; headers: Record<string, string> }) => {
        api.calls.push(`${req.method} ${req.url} ${req.headers.authorization}`);
        if (api.down) return { status: 500, text: async () => '{"error":{"message":"down"}}' };
        const pi = new URL(req.url).searchParams.get('payment_intent');
        const data = api.sessions.filter((s) => (s as { payment_intent?: string }).payment_intent === pi);
        return { status: 200, text: async () => JSON.stringify({ object: 'list', data, has_more: false }) };
      },
    };
    const stripe = world.stripeAt(2_000_000, upstream);
    const deliver = async (type: string, object: object) => {
      clock.advance(1_000); // the history lists newest first, by time
      const t = Math.floor(clock.now() / 1000);
      const event = Buffer.from(JSON.stringify({ id: `evt_${Math.random()}`, type, created: t, data: { object } }));
      await stripe.handleWebhook(event, { 'stripe-signature': `t=${t},v1=${sign(t, event)}` });
    };
    await deliver('checkout.session.completed', session);
    expect(await world.balances.get(account.id)).toBe(2_000_000);
    const refund = (id: string, status: string, amount = 100, over: object = {}) => ({ id, object: 'refund', amount, currency: 'usd', payment_intent: 'pi_1', charge: 'ch_1', status, ...over });
    const dispute = (id: string, amount = 100) => ({ id, object: 'dispute', amount, currency: 'usd', payment_intent: 'pi_1', charge: 'ch_1', status: 'needs_response' });
    const history = async () => (await accounts.topUpHistory(account.id, 20)).data.map((r) => [r.credits, r.reference]);
    const balance = () => world.balances.get(account.id);
    return { ...world, account, api, session, deliver, refund, dispute, history, balance };
  }

  it('a full refund takes every credit the payment bought, once, however many of its events arrive', async () => {
    const w = await paidWorld();
    await w.deliver('refund.created', w.refund('re_1', 'pending'));
    await w.deliver('refund.updated', w.refund('re_1', 'succeeded'));
    await w.deliver('charge.refund.updated', w.refund('re_1', 'succeeded'));
    await w.deliver('refund.created', w.refund('re_1', 'pending'));
    expect(await w.balance()).toBe(0);
    expect(await w.history()).toEqual([[-2_000_000, 'refund:re_1'], [2_000_000, 'cs_1']]);
    expect(w.api.calls[0]).toBe('GET https://api.stripe.test/v1/checkout/sessions?payment_intent=pi_1&limit=1 Bearer sk_test');
  });

  it('partial refunds take their share, rounded down, and the credits already spent leave the balance below zero', async () => {
    const w = await paidWorld();
    await w.deliver('refund.created', w.refund('re_1', 'succeeded', 33));
    expect(await w.balance()).toBe(2_000_000 - 660_000);
    // The customer spends what is left, then gets the rest refunded: the balance owes it.
    await w.balances.add(w.account.id, -(2_000_000 - 660_000));
    await w.deliver('refund.created', w.refund('re_2', 'succeeded', 67));
    expect(await w.balance()).toBe(-1_340_000);
  });

  it('a refund that fails gives its credits back once; one that fails before its creation was delivered takes and gives nothing', async () => {
    const w = await paidWorld();
    await w.deliver('refund.created', w.refund('re_1', 'pending'));
    await w.deliver('refund.failed', w.refund('re_1', 'failed'));
    await w.deliver('refund.updated', w.refund('re_1', 'failed'));
    await w.deliver('refund.created', w.refund('re_1', 'pending'));
    expect(await w.balance()).toBe(2_000_000);
    expect(await w.history()).toEqual([[2_000_000, 'refund:re_1:back'], [-2_000_000, 'refund:re_1'], [2_000_000, 'cs_1']]);
    // The failure delivered first (the creation's delivery lost, or late): nothing to give back,
    // and the creation arriving after takes nothing.
    await w.deliver('refund.failed', w.refund('re_2', 'canceled'));
    await w.deliver('refund.created', w.refund('re_2', 'pending'));
    expect(await w.balance()).toBe(2_000_000);
    expect(await w.history()).toHaveLength(3);
  });

  it("a dispute's withdrawal takes the credits, its reinstatement (a dispute won) gives them back", async () => {
    const w = await paidWorld();
    // A dispute's amount may include fees above the payment: never more than it bought.
    await w.deliver('charge.dispute.funds_withdrawn', w.dispute('dp_1', 1_600));
    await w.deliver('charge.dispute.funds_withdrawn', w.dispute('dp_1', 1_600));
    expect(await w.balance()).toBe(0);
    await w.deliver('charge.dispute.funds_reinstated', w.dispute('dp_1', 1_600));
    await w.deliver('charge.dispute.funds_reinstated', w.dispute('dp_1', 1_600));
    expect(await w.balance()).toBe(2_000_000);
    // An inquiry, or a dispute merely opened, moves no money: nothing happens.
    await w.deliver('charge.dispute.created', w.dispute('dp_2'));
    expect(await w.balance()).toBe(2_000_000);
  });

  it('a take whose hold lapses after a failure was applied over it gives nothing back twice: the failure waits for the take to be settled', async () => {
    const w = await paidWorld();
    // The take is reserved, then its process pauses past the hold's minute; meanwhile the
    // refund's failure arrives (and is redelivered, as Stripe sends refund.failed, refund.updated
    // and charge.refund.updated for one failure).
    const settle = w.counters.settle.bind(w.counters);
    let failures: Array<PromiseSettledResult<void>> = [];
    w.counters.settle = async (id: string, actual: number) => {
      if (id.endsWith(':take') && failures.length === 0) {
        failures = await Promise.allSettled([w.deliver('refund.failed', w.refund('re_1', 'failed'))]);
        w.clock.advance(61_000);
        await w.counters.sweep(w.clock.now());
      }
      return settle(id, actual);
    };
    await expect(w.deliver('refund.created', w.refund('re_1', 'pending'))).rejects.toMatchObject({ code: 'limiter_unavailable' });
    // Told to come again while the take was unsettled: nothing given back over a take that may lapse.
    expect(failures[0]).toMatchObject({ status: 'rejected', reason: { code: 'limiter_unavailable' } });
    for (const type of ['refund.failed', 'refund.updated', 'charge.refund.updated']) await w.deliver(type, w.refund('re_1', 'failed'));
    await w.deliver('refund.created', w.refund('re_1', 'pending'));
    expect(await w.balance()).toBe(2_000_000);
  });

  it('a refund of a paid session that was never credited (paid short of its price) takes nothing', async () => {
    const w = await paidWorld();
    // Listed by Stripe for pi_2, delivered completed, never credited: its total is short of its credits' price.
    const short = { ...w.session, id: 'cs_short', payment_intent: 'pi_2', amount_total: 50 };
    w.api.sessions.push(short);
    await w.deliver('checkout.session.completed', short);
    expect(await w.balance()).toBe(2_000_000);
    await w.deliver('refund.created', w.refund('re_1', 'succeeded', 50, { payment_intent: 'pi_2' }));
    await w.deliver('charge.dispute.funds_withdrawn', { ...w.dispute('dp_1', 50), payment_intent: 'pi_2' });
    expect(await w.balance()).toBe(2_000_000);
  });

  it('the same refund delivered at once many times takes its credits once', async () => {
    const w = await paidWorld();
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => w.deliver('refund.created', w.refund('re_1', 'succeeded', 50))));
    // A delivery that met another applying the same refund is told to come again (503).
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'limiter_unavailable' });
    await w.deliver('refund.created', w.refund('re_1', 'succeeded', 50));
    expect(await w.balance()).toBe(1_000_000);
  });

  it("ignores a payment that is not one of this gateway's, or whose currency differs, and tells Stripe to retry while its API is down", async () => {
    const w = await paidWorld();
    await w.deliver('refund.created', w.refund('re_1', 'succeeded', 100, { payment_intent: 'pi_unknown' }));
    await w.deliver('refund.created', w.refund('re_2', 'succeeded', 100, { currency: 'eur' }));
    w.api.sessions.push({ ...w.session, id: 'cs_2', payment_intent: 'pi_2', metadata: { ...w.session.metadata, tollgate: 'http://other.test' } });
    await w.deliver('refund.created', w.refund('re_3', 'succeeded', 100, { payment_intent: 'pi_2' }));
    // Not a refund object, a zero amount, an unknown status: not acted on.
    await w.deliver('refund.created', { ...w.refund('re_4', 'succeeded'), object: 'charge' });
    await w.deliver('refund.created', w.refund('re_5', 'succeeded', 0));
    await w.deliver('refund.updated', w.refund('re_6', 'mystery'));
    expect(await w.balance()).toBe(2_000_000);
    w.api.down = true;
    await expect(w.deliver('refund.created', w.refund('re_7', 'succeeded'))).rejects.toMatchObject({ code: 'upstream_unavailable' });
    expect(await w.balance()).toBe(2_000_000);
    w.api.down = false;
    await w.deliver('refund.created', w.refund('re_7', 'succeeded'));
    expect(await w.balance()).toBe(0);
  });
});
