// The billing port of the web app's Billing page (SPEC §8). A provider either acts at once (the
// built-in `manual` provider) or hands back a URL of a hosted checkout and completes later through
// its signed webhook.
//
// How a Stripe provider drops in (no code here depends on Stripe):
// - addPaymentMethod: create a Checkout Session in `setup` mode for the account's Stripe customer
//   (https://docs.stripe.com/api/checkout/sessions/create) with `client_reference_id` = account id
//   and success/cancel URLs under `<publicUrl>/app/billing`; return `{ redirectUrl: session.url }`.
// - topUp: a Checkout Session in `payment` mode for the credits' price, `metadata.credits` set;
//   return `{ redirectUrl }`. Nothing is credited yet.
// - handleWebhook(rawBody, headers): verify the `Stripe-Signature` header against the endpoint
//   secret over the RAW body (HMAC-SHA256 of `t.rawBody`, timestamp within tolerance —
//   https://docs.stripe.com/webhooks#verify-events; reject otherwise), then on
//   `checkout.session.completed` call AccountService.update(id, { paymentMethod: true }) for setup
//   sessions or AccountService.addCredits(id, credits) for payment ones — idempotently, keyed by the
//   event id, because Stripe delivers at least once.
// - Register it in `billingProviders` below and add its id to the `billing.provider` enum in
//   config/schema.ts (with its secrets as config keys), and mount `POST /app/api/billing/webhook`
//   (no session, no CSRF, the raw body kept for the signature) calling handleWebhook.
import type { Config } from '../config/schema.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { AccountInfo, AccountService } from './accounts.js';

export interface BillingProvider {
  readonly id: string;
  /** Whether the Billing page offers a top-up (false: the operator adds credits). */
  readonly selfTopUp: boolean;
  /** Records a payment method now (`{ account }`), or sends the user to a hosted page. */
  addPaymentMethod(account: AccountInfo): Promise<{ account: AccountInfo } | { redirectUrl: string }>;
  /** Adds `credits` to the prepaid balance now (`{ balance }`), or sends the user to pay first. */
  topUp(account: AccountInfo, credits: number): Promise<{ balance: number } | { redirectUrl: string }>;
  /** Completes hosted flows; must verify the request's signature before trusting anything in it. */
  handleWebhook?(rawBody: Buffer, headers: Record<string, string | string[] | undefined>): Promise<void>;
}

export interface BillingDeps {
  accounts: AccountService;
}

/**
 * No payment processor: "add payment method" is recorded as given (free → paid); credits are added
 * by the operator (admin API, CLI) — or, with `billing.selfTopUp`, by users themselves from the
 * Billing page, for deployments whose users are trusted (internal teams, demos): then anyone signed
 * in can give themselves credits, which is why it is off by default.
 */
export class ManualBilling implements BillingProvider {
  readonly id = 'manual';

  constructor(
    private readonly accounts: AccountService,
    readonly selfTopUp: boolean,
  ) {}

  async addPaymentMethod(account: AccountInfo): Promise<{ account: AccountInfo }> {
    return { account: await this.accounts.update(account.id, { paymentMethod: true }) };
  }

  async topUp(account: AccountInfo, credits: number): Promise<{ balance: number }> {
    if (!this.selfTopUp) throw new GatewayError('top_up_not_offered');
    return { balance: (await this.accounts.addCredits(account.id, credits)).balance };
  }
}

/** The one list of billing providers, by the id `billing.provider` names. */
export const billingProviders: Record<Config['billing']['provider'], (config: Config['billing'], deps: BillingDeps) => BillingProvider> = {
  manual: (config, deps) => new ManualBilling(deps.accounts, config.selfTopUp),
};

export function createBillingProvider(config: Config['billing'], deps: BillingDeps): BillingProvider {
  return billingProviders[config.provider](config, deps);
}
