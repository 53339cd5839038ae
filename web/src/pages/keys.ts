import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, toApiError } from '../api';
import { ErrorBox } from '../components/error-box';
import { focusFirst, useRefocusWhen } from '../focus';
import { fmt, fmtDate } from '../format';
import type { ApiKey, KeyLimit, Model, NewKey } from '../types';
import { AccessCell, LIFETIMES, ModelChecklist, expired, expiryIn } from '../components/key-access';
import { useKeyEditor } from '../components/key-editor';

const PER: Record<KeyLimit['window'], string> = { day: 'per day', month: 'per month', lifetime: 'in all' };
const WINDOWS = Object.keys(PER) as KeyLimit['window'][];

/**
 * A key's own credit limit, and its editor: what one app, teammate or script may spend, within
 * the plan's limits, which still bind every key of the account. Windows are UTC days and months.
 */
function LimitCell({ k, onSaved, onError }: { k: ApiKey; onSaved: () => Promise<void>; onError: (e: ApiError) => void }) {
  const { editing, setEditing, busy, field, edit, save: patch } = useKeyEditor<HTMLInputElement>(k.id, onSaved, onError);
  const [credits, setCredits] = useState(k.limit ? String(k.limit.credits) : '');
  const [per, setPer] = useState<KeyLimit['window']>(k.limit?.window ?? 'day');

  /** Opens the editor on the key's limit as it stands (not what an edit left unsaved). */
  const open = () => {
    setCredits(k.limit ? String(k.limit.credits) : '');
    setPer(k.limit?.window ?? 'day');
    setEditing(true);
  };

  const save = (limit: KeyLimit | null) => patch({ limit });

  if (!editing) {
    return html`<span data-testid="key-limit">${k.limit
      ? `${fmt(k.limit.credits)} ${PER[k.limit.window]}${k.limitUsed !== undefined ? ` · ${fmt(k.limitUsed)} used` : ''}`
      : html`<span class="muted">None</span>`}</span>
      ${!k.revokedAt &&
      html` <button type="button" class="btn btn-quiet btn-small" data-testid="edit-limit" ref=${edit} onClick=${open}
        aria-label=${`Set the credit limit of key ${k.name || k.prefix}`}>${k.limit ? 'Change' : 'Set'}</button>`}`;
  }
  return html`<form class="limit-form" data-testid="limit-form" onKeyDown=${(e: KeyboardEvent) => e.key === 'Escape' && setEditing(false)} onSubmit=${(e: Event) => {
    e.preventDefault();
    void save({ credits: Number(credits), window: per });
  }}>
    <label class="sr-only" for=${`limit-${k.id}`}>Credits</label>
    <input id=${`limit-${k.id}`} data-testid="limit-credits" ref=${field} type="number" min="1" max="1000000000000000" step="1" required
      value=${credits} onInput=${(e: Event) => setCredits((e.currentTarget as HTMLInputElement).value)} />
    <label class="sr-only" for=${`limit-window-${k.id}`}>Per</label>
    <select id=${`limit-window-${k.id}`} data-testid="limit-window" value=${per} onChange=${(e: Event) => setPer((e.currentTarget as HTMLSelectElement).value as KeyLimit['window'])}>
      ${WINDOWS.map((w) => html`<option value=${w}>${PER[w]}</option>`)}
    </select>
    <button type="submit" class="btn btn-primary btn-small" data-testid="save-limit" disabled=${busy}>Save</button>
    ${k.limit && html`<button type="button" class="btn btn-quiet btn-small" data-testid="remove-limit" disabled=${busy} onClick=${() => save(null)}>Remove</button>`}
    <button type="button" class="btn btn-quiet btn-small" onClick=${() => setEditing(false)}>Cancel</button>
  </form>`;
}

interface KeyTableProps {
  caption: string;
  keys: ApiKey[];
  models: Model[];
  table?: { current: HTMLTableElement | null };
  load: () => Promise<void>;
  setError: (e: ApiError | null) => void;
  revoke: (key: ApiKey, button: HTMLButtonElement) => Promise<void>;
  /** The keys whose revocation is on its way. */
  revoking: ReadonlySet<string>;
}

