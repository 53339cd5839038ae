import { html } from 'htm/preact';
import type { ApiError } from '../api';

/** A refusal, shown as the gateway's message (never a raw body), with a way forward. */
export function ErrorBox({ error, billingLink = true }: { error: ApiError | null; billingLink?: boolean }) {
  if (!error) return null;
  return html`
    <div class="error-box" role="alert" data-testid="error-message" data-code=${error.code}>
      <p class="error-text">${error.message}</p>
      ${billingLink &&
      html`<p class="error-actions">
        <a href="/app/billing">Go to Billing</a> to add a payment method or top up your balance.
      </p>`}
      ${error.requestId && html`<p class="muted small">Request id: <code>${error.requestId}</code></p>`}
    </div>
  `;
}
