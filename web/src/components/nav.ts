import { html } from 'htm/preact';
import type { Account } from '../types';

const LINKS = [
  { path: '/app/playground', label: 'Playground', id: 'nav-playground' },
  { path: '/app/keys', label: 'Keys', id: 'nav-keys' },
  { path: '/app/usage', label: 'Usage', id: 'nav-usage' },
  { path: '/app/billing', label: 'Billing', id: 'nav-billing' },
];

export function Nav({ path, account, onSignOut }: { path: string; account: Account | undefined; onSignOut: () => void }) {
  const active = path === '/app' ? '/app/playground' : path;
  return html`
    <header class="topbar">
      <a class="brand" href="/app/playground" aria-label="Tollgate home">Tollgate</a>
      <nav aria-label="Main">
        <ul class="nav-links">
          ${LINKS.map(
            (l) => html`<li key=${l.id}>
              <a href=${l.path} data-testid=${l.id} aria-current=${active === l.path ? 'page' : undefined}>${l.label}</a>
            </li>`,
          )}
        </ul>
      </nav>
      <div class="account">
        ${account &&
        html`<a class="who" href="/app/account" data-testid="nav-account" title=${`${account.email}: your account and password`}
          aria-current=${active === '/app/account' ? 'page' : undefined}>${account.email} <span class="plan-tag">${account.plan}</span></a>`}
        <button type="button" class="btn btn-quiet" data-testid="signout" onClick=${onSignOut}>Sign out</button>
      </div>
    </header>
  `;
}
