import { html, render } from 'htm/preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, onSessionChanged, onUnauthorized, setCsrfToken, setLoadedAccount, toApiError } from './api';
import { Nav } from './components/nav';
import { AccountPage } from './pages/account';
import { BillingPage } from './pages/billing';
import { KeysPage } from './pages/keys';
import { PlaygroundPage } from './pages/playground';
import { ResetPage } from './pages/reset';
import { SignInPage } from './pages/signin';
import { UsagePage } from './pages/usage';
import { interceptLinks, navigate, useRoute } from './router';
import type { Account, Session } from './types';
import './styles.css';

const AUTH_PAGES = new Set(['/app/signin', '/app/signup']);
/** A reset link's page: open to anyone with the link, signed in or not. */
const RESET_PAGE = '/app/reset';
const TITLES: Record<string, string> = {
  '/app': 'Playground',
  '/app/playground': 'Playground',
  '/app/keys': 'API keys',
  '/app/usage': 'Usage',
  '/app/billing': 'Billing',
  '/app/account': 'Account',
  '/app/signin': 'Sign in',
  '/app/signup': 'Sign up',
  [RESET_PAGE]: 'Set a new password',
};

/**
 * The sign-in page for a visitor without a session on `path`: a signed-in page other than the
 * Playground is named in `next` (as the gateway's own redirect does), to be opened after sign-in.
 */
function signInFor(path: string): string {
  const page = Object.hasOwn(TITLES, path) && !AUTH_PAGES.has(path) && path !== RESET_PAGE && path !== '/app' && path !== '/app/playground';
  return page ? `/app/signin?next=${encodeURIComponent(path)}` : '/app/signin';
}

/** Where sign-in leads: the page in `?next=` when it is one of the app's signed-in pages (never another site). */
function afterSignIn(): string {
  const next = new URLSearchParams(location.search).get('next');
  return next !== null && Object.hasOwn(TITLES, next) && !AUTH_PAGES.has(next) && next !== RESET_PAGE ? next : '/app/playground';
}

