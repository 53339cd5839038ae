// A key's access: until when it works (401 api_key_expired after) and which models it may call
// (403 model_not_allowed_for_key for the others). Chosen when a key is made, changed in its row.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import type { ApiError } from '../api';
import { fmtDate } from '../format';
import { useKeyEditor } from './key-editor';
import type { ApiKey, Model } from '../types';

/** The lifetimes a key may be given here, in days (0: no expiry); the API takes any instant. */
export const LIFETIMES: Array<[days: number, label: string]> = [[0, 'Never'], [7, 'In 7 days'], [30, 'In 30 days'], [90, 'In 90 days'], [365, 'In a year']];

/** The expiry `days` from now, as the API takes it (null: never). */
export const expiryIn = (days: number): string | null => (days > 0 ? new Date(Date.now() + days * 86_400_000).toISOString() : null);

/** Whether a key is past its expiry: its requests get 401 api_key_expired. */
export const expired = (k: Pick<ApiKey, 'expiresAt'>) => k.expiresAt !== null && Date.parse(k.expiresAt) <= Date.now();

/** Checkboxes of the catalog's models; none ticked means every model. */
export function ModelChecklist({ models, chosen, onChange, idPrefix }: { models: Array<Pick<Model, 'id'>>; chosen: string[]; onChange: (ids: string[]) => void; idPrefix: string }) {
  return html`<fieldset class="model-checklist">
    <legend class="hint">The key may call only the models ticked here (none ticked: every model your plan allows).</legend>
    ${models.map(
      (m) => html`<label class="check" for=${`${idPrefix}-${m.id}`}><input type="checkbox" id=${`${idPrefix}-${m.id}`} data-testid="key-model" value=${m.id}
        checked=${chosen.includes(m.id)}
        onChange=${(e: Event) => {
          const on = (e.currentTarget as HTMLInputElement).checked;
          onChange(on ? [...chosen, m.id] : chosen.filter((id) => id !== m.id));
        }} /> ${m.id}</label>`,
    )}
  </fieldset>`;
}

/** A key's access as its row shows it, and its editor (a revoked key has none). */
export function AccessCell({ k, models, onSaved, onError }: { k: ApiKey; models: Model[]; onSaved: () => Promise<void>; onError: (e: ApiError) => void }) {
  const { editing, setEditing, busy, field, edit, save: patch } = useKeyEditor<HTMLSelectElement>(k.id, onSaved, onError);
  /** -1: keep the expiry the key has; else days from now (0: never). */
  const [lifetime, setLifetime] = useState(-1);
  const [chosen, setChosen] = useState<string[]>([]);

  /** Opens the editor on the key's access as it stands (not what an edit left unsaved). */
  const open = () => {
    setLifetime(-1);
    setChosen(k.models ?? []);
    setEditing(true);
  };

  // Only what changed is sent: the key's models as they stand may include one the operator has
  // since removed from the catalog, which a PATCH naming it is refused for (400), so a change of
  // expiry alone failed. Nothing changed: the editor just closes (an empty PATCH is a 400 too).
  const save = async () => {
    const models = chosen.length > 0 ? chosen : null;
    const same = models === null ? k.models === null : k.models !== null && models.length === k.models.length && models.every((id) => k.models!.includes(id));
    const change = { ...(!same && { models }), ...(lifetime >= 0 && { expiresAt: expiryIn(lifetime) }) };
    if (Object.keys(change).length === 0) setEditing(false);
    else await patch(change);
  };
  /** The catalog's models, then any the key has that it no longer lists, so they can be unticked. */
  const listed = [...models, ...(k.models ?? []).filter((id) => !models.some((m) => m.id === id)).map((id) => ({ id }))];

  const label = k.name || k.prefix;
  if (!editing) {
    return html`<div data-testid="key-access">
        <div data-testid="key-only">${k.models ? html`Only ${k.models.map((id, i) => html`${i > 0 ? ', ' : ''}<span class="nowrap">${id}</span>`)}` : 'Every model'}</div>
        <div class="small muted" data-testid="key-expiry" title=${fmtDate(k.expiresAt, '')}>${k.expiresAt === null
          ? 'No expiry'
          : `${expired(k) ? 'Expired' : 'Until'} ${fmtDate(k.expiresAt, '', false)}`}</div>
      </div>
      ${!k.revokedAt &&
      html`<button type="button" class="btn btn-quiet btn-small" data-testid="edit-access" ref=${edit} onClick=${open}
        aria-label=${`Change the expiry and models of key ${label}`}>Change</button>`}`;
  }
  return html`<form class="access-form" data-testid="access-form" onKeyDown=${(e: KeyboardEvent) => e.key === 'Escape' && setEditing(false)} onSubmit=${(e: Event) => {
    e.preventDefault();
    void save();
  }}>
    <div class="field">
      <label for=${`access-expires-${k.id}`}>Expires</label>
      <select id=${`access-expires-${k.id}`} data-testid="access-expires" ref=${field} value=${lifetime}
        onChange=${(e: Event) => setLifetime(Number((e.currentTarget as HTMLSelectElement).value))}>
        <option value="-1">${k.expiresAt === null ? 'Never (as now)' : `${expired(k) ? 'Expired' : 'Until'} ${fmtDate(k.expiresAt, '', false)} (as now)`}</option>
        ${LIFETIMES.map(([days, text]) => html`<option value=${days}>${text}</option>`)}
      </select>
    </div>
    ${models.length > 0 && html`<${ModelChecklist} models=${listed} chosen=${chosen} onChange=${setChosen} idPrefix=${`access-model-${k.id}`} />`}
    <div class="access-actions">
      <button type="submit" class="btn btn-primary btn-small" data-testid="save-access" disabled=${busy}>Save</button>
      <button type="button" class="btn btn-quiet btn-small" onClick=${() => setEditing(false)}>Cancel</button>
    </div>
  </form>`;
}
