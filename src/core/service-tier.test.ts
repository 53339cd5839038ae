import { describe, expect, it } from 'vitest';
import type { ChatModelConfig } from '../config/schema.js';
import { GatewayError } from '../errors/gateway-error.js';
import { checkServiceTier } from './service-tier.js';

const model = { id: 'm', serviceTiers: ['auto', 'default', 'flex'] } as unknown as ChatModelConfig;

function refusal(body: Record<string, unknown>, m = model): GatewayError {
  try {
    checkServiceTier(m, body);
  } catch (err) {
    return err as GatewayError;
  }
  throw new Error('not refused');
}

describe('checkServiceTier', () => {
  it('passes an absent or null tier, and a listed one', () => {
    for (const body of [{}, { service_tier: null }, { service_tier: 'auto' }, { service_tier: 'flex' }]) expect(() => checkServiceTier(model, body)).not.toThrow();
  });

  it('refuses an unlisted tier, a non-string and a case variant, naming the field and what is allowed', () => {
    for (const tier of ['priority', 'PRIORITY', 5, ['flex'], '']) {
      const err = refusal({ service_tier: tier });
      expect(err.code).toBe('invalid_request');
      expect(err.param).toBe('service_tier');
    }
    const detail = (body: Record<string, unknown>, m = model) => String(refusal(body, m).vars.detail);
    expect(detail({ service_tier: 'priority' })).toBe("service_tier: m is not served at 'priority' here; use one of 'auto', 'default', 'flex', or leave it out");
    expect(detail({ service_tier: 'x'.repeat(10_000) }).length).toBeLessThan(200);
    expect(detail({ service_tier: 'flex' }, { ...model, serviceTiers: [] })).toBe("service_tier: m is not served at 'flex' here; leave it out");
  });
});