function App() {
  const path = useRoute();
  const [session, setSession] = useState<Session | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  /** Said once the page has followed a sign-in made in another tab. */
  const [notice, setNotice] = useState<string | null>(null);
  const main = useRef<HTMLElement>(null);
  const firstRender = useRef(true);

  const loadSession = useCallback(async () => {
    setLoadError(null);
    try {
      const s = await api<Session>('GET', '/session');
      setCsrfToken(s.csrfToken);
      setLoadedAccount(s.authenticated && s.account ? s.account.id : null);
      setSession(s);
    } catch (e) {
      setLoadError(toApiError(e).message);
    }
  }, []);

  useEffect(() => {
    onUnauthorized(() => {
      setSession((s) => (s ? { ...s, authenticated: false } : s));
      // A session that expired took its CSRF cookie with it (same max-age): fetch a fresh one for
      // the sign-in form, or signing in again from this tab is refused with csrf_failed.
      void loadSession();
    });
    onSessionChanged(() => {
      void loadSession().then(() => setNotice('You were signed in as another account in another tab or window: this page now shows that account. Nothing was changed.'));
    });
    void loadSession();
  }, [loadSession]);

  const authed = session?.authenticated === true;
  const onAuthPage = AUTH_PAGES.has(path);

  useEffect(() => {
    if (!session || path === RESET_PAGE) return;
    if (!authed && !onAuthPage) navigate(signInFor(path), true);
    else if (authed && onAuthPage) navigate(afterSignIn(), true);
  }, [session, authed, onAuthPage, path]);

  useEffect(() => {
    document.title = `${TITLES[path] ?? 'Not found'} · Tollgate`;
    setNotice(null);
    // Move focus to the new page's heading after client-side navigation (not on first load).
    if (firstRender.current) firstRender.current = false;
    else main.current?.querySelector<HTMLElement>('h1')?.focus();
  }, [path]);

  const setAccount = useCallback((account: Account) => {
    setSession((s) => ({ csrfToken: s?.csrfToken ?? '', ...s, authenticated: true, account }));
  }, []);

  /** What a page learned of the signed-in account (Billing: plan and balance), for the header. */
  const patchAccount = useCallback((patch: Partial<Account>) => {
    setSession((s) => (s?.account ? { ...s, account: { ...s.account, ...patch } } : s));
  }, []);

  const signedIn = useCallback(
    async (account: Account) => {
      // Read before the URL changes: signed in, the app leaves the sign-in page by itself.
      const to = afterSignIn();
      setAccount(account);
      // The CSRF token is re-bound to the new session: fetch it again.
      await loadSession();
      navigate(to);
    },
    [setAccount, loadSession],
  );

  const signOut = useCallback(async () => {
    // Out, whoever the browser's session now belongs to.
    setLoadedAccount(null);
    try {
      await api('POST', '/signout');
    } catch (e) {
      const err = toApiError(e);
      // The session cookie is HttpOnly: only the gateway ends it. Refused or unreached, the browser
      // is still signed in; the page went to sign-in regardless and, the session read again, came
      // straight back, with no word that the sign-out had not happened. (A 401: it had ended anyway.)
      if (err.status !== 401) {
        await loadSession();
        setNotice(`You are still signed in: signing out failed. ${err.message}`);
        return;
      }
    }
    setSession((s) => ({ csrfToken: s?.csrfToken ?? '', authenticated: false }));
    navigate('/app/signin');
    void loadSession();
  }, [loadSession]);

  if (loadError) {
    return html`<main class="center-page" ref=${main}>
      <div class="card narrow">
        <h1 tabindex="-1">Tollgate</h1>
        <div class="error-box" role="alert"><p>${loadError}</p></div>
        <button type="button" class="btn btn-primary" onClick=${loadSession}>Try again</button>
      </div>
    </main>`;
  }
  if (!session) return html`<main class="center-page" ref=${main}><p class="muted" role="status">Loading…</p></main>`;

  if (path === RESET_PAGE) {
    return html`<main class="center-page" ref=${main}><${ResetPage} onSignedIn=${signedIn} /></main>`;
  }

  if (onAuthPage || !authed) {
    if (!onAuthPage) return html`<main class="center-page" ref=${main}><p class="muted" role="status">Redirecting to sign in…</p></main>`;
    return html`<main class="center-page" ref=${main}>
      <${SignInPage} mode=${path === '/app/signup' && session.signup !== false ? 'signup' : 'signin'} signupOpen=${session.signup !== false} onSignedIn=${signedIn} />
    </main>`;
  }

  let page;
  switch (path) {
    case '/app':
    case '/app/playground':
      page = html`<${PlaygroundPage} />`;
      break;
    case '/app/keys':
      page = html`<${KeysPage} creation=${session.keyCreation !== false} />`;
      break;
    case '/app/usage':
      page = html`<${UsagePage} />`;
      break;
    case '/app/billing':
      page = html`<${BillingPage} onAccount=${patchAccount} />`;
      break;
    case '/app/account':
      page = session.account ? html`<${AccountPage} account=${session.account} />` : null;
      break;
    default:
      page = html`<section class="page">
        <h1 tabindex="-1">Page not found</h1>
        <p>There is no page at <code>${path}</code>. <a href="/app/playground">Open the Playground</a>.</p>
      </section>`;
  }

  return html`
    <a class="skip-link" href="#main">Skip to content</a>
    <${Nav} path=${path} account=${session.account} onSignOut=${signOut} />
    <main id="main" class="container" ref=${main} key=${session.account?.id}>
      ${notice && html`<p class="notice card" role="status" data-testid="session-notice">${notice}</p>`}
      ${page}
    </main>
  `;
}

interceptLinks();
const root = document.getElementById('app');
// A deploy replaces the build's hashed files, so a tab opened before it finds a chunk it loads
// later (the Usage chart) gone: the page loads the new build instead of leaving the chart blank.
// At most once a minute, so a chunk missing from the current build too does not reload for ever.
// https://vite.dev/guide/build#load-error-handling
const RELOADED_AT = 'tg_chunk_reload_at';
window.addEventListener('vite:preloadError', (event) => {
  const last = Number(sessionStorage.getItem(RELOADED_AT) ?? 0);
  if (Date.now() - last < 60_000) return;
  sessionStorage.setItem(RELOADED_AT, String(Date.now()));
  event.preventDefault();
  location.reload();
});

if (root) render(html`<${App} />`, root);
