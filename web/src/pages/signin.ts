import { html } from 'htm/preact';
import { useRef, useState } from 'preact/hooks';
import { api, toApiError } from '../api';
import { useRefocusWhen } from '../focus';
import { navigate } from '../router';
import type { Account } from '../types';

export function SignInPage({ mode, signupOpen, onSignedIn }: { mode: 'signin' | 'signup'; signupOpen: boolean; onSignedIn: (a: Account) => Promise<void> }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  /** The field a client-side error is about: marked invalid and described by the error. */
  const [badField, setBadField] = useState<'email' | 'password' | null>(null);
  const [busy, setBusy] = useState(false);
  const signup = mode === 'signup';
  const passwordField = useRef<HTMLInputElement>(null);

  // The submit button is disabled while it runs: after a refusal the focus returns to the password.
  useRefocusWhen(!busy, () => passwordField.current);

  const submit = async (e: Event) => {
    e.preventDefault();
    if (busy) return;
    setError(null);
    setBadField(null);
    if (!/^[^\s@]+@[^\s@]+$/.test(email.trim())) {
      setError('Enter a valid email address.');
      setBadField('email');
      return;
    }
    if (signup && password.length < 8) {
      setError('Choose a password of at least 8 characters.');
      setBadField('password');
      return;
    }
    setBusy(true);
    try {
      const { account } = await api<{ account: Account }>('POST', signup ? '/signup' : '/signin', { email: email.trim(), password });
      await onSignedIn(account);
    } catch (err) {
      const apiErr = toApiError(err);
      setError(
        apiErr.code === 'email_taken'
          ? 'An account with this email already exists. Sign in instead.'
          : apiErr.code === 'invalid_credentials'
            ? 'Wrong email or password.'
            : apiErr.message,
      );
      setBusy(false);
    }
  };

  const switchTo = (m: 'signin' | 'signup') => {
    setError(null);
    // The query (`next`: the page to open once signed in) goes along.
    navigate((m === 'signup' ? '/app/signup' : '/app/signin') + location.search, true);
  };

  return html`
    <div class="card narrow auth">
      <p class="brand brand-lg">Tollgate</p>
      <h1 tabindex="-1">${signup ? 'Create your account' : 'Sign in'}</h1>
      <p class="muted">${signup ? 'Start on the Free Tier: no payment method needed.' : 'Use the email and password of your account.'}</p>
      <form onSubmit=${submit} noValidate>
        <div class="field">
          <label for="email">Email</label>
          <input id="email" data-testid="email" type="email" autocomplete="email" required
            aria-invalid=${badField === 'email' ? 'true' : undefined} aria-describedby=${badField === 'email' ? 'auth-error' : undefined}
            value=${email} onInput=${(e: Event) => setEmail((e.currentTarget as HTMLInputElement).value)} />
        </div>
        <div class="field">
          <label for="password">Password</label>
          <input id="password" data-testid="password" ref=${passwordField} type="password" required
            autocomplete=${signup ? 'new-password' : 'current-password'}
            aria-invalid=${badField === 'password' ? 'true' : undefined}
            aria-describedby=${[signup ? 'password-hint' : '', badField === 'password' ? 'auth-error' : ''].filter(Boolean).join(' ') || undefined}
            value=${password} onInput=${(e: Event) => setPassword((e.currentTarget as HTMLInputElement).value)} />
          ${signup && html`<p id="password-hint" class="hint">At least 8 characters.</p>`}
        </div>
        ${error && html`<div class="error-box" role="alert" id="auth-error"><p class="error-text">${error}</p></div>`}
        <button type="submit" class="btn btn-primary btn-block" data-testid="submit" disabled=${busy}>
          ${busy ? 'Please wait…' : signup ? 'Create account' : 'Sign in'}
        </button>
      </form>
      <p class="switch" data-testid="switch">
        ${signup
          ? html`Already have an account?${' '}<button type="button" class="link-button" data-testid="switch-to-signin" onClick=${() => switchTo('signin')}>Sign in</button>`
          : signupOpen
            ? html`New here?${' '}<button type="button" class="link-button" data-testid="switch-to-signup" onClick=${() => switchTo('signup')}>Create an account</button>`
            : 'Accounts on this service are created by its operator: ask them for one.'}
      </p>
    </div>
  `;
}
