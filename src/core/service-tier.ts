// A chat request's `service_tier` against the tiers its model's price is for (catalog `serviceTiers`).
import type { ChatModelConfig } from '../config/schema.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { JsonObject } from './types.js';

/**
 * Refuses a `service_tier` the model is not priced for. Passed through, OpenAI's `priority` was
 * billed at its own rate, about 1.75× the standard one that was reserved and charged
 * (https://openai.com/api-priority-processing/): any key could spend the operator's money past
 * what its plan paid for, a free key included.
 */
export function checkServiceTier(model: ChatModelConfig, body: JsonObject): void {
  const tier = body.service_tier;
  if (tier === undefined || tier === null) return;
  if (typeof tier === 'string' && model.serviceTiers.includes(tier)) return;
  const named = typeof tier === 'string' ? `'${tier.slice(0, 64)}'` : 'a value that is not a string';
  const allowed = model.serviceTiers.length > 0 ? `use one of ${model.serviceTiers.map((s) => `'${s}'`).join(', ')}, or leave it out` : 'leave it out';
  throw new GatewayError('invalid_request', {
    vars: { detail: `service_tier: ${model.id} is not served at ${named} here; ${allowed}` },
    param: 'service_tier',
  });
}
