import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { verifyStripeSignature } from './stripe.js';

const secret = 'whsec_test_secret';
const body = Buffer.from('{"id":"evt_1","type":"checkout.session.completed"}');
const now = Date.UTC(2026, 11, 4, 12);
const sign = (t: number, payload = body, key = secret) => createHmac('sha256', key).update(`${t}.`).update(payload).digest('hex');

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
