// Accounts: who pays. Plans are validated against config here so the stores stay plan-agnostic.
import type { Config } from '../config/schema.js';
import type { Clock } from '../lib/clock.js';
import type { IdGenerator } from '../lib/ids.js';
import { CounterOverflowError, DuplicateReservationError } from '../storage/counter-ops.js';
import type { Account, AccountListQuery, AccountStore, TopUp, TopUpSource, TopUpStore } from '../storage/ports.js';
import { BalanceTooLowError, TopUpLapsedError, type Balances } from './balances.js';
import { GatewayError } from '../errors/gateway-error.js';
import { PAID_PLAN, paymentMethodLifts } from './payment-lift.js';

/** An account as the APIs show it: with its prepaid balance, which lives in the counter store. */
export type AccountInfo = Account & { balance: number };

/** The plan an account with a payment method moves to from the default (free) plan. */

export class AccountService {
  /** Called after any change, so caches (the key cache) drop stale copies. */
  onChange: (accountId: string) => void = () => {};
  /** Called when a keyless top-up's record could not be written (its credit stands): the operator's log. */
  onRecordFailed: (err: unknown) => void = () => {};

  constructor(
    private readonly store: AccountStore,
    private readonly balances: Balances,
    private readonly config: Pick<Config, 'plans' | 'defaultPlan'>,
    private readonly clock: Clock,
    private readonly ids: IdGenerator,
    private readonly topUps: TopUpStore,
  ) {}

  private checkPlan(plan: string): void {
    if (!Object.hasOwn(this.config.plans, plan)) {
      throw new GatewayError('invalid_request', {
        vars: { detail: `no plan '${plan}' (plans: ${Object.keys(this.config.plans).join(', ')})` },
        param: 'plan',
      });
    }
  }

  private async withBalance(account: Account): Promise<AccountInfo> {
    return { ...account, balance: await this.balances.get(account.id) };
  }

  async create(input: { email?: string | null; plan?: string; passwordHash?: string }): Promise<AccountInfo> {
    const plan = input.plan ?? this.config.defaultPlan;
    this.checkPlan(plan);
    const account = await this.store.create({
      id: this.ids.accountId(),
      email: input.email ?? null,
      plan,
      createdAt: new Date(this.clock.now()).toISOString(),
      ...(input.passwordHash !== undefined && { passwordHash: input.passwordHash }),
    });
    return { ...account, balance: 0 };
  }

  async get(id: string): Promise<AccountInfo> {
    const account = await this.store.get(id);
    if (!account) throw new GatewayError('account_not_found', { vars: { id } });
    return this.withBalance(account);
  }

  /** The account with this email (case-insensitive), or null. */
  async findByEmail(email: string): Promise<AccountInfo | null> {
    const account = await this.store.findByEmail(email);
    return account ? this.withBalance(account) : null;
  }

  /**
   * Accounts newest first, without balances (a page of them would be a limiter read each). Pages on:
   * `before` names the last account of the previous page. An email names one account at most.
   * `hasMore`: another page has accounts — read as one account past the page, so a page that ends
   * the list (or an email's one account) does not send a client on to an empty one.
   */
  async list(q: { email?: string; suspended?: boolean; plan?: string; before?: string; limit: number }): Promise<{ data: Account[]; hasMore: boolean }> {
    let before: AccountListQuery['before'];
    if (q.before !== undefined) {
      const last = await this.store.get(q.before);
      if (!last) throw new GatewayError('account_not_found', { vars: { id: q.before } });
      before = { createdAt: last.createdAt, id: last.id };
    }
    if (q.email !== undefined) {
      // The email's own unique index, not a walk of the listing's order.
      const a = await this.store.findByEmail(q.email);
      const after = before === undefined || a === null || a.createdAt < before.createdAt || (a.createdAt === before.createdAt && a.id < before.id);
      const matches = a !== null && after && (q.suspended !== true || a.suspendedAt !== null) && (q.plan === undefined || a.plan === q.plan);
      return { data: matches ? [a] : [], hasMore: false };
    }
    const data = await this.store.list({
      limit: q.limit + 1,
      ...(q.suspended !== undefined && { suspended: q.suspended }),
      ...(q.plan !== undefined && { plan: q.plan }),
      ...(before !== undefined && { before }),
    });
    const hasMore = data.length > q.limit;
    if (hasMore) data.pop();
    return { data, hasMore };
  }

  async passwordHash(id: string): Promise<string | null> {
    return this.store.getPasswordHash(id);
  }

  /** Replaces the password hash (a sign-in upgrading a hash made with older parameters). */
  async setPasswordHash(id: string, hash: string): Promise<void> {
    if (!(await this.store.setPasswordHash(id, hash))) throw new GatewayError('account_not_found', { vars: { id } });
  }

  /** No web sign-in any more (a closed account). */
  async removePassword(id: string): Promise<void> {
    if (!(await this.store.setPasswordHash(id, null))) throw new GatewayError('account_not_found', { vars: { id } });
  }

