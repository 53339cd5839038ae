import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, toApiError } from '../api';
import { ErrorBox } from '../components/error-box';
import { ShowMore, usePaged } from '../paged';
import { useRefocusWhen } from '../focus';
import { fmt, fmtDate } from '../format';
import { useReloadOnReturn } from '../on-return';
import type { Account, Billing, TopUp, TopUpsPage } from '../types';

/** Where a top-up came from, as the account reads it. */
const SOURCE: Record<string, string> = { admin: 'Added by the operator', cli: 'Added by the operator', stripe: 'Card payment', billing: 'This page' };

/** After a hosted checkout, how often and how many times the page reads the account again. */
const CHECKOUT_POLL_MS = 2_000;
const CHECKOUT_POLLS = 30;

/**
 * What the account was as the reader left for a hosted checkout (this tab only): the return
 * compares with it, so a webhook that landed before the page's first read still says "confirmed".
 */
const BEFORE_CHECKOUT = 'tollgate.beforeCheckout';
type Paid = Pick<Billing, 'plan' | 'paymentMethod' | 'balance'>;

function leaveForCheckout(url: string, billing: Billing | null): void {
  try {
    if (billing) sessionStorage.setItem(BEFORE_CHECKOUT, JSON.stringify({ plan: billing.plan, paymentMethod: billing.paymentMethod, balance: billing.balance }));
  } catch {
    // Storage refused (private mode, quota): the return then compares from its first read.
  }
  location.assign(url);
}

function takeBeforeCheckout(): Paid | null {
  try {
    const saved = sessionStorage.getItem(BEFORE_CHECKOUT);
    sessionStorage.removeItem(BEFORE_CHECKOUT);
    const v = saved === null ? null : (JSON.parse(saved) as Partial<Paid>);
    return v && typeof v.plan === 'string' && typeof v.paymentMethod === 'boolean' && typeof v.balance === 'number' ? (v as Paid) : null;
  } catch {
    return null;
  }
}

/**
 * What the page is about for this account: the Free Tier and the way out of it only where a payment
 * method moves the account (an operator's team plan was told about the Free Tier's daily limits).
 */
function intro(b: Billing): string {
  if (b.paymentMethodLifts) return 'The Free Tier has daily limits. With a payment method you move to the prepaid plan: no daily caps, requests spend your credit balance.';
  if (b.plan === 'paid') return 'Your plan is prepaid: requests spend your credit balance.';
  return `Your plan, ${b.plan}, is set by the operator of this gateway.`;
}

/** What moving to the paid plan at once means for this account, asked before it is done. */
function liftWarning(b: Billing): string {
  const topUps = b.selfTopUp ? 'You top it up on this page.' : 'Only the operator of this gateway can add credits to it: ask them first.';
  return `Move to the prepaid paid plan now? The Free Tier's daily credits end: every request then spends your balance, now ${fmt(b.balance)} credits. ${topUps} You cannot move back yourself.`;
}

/** The balance's history, newest first, with "Show more" for the top-ups before them. */
function TopUps({ first, next: firstNext }: { first: TopUp[]; next: string | null }) {
  const paged = usePaged(first, firstNext, (before) =>
    api<TopUpsPage>('GET', `/billing/top-ups?before=${encodeURIComponent(before)}`).then((p) => ({ items: p.topUps, next: p.topUpsNext })),
  );
  const { items: rows, error } = paged;
  return html`<div class="card table-card">
    <h2>Top-ups</h2>
    <div class="table-scroll"><table data-testid="top-ups">
      <caption class="sr-only">Your top-ups, newest first</caption>
      <thead><tr><th scope="col">Date</th><th scope="col" class="num">Credits</th><th scope="col">From</th></tr></thead>
      <tbody>
        ${rows.map(
          (t) => html`<tr key=${t.id} data-testid="top-up"><td>${fmtDate(t.createdAt)}</td><td class="num">${t.credits > 0 ? '+' : ''}${fmt(t.credits)}</td><td>${t.credits < 0 ? (t.source === 'stripe' ? 'Card payment refunded or disputed' : 'Taken back by the operator') : (SOURCE[t.source] ?? t.source)}</td></tr>`,
        )}
      </tbody>
    </table></div>
    <${ErrorBox} error=${error} billingLink=${false} />
    <${ShowMore} paged=${paged} testId="top-ups-more" />
  </div>`;
}

