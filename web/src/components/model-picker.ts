import { html } from 'htm/preact';
import type { Model, ModelType } from '../types';

const GROUPS: { type: ModelType; label: string }[] = [
  { type: 'chat', label: 'Chat' },
  { type: 'image', label: 'Image' },
  { type: 'embedding', label: 'Embedding' },
];

export function optionLabel(m: Model): string {
  return m.id + (m.pro ? ' — Pro' : '') + (m.available === false ? ' (unavailable)' : '');
}

export function ModelPicker({ models, value, onChange }: { models: Model[]; value: string; onChange: (id: string) => void }) {
  const selected = models.find((m) => m.id === value);
  return html`
    <div class="field model-picker">
      <label for="model-select">Model</label>
      <div class="picker-row">
        <select
          id="model-select"
          data-testid="model-select"
          value=${value}
          onChange=${(e: Event) => onChange((e.currentTarget as HTMLSelectElement).value)}
        >
          ${GROUPS.map(({ type, label }) => {
            const group = models.filter((m) => m.type === type);
            return group.length === 0
              ? null
              : html`<optgroup key=${type} label=${label}>
                  ${group.map((m) => html`<option key=${m.id} value=${m.id}>${optionLabel(m)}</option>`)}
                </optgroup>`;
          })}
        </select>
        ${selected && html`<span class="badge badge-kind">${selected.type}</span>`}
        ${selected?.pro && html`<span class="badge badge-pro" title="Pro model: not counted toward the daily Playground requests">Pro</span>`}
      </div>
      ${selected?.available === false &&
      html`<p class="hint" data-testid="unavailable-hint">${selected.unavailable === 'plan'
        ? "Your plan does not reach this model here (its limits or the cost of this model's smallest request rule it out); requests will be refused."
        : "This model's provider is not configured on this gateway; requests will be refused."}</p>`}
    </div>
  `;
}