  async update(id: string, patch: { plan?: string; paymentMethod?: boolean; suspended?: boolean; suspendedReason?: string; email?: string | null }): Promise<AccountInfo> {
    const { plan } = patch;
    if (plan !== undefined) this.checkPlan(plan);
    // Free → paid is decided by the write (planFrom), not on a plan read before it: another
    // instance's plan change landing in between was otherwise overwritten with paid.
    const upgrade = patch.paymentMethod === true && plan === undefined && Object.hasOwn(this.config.plans, PAID_PLAN);
    // The balance is read before the write (a plan change does not move it): with the limiter
    // down, the call fails before anything changed, so the caller's retry is safe — read after,
    // the plan was changed and the call still answered with an error.
    const balance = await this.balances.get(id);
    const updated = await this.store.update(id, {
      ...(plan !== undefined && { plan }),
      ...(upgrade && { plan: PAID_PLAN, planFrom: this.config.defaultPlan }),
      ...(patch.paymentMethod !== undefined && { hasPaymentMethod: patch.paymentMethod }),
      ...(patch.suspended !== undefined && {
        suspension: patch.suspended ? { at: new Date(this.clock.now()).toISOString(), reason: patch.suspendedReason ?? null } : null,
      }),
      ...(patch.email !== undefined && { email: patch.email }),
    });
    if (!updated) throw new GatewayError('account_not_found', { vars: { id } });
    this.onChange(id);
    return { ...updated, balance };
  }

  /** Whether a payment method moves this account to the paid plan (update's upgrade): its plan is the default one. */
  upgradesWithPaymentMethod(account: Account): boolean {
    return paymentMethodLifts(account.plan, this.config.defaultPlan, (id) => Object.hasOwn(this.config.plans, id));
  }

  /**
   * Tops up the prepaid balance (one atomic add in the counter store), then records it in the
   * balance's history. Two stores, one after the other: a crash between them leaves a credit
   * without its record; under an idempotency key (addCreditsOnce) the retry writes the record.
   * Without one, a record that fails does not fail the top-up: the credit is made, and an error
   * would have the caller retry it and credit twice (onRecordFailed says so instead).
   */
  async addCredits(id: string, amount: number, source: TopUpSource): Promise<AccountInfo> {
    const account = await this.store.get(id);
    if (!account) throw new GatewayError('account_not_found', { vars: { id } });
    let balance;
    try {
      balance = await this.balances.add(id, amount);
    } catch (err) {
      throw topUpError(err);
    }
    await this.recordTopUp({ accountId: id, credits: amount, source, reference: null }).catch((err: unknown) => this.onRecordFailed(err));
    return { ...account, balance };
  }

  /**
   * addCredits at most once per idempotency key and account (Balances.addOnce): a repeat with the
   * same amount answers the account as it is now, `replayed`; with another amount it is refused.
   */
  async addCreditsOnce(id: string, amount: number, idempotencyKey: string, source: TopUpSource): Promise<{ account: AccountInfo; replayed: boolean }> {
    const account = await this.store.get(id);
    if (!account) throw new GatewayError('account_not_found', { vars: { id } });
    let result;
    try {
      result = await this.balances.addOnce(id, amount, idempotencyKey);
    } catch (err) {
      if (err instanceof DuplicateReservationError) {
        throw new GatewayError('idempotency_key_in_use', { cause: err, headers: { 'retry-after': '1' } });
      }
      throw topUpError(err);
    }
    if (result.outcome === 'reused') {
      throw new GatewayError('idempotency_key_reused', { vars: { previous: result.amount, amount }, param: 'Idempotency-Key' });
    }
    // A replay too: the first attempt may have credited the balance and died before its record.
    const kept = await this.recordTopUp({ accountId: id, credits: amount, source, reference: idempotencyKey });
    // Added, yet the history has the reference: the key was used before its memory lapsed
    // (TOP_UP_KEY_MEMORY_MS), and this is a second credit. Kept without the reference, which the
    // history holds once, rather than left out of it.
    if (!kept && result.outcome === 'added') await this.recordTopUp({ accountId: id, credits: amount, source, reference: null });
    return { account: { ...account, balance: result.balance }, replayed: result.outcome === 'replayed' };
  }

  /**
   * Adds a top-up made elsewhere (a hosted checkout) to the balance's history; once per source and
   * reference: false when one with them is kept already.
   */
  async recordTopUp(t: Omit<TopUp, 'id' | 'createdAt'>): Promise<boolean> {
    return this.topUps.record({ ...t, id: this.ids.topUpId(), createdAt: new Date(this.clock.now()).toISOString() });
  }

  /** Whether the balance's history keeps a top-up of `source` under `reference` (a Stripe session credited). */
  async hasTopUp(accountId: string, source: TopUp['source'], reference: string): Promise<boolean> {
    return this.topUps.has(accountId, source, reference);
  }

  /**
   * The account's top-ups, newest first, `limit` at a time: the next page is `before=<the last id
   * of this one>` (one that is not among the account's top-ups gives an empty page).
   */
  async topUpHistory(id: string, limit: number, before?: string): Promise<{ data: TopUp[]; hasMore: boolean }> {
    if (!(await this.store.get(id))) throw new GatewayError('account_not_found', { vars: { id } });
    const data = await this.topUps.list(id, limit + 1, before);
    const hasMore = data.length > limit;
    if (hasMore) data.pop();
    return { data, hasMore };
  }
}

/**
 * Why a top-up or a correction changed nothing, as the caller is answered: its hold lapsed before
 * it was settled (the limiter stalled: retry), the balance would pass what it holds exactly
 * (2^53 − 1 credits), or a correction would take it below zero. Anything else as it is.
 */
function topUpError(err: unknown): unknown {
  if (err instanceof TopUpLapsedError) return new GatewayError('limiter_unavailable', { cause: err, headers: { 'retry-after': '1' } });
  if (err instanceof BalanceTooLowError) {
    return new GatewayError('balance_too_low', { vars: { id: err.accountId, balance: err.value, amount: err.amount }, param: 'amount' });
  }
  if (!(err instanceof CounterOverflowError)) return err;
  return new GatewayError('invalid_request', {
    vars: { detail: `a balance holds at most ${Number.MAX_SAFE_INTEGER} credits; this one holds ${err.value}` },
    param: 'amount',
  });
}