export function BillingPage({ onAccount }: { onAccount: (patch: Partial<Account>) => void }) {
  const [billing, setBilling] = useState<Billing | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const [amount, setAmount] = useState('');
  const [notice, setNotice] = useState('');
  const amountField = useRef<HTMLInputElement>(null);

  // Top up is disabled while it runs, Add payment method goes once one is added: the focus moves to
  // the amount field (or the page's heading) rather than fall to the page's body.
  useRefocusWhen(!busy, () => amountField.current);

  /** Whether the error shown is a failed read of the account, which the next read that works ends. */
  const loadFailed = useRef(false);
  const load = async () => {
    try {
      setBilling(await api<Billing>('GET', '/billing'));
      // Read again on the reader's return, the page showed the account and, above it, "Could not
      // reach the gateway" from the read that had failed.
      if (loadFailed.current) setError(null);
      loadFailed.current = false;
    } catch (e) {
      setError(toApiError(e));
      loadFailed.current = true;
    }
  };

  useEffect(() => {
    void load();
  }, []);
  // The header shows the plan too: what this page reads (a top-up, the return from a checkout, a
  // plan the operator changed) goes there as well, not only to this page.
  useEffect(() => {
    if (billing) onAccount({ plan: billing.plan, balance: billing.balance, paymentMethod: billing.paymentMethod });
  }, [billing?.plan, billing?.balance, billing?.paymentMethod]);
  useReloadOnReturn(() => void load());

  // Back from a hosted checkout (Stripe: ?checkout=done or cancelled). Its webhook, which moves
  // the plan or the balance, may land after the reader does: the page showed the old plan or
  // balance and the button to pay again, with no word of the payment just made. It says so, and
  // reads the account again until the gateway's answer moves (or for a minute).
  useEffect(() => {
    const checkout = new URLSearchParams(location.search).get('checkout');
    if (checkout === null) return;
    // For this return only: a reload or a bookmark of the address does not say it again.
    history.replaceState(history.state, '', location.pathname);
    if (checkout !== 'done') {
      setNotice('Checkout cancelled: nothing was charged.');
      return;
    }
    setNotice('Payment submitted: your plan and balance change here once the payment provider confirms it, usually within seconds.');
    let timer: ReturnType<typeof setTimeout> | undefined;
    let gone = false;
    // Compared from the account as it was before the checkout when this tab left from here: the
    // webhook may have landed before the first read, which then showed no change.
    let last: Paid | null = takeBeforeCheckout();
    const poll = async (left: number) => {
      const b = await api<Billing>('GET', '/billing').catch(() => null);
      if (gone) return;
      if (b) {
        setBilling(b);
        // What a payment moves: the plan, the payment method, or the balance up. The account's own
        // API traffic moves the balance too, down, while the webhook is on its way: taken for the
        // payment, it said "confirmed" over a lower balance and stopped reading before the top-up came.
        const paid = last !== null && (b.plan !== last.plan || b.paymentMethod !== last.paymentMethod || b.balance > last.balance);
        last = b;
        if (paid) {
          setNotice('Payment confirmed.');
          return;
        }
      }
      if (left > 1) timer = setTimeout(() => void poll(left - 1), CHECKOUT_POLL_MS);
    };
    void poll(CHECKOUT_POLLS);
    return () => {
      gone = true;
      clearTimeout(timer);
    };
  }, []);

  const addPaymentMethod = async () => {
    if (busy || !billing) return;
    // Without a hosted checkout the change is made at once, and the Free Tier's daily credits are
    // gone with it: an account with no balance, on a gateway where only the operator adds credits,
    // could then do nothing at all, and had clicked one button with no word of that.
    if (!billing.hostedCheckout && billing.paymentMethodLifts && !confirm(liftWarning(billing))) return;
    setBusy(true);
    setError(null);
    setNotice('');
    try {
      const res = await api<{ redirectUrl?: string; account?: Account }>('POST', '/billing/payment-method');
      if (res.redirectUrl) {
        leaveForCheckout(res.redirectUrl, billing);
        return;
      }
      if (res.account) {
        const a = res.account;
        setBilling((b) => (b ? { ...b, plan: a.plan, balance: a.balance, paymentMethod: a.paymentMethod, paymentMethodLifts: false } : b));
        setNotice(`Payment method added. Your plan is now ${a.plan}.`);
      }
      await load();
    } catch (e) {
      setError(toApiError(e));
    } finally {
      setBusy(false);
    }
  };

  const topUp = async (e: Event) => {
    e.preventDefault();
    if (busy) return;
    const credits = Number(amount);
    if (!Number.isInteger(credits) || credits <= 0 || credits > 1e12) {
      setError(new ApiError(0, 'invalid_request', 'Enter a whole number of credits from 1 to 1,000,000,000,000.'));
      return;
    }
    setBusy(true);
    setError(null);
    setNotice('');
    try {
      const res = await api<{ balance?: number; redirectUrl?: string }>('POST', '/billing/topup', { amount: credits });
      // A hosted checkout (Stripe): the balance moves once the payment completes.
      if (res.redirectUrl) {
        leaveForCheckout(res.redirectUrl, billing);
        return;
      }
      const balance = res.balance ?? 0;
      setBilling((b) => (b ? { ...b, balance } : b));
      setAmount('');
      setNotice(`Added ${fmt(credits)} credits.`);
      // The history below gains it.
      await load();
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  };

  const prepaid = billing?.plan === 'paid' || billing?.paymentMethod === true;

  return html`
    <section class="page">
      <div class="page-head">
        <h1 tabindex="-1">Billing</h1>
        ${billing && html`<p class="muted" data-testid="billing-intro">${intro(billing)}</p>`}
      </div>
      <${ErrorBox} error=${error} billingLink=${false} />
      ${notice && html`<div class="notice" role="status">${notice}</div>`}
      ${!billing && !error && html`<p class="muted" role="status">Loading billing…</p>`}
      ${billing &&
      html`
        <div class="stats">
          <div class="card stat">
            <p class="stat-label">Plan</p>
            <p class="stat-value" data-testid="plan">${billing.plan}</p>
          </div>
          <div class="card stat">
            <p class="stat-label">Balance</p>
            <p class="stat-value"><span data-testid="balance" data-value=${billing.balance}>${fmt(billing.balance)}</span> <span class="unit">credits</span></p>
          </div>
          <div class="card stat">
            <p class="stat-label">Payment method</p>
            <p class="stat-value stat-small">${billing.paymentMethod ? 'On file' : 'None'}</p>
            <p class="muted small">Provider: ${billing.provider}</p>
          </div>
        </div>
        ${!billing.paymentMethod &&
        html`<div class="card">
          <h2>Add a payment method</h2>
          ${billing.paymentMethodLifts
            ? html`<p data-testid="lift-terms">Lift the Free Tier's daily limits and move to the prepaid <strong>paid</strong> plan. Its requests spend
                your credit balance (now ${fmt(billing.balance)} credits), which ${billing.selfTopUp ? 'you top up on this page' : 'the operator of this gateway tops up'}.</p>`
            : html`<p>Keep a payment method on file with your account.</p>`}
          <button type="button" class="btn btn-primary" data-testid="add-payment-method" disabled=${busy} onClick=${addPaymentMethod}>
            ${busy ? 'Working…' : 'Add payment method'}
          </button>
        </div>`}
        ${prepaid &&
        !billing.selfTopUp &&
        html`<div class="card" data-testid="topup-by-operator">
          <h2>Credits</h2>
          <p>Credits on this gateway are added by its operator: ask them to top up your balance.</p>
        </div>`}
        ${prepaid &&
        billing.selfTopUp &&
        html`<form class="card inline-form" onSubmit=${topUp}>
          <div class="field grow">
            <label for="topup-amount">Top up (credits)</label>
            <input id="topup-amount" data-testid="topup-amount" ref=${amountField} type="number" min="1" max="1000000000000" step="1" inputMode="numeric"
              value=${amount} onInput=${(e: Event) => setAmount((e.currentTarget as HTMLInputElement).value)} />
          </div>
          <button type="submit" class="btn btn-primary" data-testid="topup" disabled=${busy}>Top up</button>
        </form>`}
        ${billing.topUps.length > 0 && html`<${TopUps} first=${billing.topUps} next=${billing.topUpsNext} />`}
      `}
    </section>
  `;
}