function KeyTable({ caption, keys, models, table, load, setError, revoke, revoking }: KeyTableProps) {
  return html`<div class="table-scroll"><table class="keys-table stack-table" ref=${table}>
    <caption class="sr-only">${caption}</caption>
    <thead><tr><th scope="col">Prefix</th><th scope="col">Name</th><th scope="col">Last used</th><th scope="col">Credit limit</th><th scope="col">Access</th><th scope="col">Status</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
    <tbody>
      ${keys.map(
        (k) => html`<tr key=${k.id} data-testid="key-row" data-key-id=${k.id} class=${k.revokedAt ? 'revoked' : ''}>
          <td data-label="Prefix"><code>${k.prefix.endsWith('…') ? k.prefix : `${k.prefix}…`}</code></td>
          <td class="name-cell" data-label="Name">${k.name || html`<span class="muted">unnamed</span>`}
            <div class="small muted" title=${fmtDate(k.createdAt)}>created ${fmtDate(k.createdAt, '—', false)}</div></td>
          <td data-label="Last used">${fmtDate(k.lastUsedAt, 'Never')}</td>
          <td data-label="Credit limit"><${LimitCell} k=${k} onSaved=${load} onError=${setError} /></td>
          <td class="access-cell" data-label="Access"><${AccessCell} k=${k} models=${models} onSaved=${load} onError=${setError} /></td>
          <td data-testid="key-status" data-label="Status">${k.revokedAt
            ? html`<span class="status status-bad" title=${fmtDate(k.revokedAt)}>Revoked</span>`
            : expired(k)
              ? html`<span class="status status-bad" title=${fmtDate(k.expiresAt)}>Expired</span>`
              : html`<span class="status status-ok">Active</span>`}</td>
          <td class="actions">${!k.revokedAt &&
          // aria-disabled, not disabled: a disabled button loses the keyboard focus, which the
          // revocation moves on to the next key's button once it is done.
          html`<button type="button" class="btn btn-danger btn-small" data-testid="revoke" onClick=${(e: Event) => revoke(k, e.currentTarget as HTMLButtonElement)}
            aria-disabled=${revoking.has(k.id) ? 'true' : undefined} aria-label=${`Revoke key ${k.name || k.prefix}`}>${revoking.has(k.id) ? 'Revoking…' : 'Revoke'}</button>`}</td>
        </tr>`,
      )}
    </tbody>
  </table></div>`;
}

function SecretBox({ secret, onDismiss }: { secret: NewKey; onDismiss: () => void }) {
  const [copied, setCopied] = useState<'' | 'copied' | 'selected'>('');
  const code = useRef<HTMLElement>(null);
  const heading = useRef<HTMLHeadingElement>(null);

  // Shown once: take the focus to each new key, so a keyboard or screen-reader user lands on it
  // (Create key was disabled while it was made, which dropped the focus).
  useEffect(() => heading.current?.focus(), [secret.id]);

  const selectText = () => {
    const el = code.current;
    const sel = window.getSelection();
    if (!el || !sel) return;
    const range = document.createRange();
    range.selectNodeContents(el);
    sel.removeAllRanges();
    sel.addRange(range);
  };

  const copy = async () => {
    try {
      if (!navigator.clipboard) throw new Error('no clipboard');
      await navigator.clipboard.writeText(secret.key);
      setCopied('copied');
    } catch {
      selectText();
      let ok = false;
      try {
        ok = document.execCommand('copy');
      } catch {
        ok = false;
      }
      setCopied(ok ? 'copied' : 'selected');
    }
  };

  return html`
    <div class="card secret-box" role="region" aria-label="Your new API key">
      <h2 tabindex="-1" ref=${heading}>Key “${secret.name}” created</h2>
      <p class="warning"><strong>Copy it now:</strong> this secret will not be shown again. Store it somewhere safe.</p>
      <div class="secret-row">
        <code class="secret" data-testid="new-secret" ref=${code} tabindex="0" onFocus=${selectText}>${secret.key}</code>
        <button type="button" class="btn btn-primary" data-testid="copy-secret" onClick=${copy}>Copy</button>
      </div>
      <p class="small" role="status">
        ${copied === 'copied' ? 'Copied to the clipboard.' : copied === 'selected' ? 'Selected: press Ctrl+C (⌘C) to copy.' : ''}
      </p>
      <button type="button" class="btn btn-quiet" onClick=${onDismiss}>I have saved it</button>
    </div>
  `;
}

