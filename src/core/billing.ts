// The billing port of the web app's Billing page (SPEC §8). A provider either acts at once (the
// built-in `manual` provider) or hands back a URL of a hosted checkout and completes later through
// its signed webhook.
//
// The providers: ManualBilling below, StripeBilling in src/billing/stripe.ts; src/billing/registry.ts
// is the one list.
import { GatewayError } from '../errors/gateway-error.js';
import type { Clock } from '../lib/clock.js';
import type { CounterStore } from '../storage/counters.js';
import type { UpstreamClient } from '../upstream/types.js';
import type { AccountInfo, AccountService } from './accounts.js';

export interface BillingProvider {
  readonly id: string;
  /** Whether the Billing page offers a top-up (false: the operator adds credits). */
  readonly selfTopUp: boolean;
  /**
   * Whether adding a payment method goes through the provider's hosted page, where the user can
   * still back out; false: it is recorded at once (the Billing page asks first).
   */
  readonly hostedCheckout: boolean;
  /** Records a payment method now (`{ account }`), or sends the user to a hosted page. */
  addPaymentMethod(account: AccountInfo): Promise<{ account: AccountInfo } | { redirectUrl: string }>;
  /** Adds `credits` to the prepaid balance now (`{ balance }`), or sends the user to pay first. */
  topUp(account: AccountInfo, credits: number): Promise<{ balance: number } | { redirectUrl: string }>;
  /** Completes hosted flows; must verify the request's signature before trusting anything in it. */
  handleWebhook?(rawBody: Buffer, headers: Record<string, string | string[] | undefined>): Promise<void>;
}

export interface BillingDeps {
  accounts: AccountService;
  /** Where a hosted provider's webhook remembers the events it processed (once per event id). */
  counters: CounterStore;
  clock: Clock;
  /** The gateway's public URL (SPEC §10): hosted pages send the user back to its /app/billing. */
  publicUrl: string;
  /** credits.perUsd: what a top-up of N credits costs. */
  creditsPerUsd: number;
  /** The gateway's HTTP client (pooling, timeouts, transport errors), for a hosted provider's API. */
  upstream: UpstreamClient;
}

/**
 * No payment processor: "add payment method" is recorded as given (free → paid); credits are added
 * by the operator (admin API, CLI) — or, with `billing.selfTopUp`, by users themselves from the
 * Billing page, for deployments whose users are trusted (internal teams, demos): then anyone signed
 * in can give themselves credits, which is why it is off by default.
 */
export class ManualBilling implements BillingProvider {
  readonly id = 'manual';
  readonly hostedCheckout = false;

  constructor(
    private readonly accounts: AccountService,
    readonly selfTopUp: boolean,
  ) {}

  async addPaymentMethod(account: AccountInfo): Promise<{ account: AccountInfo }> {
    return { account: await this.accounts.update(account.id, { paymentMethod: true }) };
  }

  async topUp(account: AccountInfo, credits: number): Promise<{ balance: number }> {
    if (!this.selfTopUp) throw new GatewayError('top_up_not_offered');
    return { balance: (await this.accounts.addCredits(account.id, credits, 'billing')).balance };
  }
}
