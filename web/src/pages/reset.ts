// The page of a password reset link (`/app/reset#<token>`, made by the operator: docs/web-api.md).
// The token is in the fragment, which no browser sends: it is read here and the address bar is
// cleared of it, so it stays out of the history and of a shared screen.
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, toApiError } from '../api';
import { useRefocusWhen } from '../focus';
import type { Account } from '../types';

function takeToken(): string {
  const raw = location.hash.slice(1);
  let token = raw;
  try {
    token = decodeURIComponent(raw);
  } catch {
    // A link mangled on its way (a stray `%`): the gateway says it does not work, where a throw
    // here left a blank page.
  }
  if (token !== '') history.replaceState(null, '', location.pathname + location.search);
  return token;
}

export function ResetPage({ onSignedIn }: { onSignedIn: (a: Account) => Promise<void> }) {
  const [token, setToken] = useState(takeToken);
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  // A link opened where this page already is (the whole link pasted over a cut one, as the page
  // asks) changes only the fragment: the browser does not load the page again, so it is read here.
  useEffect(() => {
    const onHash = () => {
      const next = takeToken();
      if (next === '') return;
      setToken(next);
      setError(null);
    };
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
  const [busy, setBusy] = useState(false);
  const field = useRef<HTMLInputElement>(null);
  useRefocusWhen(!busy, () => field.current);

  const submit = async (e: Event) => {
    e.preventDefault();
    if (busy) return;
    setError(null);
    if (password.length < 8) {
      setError('Choose a password of at least 8 characters.');
      return;
    }
    setBusy(true);
    try {
      const { account } = await api<{ account: Account }>('POST', '/password/reset', { token, password });
      await onSignedIn(account);
    } catch (err) {
      const apiErr = toApiError(err);
      setError(apiErr.code === 'account_suspended' ? 'This account is suspended: contact the operator.' : apiErr.message);
      setBusy(false);
    }
  };

  if (token === '') {
    return html`<div class="card narrow auth">
      <p class="brand brand-lg">Tollgate</p>
      <h1 tabindex="-1">Set a new password</h1>
      <div class="error-box" role="alert" data-testid="reset-error">
        <p class="error-text">This page needs the whole link you were sent, the part after <code>#</code> included. Ask for a new link if it is lost.</p>
      </div>
      <p><a href="/app/signin">Sign in</a></p>
    </div>`;
  }

  return html`
    <div class="card narrow auth">
      <p class="brand brand-lg">Tollgate</p>
      <h1 tabindex="-1">Set a new password</h1>
      <p class="muted">The link works once. Every device signed in to the account is signed out, and this one is signed in.</p>
      <form onSubmit=${submit} noValidate>
        <div class="field">
          <label for="reset-password">New password</label>
          <input id="reset-password" data-testid="reset-password" ref=${field} type="password" required autocomplete="new-password"
            aria-invalid=${error ? 'true' : undefined} aria-describedby=${['reset-hint', error ? 'reset-error' : ''].filter(Boolean).join(' ')}
            value=${password} onInput=${(e: Event) => setPassword((e.currentTarget as HTMLInputElement).value)} />
          <p id="reset-hint" class="hint">At least 8 characters.</p>
        </div>
        ${error && html`<div class="error-box" role="alert" id="reset-error" data-testid="reset-error"><p class="error-text">${error}</p></div>`}
        <button type="submit" class="btn btn-primary btn-block" data-testid="reset-submit" disabled=${busy}>
          ${busy ? 'Please wait…' : 'Set password and sign in'}
        </button>
      </form>
    </div>
  `;
}