/** `creation`: whether this account may make its own keys (false: the operator makes them). */
export function KeysPage({ creation }: { creation: boolean }) {
  const [keys, setKeys] = useState<ApiKey[] | null>(null);
  const [name, setName] = useState('');
  const [lifetime, setLifetime] = useState(0);
  const [models, setModels] = useState<Model[]>([]);
  /** The models ticked under "Only some models"; none ticked: every model. */
  const [only, setOnly] = useState<string[]>([]);
  const [secret, setSecret] = useState<NewKey | null>(null);
  const [revoking, setRevoking] = useState<ReadonlySet<string>>(new Set());
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const nameField = useRef<HTMLInputElement>(null);
  const table = useRef<HTMLTableElement>(null);

  // Create key is disabled while a key is made: if it failed, the focus goes back to it.
  useRefocusWhen(!busy, () => nameField.current);

  const load = async () => {
    try {
      const { data } = await api<{ data: ApiKey[] }>('GET', '/keys');
      setKeys(data);
    } catch (e) {
      setError(toApiError(e));
    }
  };

  useEffect(() => {
    void load();
    // For the models a key may call; without the list, keys are made and kept for every model.
    api<{ data: Model[] }>('GET', '/models').then(({ data }) => setModels(data), () => setModels([]));
  }, []);

  const create = async (e: Event) => {
    e.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(null);
    try {
      const created = await api<NewKey>('POST', '/keys', {
        name: name.trim(),
        ...(lifetime > 0 && { expiresAt: expiryIn(lifetime) }),
        ...(only.length > 0 && { models: only }),
      });
      setSecret(created);
      setName('');
      setLifetime(0);
      setOnly([]);
      await load();
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  };

  const revoke = async (key: ApiKey, button: HTMLButtonElement) => {
    // A second click while the first is on its way (a slow network) asked again and sent a second DELETE.
    if (revoking.has(key.id)) return;
    if (!confirm(`Revoke the key “${key.name || key.prefix}”? Requests using it will be refused at once. This cannot be undone.`)) return;
    setError(null);
    setRevoking((r) => new Set(r).add(key.id));
    try {
      await api('DELETE', `/keys/${encodeURIComponent(key.id)}`);
      // Its secret, if still shown, is now of a dead key: copying it would hand on something useless.
      setSecret((s) => (s?.id === key.id ? null : s));
      // Its Revoke button goes with the reload: move on to the next key's (revoking several in a
      // row), else the previous one's, else the name field.
      const buttons = [...(table.current?.querySelectorAll<HTMLButtonElement>('[data-testid="revoke"]') ?? [])];
      const at = buttons.indexOf(button);
      if (document.activeElement === button) focusFirst(buttons[at + 1] ?? buttons[at - 1], nameField.current);
      await load();
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setRevoking((r) => {
        const next = new Set(r);
        next.delete(key.id);
        return next;
      });
    }
  };

  const dismissSecret = () => {
    // Its button goes with it: back to the name field, for the next key.
    focusFirst(nameField.current);
    setSecret(null);
  };

  // Revoked keys are kept for the record (usage rows name them) but folded away: a developer who
  // rotates keys often would otherwise scroll past dozens of dead ones to reach the live ones.
  const active = keys?.filter((k) => !k.revokedAt) ?? [];
  const revoked = keys?.filter((k) => k.revokedAt) ?? [];

  return html`
    <section class="page">
      <div class="page-head">
        <h1 tabindex="-1">API keys</h1>
        <p class="muted">Use a key as <code>Authorization: Bearer tg-…</code> with any OpenAI SDK, base URL <code>${location.origin}/v1</code>.</p>
      </div>

      ${creation
        ? html`<form class="card inline-form key-form" onSubmit=${create}>
        <div class="field grow">
          <label for="key-name">Key name</label>
          <input id="key-name" data-testid="key-name" ref=${nameField} type="text" required maxLength="100" placeholder="e.g. laptop, CI"
            pattern=".*\\S.*" title="Name the key: where it will be used."
            value=${name} onInput=${(e: Event) => setName((e.currentTarget as HTMLInputElement).value)} />
        </div>
        <div class="field">
          <label for="key-expires">Expires</label>
          <select id="key-expires" data-testid="key-expires" value=${lifetime} onChange=${(e: Event) => setLifetime(Number((e.currentTarget as HTMLSelectElement).value))}>
            ${LIFETIMES.map(([days, label]) => html`<option value=${days}>${label}</option>`)}
          </select>
        </div>
        <button type="submit" class="btn btn-primary" data-testid="create-key" disabled=${busy}>${busy ? 'Creating…' : 'Create key'}</button>
        ${models.length > 0 &&
        html`<details class="key-models" data-testid="key-models">
          <summary>${only.length === 0 ? 'Every model' : `Only ${only.length} model${only.length === 1 ? '' : 's'}`}</summary>
          <${ModelChecklist} models=${models} chosen=${only} onChange=${setOnly} idPrefix="key-model" />
        </details>`}
      </form>`
        : html`<p class="card muted" data-testid="keys-by-operator">API keys on this service are created by its operator: ask them for one.</p>`}

      ${secret && html`<${SecretBox} secret=${secret} onDismiss=${dismissSecret} />`}
      <${ErrorBox} error=${error} billingLink=${false} />

      <div class="card table-card">
        ${keys === null
          ? error
            ? // The list could not be read (the gateway unreachable, restarting): "Loading keys…" stayed
              // beside the error for good, and only leaving the page read it again.
              html`<p class="muted">Your keys could not be loaded.${' '}<button type="button" class="btn btn-quiet btn-small" data-testid="keys-retry" onClick=${() => {
                setError(null);
                void load();
              }}>Try again</button></p>`
            : html`<p class="muted" role="status">Loading keys…</p>`
          : active.length === 0
            ? html`<p class="muted" data-testid="no-keys">${revoked.length > 0 ? 'No active keys.' : 'No keys yet.'}${creation ? ' Create one above.' : ''}</p>`
            : html`<${KeyTable} caption="Your API keys" keys=${active} models=${models} table=${table} load=${load} setError=${setError} revoke=${revoke} revoking=${revoking} />`}
      </div>
      ${revoked.length > 0 &&
      html`<details class="card table-card revoked-keys" data-testid="revoked-keys">
        <summary>Revoked keys (${revoked.length})</summary>
        <${KeyTable} caption="Revoked API keys" keys=${revoked} models=${models} load=${load} setError=${setError} revoke=${revoke} revoking=${revoking} />
      </details>`}
    </section>
  `;
}
