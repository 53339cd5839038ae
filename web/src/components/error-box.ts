import { html } from 'htm/preact';
import type { ApiError } from '../api';
import { fmt } from '../format';

/**
 * Refusals a paid plan or a top-up can lift (docs/errors.md): only these point at Billing, and only
 * when the gateway's plan made them (the error names its rule). A bad request, an unknown model or
 * a provider's failure is not the account's to pay its way out of — nor a provider's own rate limit,
 * which passes through as OpenAI's `rate_limit_exceeded`, the code of a plan's rate rule.
 */
const LIFTED_BY_BILLING = new Set([
  'resource_exhausted',
  'requests_per_day_exceeded',
  'rate_limit_exceeded',
  'concurrency_limit',
  'insufficient_balance',
  'request_cost_exceeded',
  'model_not_in_plan',
  'image_input_not_allowed',
  'too_many_images',
  'image_size_not_allowed',
  'max_output_tokens_exceeded',
]);

/** A refusal, shown as the gateway's message (never a raw body), with a way forward when Billing is one. */
export function ErrorBox({ error, billingLink = true }: { error: ApiError | null; billingLink?: boolean }) {
  if (!error) return null;
  return html`
    <div class="error-box" role="alert" data-testid="error-message" data-code=${error.code}>
      <p class="error-text">${error.message}</p>
      ${error.credits !== undefined &&
      error.credits.left > 0 &&
      error.credits.cost > error.credits.left &&
      html`<p data-testid="error-too-big">This request could cost up to ${fmt(error.credits.cost)} credits (its prompt and the longest answer it
        asks for), more than the ${fmt(error.credits.left)} left: ask for a shorter answer, or a smaller image, to fit.</p>`}
      ${billingLink &&
      error.rule !== undefined &&
      LIFTED_BY_BILLING.has(error.code) &&
      html`<p class="error-actions">
        <a href="/app/billing">Go to Billing</a> to add a payment method or top up your balance.
      </p>`}
      ${error.requestId && html`<p class="muted small">Request id: <code>${error.requestId}</code></p>`}
    </div>
  `;
}
