import { html } from 'htm/preact';
import { fmt } from '../format';
import type { Meter as MeterData, Model } from '../types';

function pct(used: number, limit: number): number {
  return limit > 0 ? Math.min(100, Math.max(0, (used / limit) * 100)) : 0;
}

function Bar({ used, limit, label }: { used: number; limit: number; label: string }) {
  const p = pct(used, limit);
  return html`<div class="bar" role="meter" aria-label=${label} aria-valuemin="0" aria-valuemax=${limit} aria-valuenow=${used}>
    <span class=${'bar-fill' + (p >= 90 ? ' bar-low' : '')} style=${{ width: `${p}%` }}></span>
  </div>`;
}

/** Today's credits left and this model's Playground requests left. */
export function Meter({ meter, model, error }: { meter: MeterData | null; model: Model | undefined; error: string | null }) {
  if (error) return html`<section class="meter card" aria-label="Today's limits"><p class="muted">Meter unavailable: ${error}</p></section>`;
  if (!meter) return html`<section class="meter card" aria-label="Today's limits"><p class="muted">Loading meter…</p></section>`;
  const { credits, requests } = meter;
  return html`
    <section class="meter card" aria-label="Today's limits">
      <div class="meter-item">
        <p data-testid="meter-credits">
          ${credits
            ? html`<strong>${fmt(credits.remaining)}</strong> credits left today of ${fmt(credits.limit)}`
            : html`Balance: <strong>${fmt(meter.balance)}</strong> credits (no daily credit cap on your plan)`}
        </p>
        ${credits && html`<${Bar} used=${credits.used} limit=${credits.limit} label="Credits used today" />`}
      </div>
      ${model &&
      html`<div class="meter-item">
        <p data-testid="meter-requests">
          ${requests
            ? html`<strong>${fmt(requests.remaining)}</strong> of ${fmt(requests.limit)} requests left today for ${model.id}`
            : model.pro && meter.limits.some((r) => r.measure === 'requests' && r.perModel && !r.pro)
              ? "Pro model: not counted toward the Playground's request limit"
              : `No daily request limit for ${model.id} on your plan`}
        </p>
        ${requests && html`<${Bar} used=${requests.used} limit=${requests.limit} label=${`Requests used today for ${model.id}`} />`}
      </div>`}
      <p class="muted small">Resets at midnight UTC.</p>
    </section>
  `;
}
