// The one list of billing providers, by the id `billing.provider` names (config/schema.ts).
import type { Config } from '../config/schema.js';
import { ManualBilling, type BillingDeps, type BillingProvider } from '../core/billing.js';
import { StripeBilling } from './stripe.js';

export const billingProviders: Record<Config['billing']['provider'], (config: Config['billing'], deps: BillingDeps) => BillingProvider> = {
  manual: (config, deps) => new ManualBilling(deps.accounts, config.selfTopUp),
  stripe: (config, deps) => new StripeBilling(config, deps),
};

export function createBillingProvider(config: Config['billing'], deps: BillingDeps): BillingProvider {
  return billingProviders[config.provider](config, deps);
}
