import { html } from 'htm/preact';
import { useRef, useState } from 'preact/hooks';
import { ApiError, api, toApiError } from '../api';
import { ErrorBox } from '../components/error-box';
import { focusFirst } from '../focus';
import type { Account } from '../types';

/**
 * The signed-in account, and its password. A changed password ends every other session of the
 * account (a device signed in with the old one, perhaps someone else's); this browser stays in.
 */
export function AccountPage({ account }: { account: Account }) {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [notice, setNotice] = useState('');
  const currentField = useRef<HTMLInputElement>(null);

  const change = async (e: Event) => {
    e.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(null);
    setNotice('');
    try {
      await api('POST', '/password', { current, password: next });
      setCurrent('');
      setNext('');
      setNotice('Password changed. Every other device signed in to this account was signed out.');
    } catch (err) {
      const apiError = toApiError(err);
      setError(apiError);
      // A wrong current password: back to that field, to type it again.
      if (apiError.code === 'invalid_request') focusFirst(currentField.current);
    } finally {
      setBusy(false);
    }
  };

  return html`
    <section class="page">
      <div class="page-head">
        <h1 tabindex="-1">Account</h1>
        <p class="muted">Signed in as <strong class="account-email" data-testid="account-email">${account.email}</strong>, on the <strong>${account.plan}</strong> plan.</p>
      </div>
      <${ErrorBox} error=${error} billingLink=${false} />
      ${notice && html`<div class="notice" role="status" data-testid="password-changed">${notice}</div>`}
      <form class="card password-form" onSubmit=${change}>
        <h2>Change password</h2>
        <div class="field">
          <label for="current-password">Current password</label>
          <input id="current-password" data-testid="current-password" ref=${currentField} type="password" autocomplete="current-password" required maxLength="1024"
            value=${current} onInput=${(e: Event) => setCurrent((e.currentTarget as HTMLInputElement).value)} />
        </div>
        <div class="field">
          <label for="new-password">New password</label>
          <input id="new-password" data-testid="new-password" type="password" autocomplete="new-password" required minLength="8" maxLength="1024"
            aria-describedby="new-password-hint" value=${next} onInput=${(e: Event) => setNext((e.currentTarget as HTMLInputElement).value)} />
          <p class="hint" id="new-password-hint">At least 8 characters. Other devices signed in to this account are signed out.</p>
        </div>
        <button type="submit" class="btn btn-primary" data-testid="change-password" disabled=${busy}>${busy ? 'Changing…' : 'Change password'}</button>
      </form>
    </section>
  `;
}
