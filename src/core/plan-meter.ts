// The metering engine (SPEC §7). For each request it builds the list of counters the request
// touches under its account's plan — window credits, window requests, concurrency leases, the
// prepaid balance — and reserves the worst case on all of them in ONE atomic store operation:
// all or none. Settlement replaces the reservation by the actual cost; release gives it back;
// a crashed process's reservations expire by TTL because only live processes renew them.
import type { ResolvedPlan } from '../config/plans.js';
import type { MeasureRule, ModelConfig, Rule } from '../config/schema.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { Clock } from '../lib/clock.js';
import { ChurnMap } from '../lib/churn-map.js';
import { CounterStoreUnavailableError, type Charge, type CounterOp, type CounterStore } from '../storage/counters.js';
import type { Account, ApiKey, KeyLimit } from '../storage/ports.js';
import { accountKeyPrefix, balanceKey } from './balances.js';
import { paymentMethodLifts } from './payment-lift.js';
import type { Admission, AdmissionRequest, KeepOwed, Meter, PrepaidBalance, Principal } from './metering.js';
import { ruleApplies, shapeRequest, type ShapeOutcome, type ShapeTarget } from './shaping.js';
import type { Surface } from './types.js';
import { resetDuration, windowAt, type WindowSpan } from './windows.js';

/** Window counters outlive their window a little, so late settlements still find them. */
const COUNTER_GRACE_MS = 3_600_000;

export interface PlanMeterOptions {
  plans: ReadonlyMap<string, ResolvedPlan>;
  defaultPlan: string;
  /** server.publicUrl: a refusal a payment method lifts links to its Billing page. */
  publicUrl: string;
  store: CounterStore;
  clock: Clock;
  reservationTtlMs: number;
  renewEveryMs: number;
  /**
   * Longest a request may hold a reservation (the upstream's total timeout plus the drain).
   * Past it the reservation is no longer renewed and lapses, so a request path that somehow
   * never settles cannot pin a counter for ever.
   */
  maxHoldMs: number;
  /** limiter.onUnavailable: refuse (`closed`) or admit unmetered (`open`) while the store is down. */
  onUnavailable: 'closed' | 'open';
  logger: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

/**
 * How often counters past their window (plus grace) and lapsed reservations are dropped from the
 * store. The embedded limiter keeps counters in memory, so without it yesterday's would stay.
 */
const SWEEP_EVERY_MS = 60_000;
/** A shared store's sweep turn lapses this much before the next minute, so timers a little early still sweep. */
const SWEEP_CLAIM_MARGIN_MS = 5_000;

/** Charges owed to a store that was unreachable, applied in order once it answers again. */
const BACKLOG_LIMIT = 100_000;

/** One counter of a reservation and why it is there. */
interface Slot {
  op: CounterOp;
  /** The measured rule, or 'balance' for the prepaid balance. */
  rule: MeasureRule | 'balance';
  limit: number;
  span: WindowSpan | undefined;
}

export interface RuleStatus {
  id: string;
  measure: MeasureRule['measure'];
  limit: number;
  window: string | null;
  scope: MeasureRule['scope'];
  surfaces: Surface[];
  used: number;
  remaining: number;
  /** ISO time the window resets; null for concurrency and lifetime. */
  reset: string | null;
  /** account+model rules: the counters per model. */
  byModel?: Array<{ model: string; used: number; remaining: number }>;
}

export function counterKey(rule: MeasureRule, principal: Principal, modelId: string, span: WindowSpan | undefined): string {
  let key = `${accountKeyPrefix(principal.account.id)}:${rule.id}`;
  if (rule.scope === 'key') key += `:k:${principal.key?.id ?? 'session'}`;
  else if (rule.scope === 'account+model') key += `:m:${modelId}`;
  return span ? `${key}:${span.id}` : key;
}

function isMeasure(rule: Rule): rule is MeasureRule {
  return 'measure' in rule;
}

/**
 * Where several rules refuse a request, the store names the first in the list, so the list runs
 * from the window that frees up last to the one that frees up first: UTC periods nest (the current
 * minute ends no later than its hour, day, month), so the refusal's Retry-After and reset time are
 * then when the request can pass — not when one of its limits lifts while another still holds it.
 */
const WINDOW_ORDER = { lifetime: 0, month: 1, day: 2, hour: 3, minute: 4 } as const;
const rank = (rule: MeasureRule) => (rule.measure === 'concurrent' ? 5 : WINDOW_ORDER[rule.window!]);
const byLongestWindow = new WeakMap<ResolvedPlan, MeasureRule[]>();
function measuredRules(plan: ResolvedPlan): MeasureRule[] {
  let rules = byLongestWindow.get(plan);
  if (!rules) {
    // Array.prototype.sort is stable: rules of one window keep the plan's order.
    rules = plan.rules.filter(isMeasure).sort((a, b) => rank(a) - rank(b));
    byLongestWindow.set(plan, rules);
  }
  return rules;
}

/** The rule id a key's own credit limit counts under (ApiKey.limit; reserved in config/schema.ts). */
export const KEY_LIMIT_RULE = 'key_limit';

/** A key's credit limit as a measured rule of its own (one per limit object: key-cache entries are reused). */
const keyLimitRules = new WeakMap<KeyLimit, MeasureRule>();
function keyLimitRule(limit: KeyLimit): MeasureRule {
  let rule = keyLimitRules.get(limit);
  if (!rule) {
    // A key is only ever used on the API (the Playground's requests have none).
    rule = { id: KEY_LIMIT_RULE, measure: 'credits', limit: limit.credits, window: limit.window, scope: 'key', surfaces: ['api'] };
    keyLimitRules.set(limit, rule);
  }
  return rule;
}

/**
 * The measured rules a principal's requests count under: its plan's, and its key's own credit
 * limit in its place by window (measuredRules' order).
 */
function rulesOf(plan: ResolvedPlan, principal: Principal): MeasureRule[] {
  const rules = measuredRules(plan);
  const limit = principal.key?.limit;
  if (!limit) return rules;
  const own = keyLimitRule(limit);
  const at = rules.findIndex((r) => rank(r) > rank(own));
  return at === -1 ? [...rules, own] : [...rules.slice(0, at), own, ...rules.slice(at)];
}

/** A rule that counts a surface's requests whatever their model (no model filter, not per model). */
function appliesToEveryModel(rule: MeasureRule, surface: Surface): boolean {
  return !rule.models && rule.scope !== 'account+model' && (!rule.surfaces || rule.surfaces.includes(surface));
}

export class PlanMeter implements Meter {
  /** Reservation id → when it was made. */
  private readonly inflight = new ChurnMap<string, number>();
  private readonly backlog: Array<() => Promise<void>> = [];
  /** The backlog's drain while one runs (close() waits for it rather than reading a half-drained backlog). */
  private draining: Promise<boolean> | undefined;
  /** The counter sweep while one runs. */
  private sweeping: Promise<void> | undefined;
  /**
   * Requests admitted unmetered (limiter.onUnavailable: open) since the store last answered a
   * reservation: the first of an outage is logged, the rest counted and their number logged once
   * it answers. A line per request was thousands a second through an outage, beside the one line
   * that already says the limiter is unreachable (main.ts).
   */
  private unmeteredAdmissions = 0;
  private readonly timer: NodeJS.Timeout;
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly o: PlanMeterOptions) {
    // Only a live process renews its reservations: when it dies, they lapse within the TTL.
    this.timer = setInterval(() => {
      void this.renew();
      void this.drainBacklog();
    }, o.renewEveryMs);
    this.timer.unref();
    this.sweeper = setInterval(() => void this.sweep(), SWEEP_EVERY_MS);
    this.sweeper.unref();
  }

  /**
   * Drops expired counters and lapsed reservations (runs every minute). A call while a sweep runs
   * joins it: the shared store sweeps account by account, and one that outlasts its minute (a few
   * hundred thousand accounts over a network) had the timer start another beside it, each slowing
   * the others and the store itself, without end.
   */
  sweep(): Promise<void> {
    this.sweeping ??= this.sweepOnce().finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }

  private async sweepOnce(): Promise<void> {
    try {
      // One instance a minute, not every instance: each sweep reads every account's indexes.
      await this.o.store.sweep(this.o.clock.now(), { onceEveryMs: SWEEP_EVERY_MS - SWEEP_CLAIM_MARGIN_MS });
    } catch (err) {
      // Unreachable store or not: the next sweep tries again; nothing is lost by waiting.
      this.o.logger.warn({ err }, 'counter sweep failed');
    }
  }

  planOf(account: Pick<Account, 'plan'>): ResolvedPlan {
    // An account on a plan since removed from config falls back to the default plan.
    return this.o.plans.get(account.plan) ?? this.o.plans.get(this.o.defaultPlan)!;
  }

  shape(principal: Principal, model: ModelConfig, target: ShapeTarget): ShapeOutcome {
    const only = principal.key?.models;
    if (only && !only.includes(model.id)) {
      throw new GatewayError('model_not_allowed_for_key', { vars: { models: only.join(', '), model: model.id }, param: 'model' });
    }
    const plan = this.planOf(principal.account);
    if (model.pro && principal.surface === 'api' && !plan.proModelsViaApi) {
      throw new GatewayError('model_not_in_plan', { vars: { rule: 'pro_models', model: model.id } });
    }
    return shapeRequest(plan.rules, principal.surface, model, target, paymentMethodLifts(principal.account.plan, this.o.defaultPlan, (id) => this.o.plans.has(id)));
  }

  creditCeiling(principal: Principal, model: ModelConfig): number {
    let ceiling = Number.POSITIVE_INFINITY;
    for (const rule of this.planOf(principal.account).rules) {
      if (isMeasure(rule) && rule.measure === 'credits' && ruleApplies(rule, principal.surface, model)) ceiling = Math.min(ceiling, rule.limit);
    }
    const own = principal.key?.limit;
    return own ? Math.min(ceiling, own.credits) : ceiling;
  }

  async prepaidBalance(principal: Principal): Promise<PrepaidBalance | undefined> {
    if (!this.planOf(principal.account).prepaid) return undefined;
    let value: number;
    try {
      [value = 0] = await this.o.store.get([balanceKey(principal.account.id)], this.o.clock.now());
    } catch (err) {
      if (err instanceof CounterStoreUnavailableError) return undefined;
      throw err;
    }
    return {
      credits: Math.max(0, value),
      refuse: () => {
        throw insufficientBalance(value);
      },
    };
  }

  /** The counters a request for `model` touches; without a model, those every model's requests touch. */
  private slots(principal: Principal, model: ModelConfig | undefined, worstCase: number, now: number): Slot[] {
    const plan = this.planOf(principal.account);
    const slots: Slot[] = [];
    for (const rule of rulesOf(plan, principal)) {
      if (model ? !ruleApplies(rule, principal.surface, model) : !appliesToEveryModel(rule, principal.surface)) continue;
      const span = rule.measure === 'concurrent' ? undefined : windowAt(rule.window!, now);
      const expiresAt = span && Number.isFinite(span.endsAt) ? span.endsAt + COUNTER_GRACE_MS : null;
      const key = counterKey(rule, principal, model?.id ?? '', span);
      const op: CounterOp =
        rule.measure === 'credits'
          ? { key, amount: worstCase, max: rule.limit, settle: 'actual', expiresAt }
          : rule.measure === 'requests'
            ? { key, amount: 1, max: rule.limit, settle: 'keep', expiresAt }
            : { key, amount: 1, max: rule.limit, settle: 'return', expiresAt: null };
      slots.push({ op, rule, limit: rule.limit, span });
    }
    if (plan.prepaid) {
      slots.push({
        op: { key: balanceKey(principal.account.id), amount: -worstCase, min: 0, settle: 'actual', expiresAt: null },
        rule: 'balance',
        limit: 0,
        span: undefined,
      });
    }
    return slots;
  }

  /**
   * The limit headers (SPEC §6) of an answer that reserved nothing — an error before admission,
   * /v1/usage, /v1/models — from the counters as they stand now: those a request for `model`
   * touches, or without a model (it was missing or unknown), those every request touches.
   */
  async currentHeaders(principal: Principal, model: ModelConfig | undefined): Promise<Record<string, string>> {
    const now = this.o.clock.now();
    const slots = this.slots(principal, model, 0, now);
    if (slots.length === 0) return {};
    const values = await this.o.store.get(slots.map((s) => s.op.key), now);
    return limitHeaders(slots, values, 0, false, now);
  }

  async admit(req: AdmissionRequest): Promise<Admission> {
    const { principal, model, worstCaseCredits: worstCase, requestId } = req;
    const now = req.at ?? this.o.clock.now();
    const plan = this.planOf(principal.account);
    for (const rule of plan.rules) {
      if ('shape' in rule && rule.shape === 'max_request_cost' && ruleApplies(rule, principal.surface, model) && worstCase > rule.limit!) {
        throw new GatewayError('request_cost_exceeded', { vars: { rule: rule.id, cost: worstCase, limit: rule.limit!, kind: model.kind } });
      }
    }
    const slots = this.slots(principal, model, worstCase, now);
    if (slots.length === 0) return unlimited;
    // A request that alone is more than a rule allows in a whole window (a worst case above a
    // credits limit; any request under a limit of 0) passes in no window: a 429 with a Retry-After
    // would have the client wait it out and be refused again, for ever. Refused for good instead,
    // by the limits alone, the longest window first as below; its counter is read only for the
    // headers, which say what the window has left (not the whole limit).
    const never = slots.find((s) => s.rule !== 'balance' && s.op.amount > s.limit);
    if (never) throw await this.refusalForGood(never, worstCase, principal, model, now);

    // Work owed to a store that was unreachable lands before this reservation is checked: the store
    // answering again is seen first here when it only stalled, and the next renewal — seconds away —
    // left its counters short of the charges meanwhile, so this request could be admitted past a
    // limit they had filled. Awaited, all of it: started and not awaited, only the first owed
    // charge went out ahead of the reservation (each waits for the one before), and the rest
    // landed after it. A drain that met the outage again is this reservation's answer too: sent
    // anyway, it waited out a second command timeout on a stalled store.
    const owedLanded = this.backlog.length === 0 || (await this.drainBacklog());
    let result;
    try {
      if (!owedLanded) throw new CounterStoreUnavailableError('counter store unavailable: the charges owed from its outage could not be applied');
      result = await this.o.store.reserve(requestId, slots.map((s) => s.op), now + this.o.reservationTtlMs, now);
    } catch (err) {
      if (!(err instanceof CounterStoreUnavailableError)) throw err;
      if (this.o.onUnavailable === 'closed') {
        this.giveBackLost(requestId);
        throw new GatewayError('limiter_unavailable', { cause: err, headers: { 'retry-after': '1' } });
      }
      if (this.unmeteredAdmissions++ === 0) this.o.logger.warn({ requestId, err: err.message }, 'limiter unavailable: admitting unmetered (limiter.onUnavailable: open)');
      return this.unmetered(requestId, principal, slots);
    }
    if (this.unmeteredAdmissions > 0) {
      this.o.logger.warn({ requests: this.unmeteredAdmissions }, 'requests were admitted unmetered while the limiter was unavailable');
      this.unmeteredAdmissions = 0;
    }
    if (!result.ok) throw this.refusal(slots[result.failed]!, result.value, worstCase, principal, model, now);

    this.inflight.set(requestId, now);
    const values = result.values;
    let refund = 0;
    let released = false;
    let done = false;
    const finish = () => {
      if (done) throw new Error(`reservation ${requestId} settled twice`);
      done = true;
      this.inflight.delete(requestId);
    };
    return {
      // The reset times count from when the headers go out — after the upstream call, for an answer
      // that does not stream — not from the admission: a 40 s completion otherwise said its minute
      // reset 40 s later than it did (and, answered after the minute ended, that it was yet to).
      headers: () => limitHeaders(slots, values, refund, released, this.o.clock.now()),
      settle: async (actual, receipt, keep) => {
        finish();
        refund = worstCase - actual;
        const { receipts } = this.o.store;
        await this.orLater(
          async () => {
            const settled = receipts && receipt !== undefined ? await receipts.settle(requestId, actual, receipt) : await this.o.store.settle(requestId, actual);
            if (!settled) await this.chargeLapsed(requestId, slots, actual, receipt);
          },
          () => this.handOver(keep, requestId, principal, slots, actual),
        );
      },
      release: async () => {
        finish();
        // Everything given back: the limit headers of the error answer say so.
        refund = worstCase;
        released = true;
        await this.orLater(async () => {
          await this.o.store.release(requestId);
        });
      },
    };
  }

  /**
   * Runs a settlement now, or — if the store is unreachable — hands it over (see handOver) or
   * queues it for when the store answers: the request was served, so its charge must land
   * eventually (a lapsed reservation is charged by chargeLapsed). Other errors are bugs and
   * propagate.
   */
  private async orLater(task: () => Promise<void>, handOver?: () => Promise<boolean>): Promise<void> {
    try {
      await task();
    } catch (err) {
      if (!(err instanceof CounterStoreUnavailableError)) throw err;
      if (handOver && (await handOver())) return;
      this.queue(task);
    }
  }

  /**
   * Gives a charge the store could not take to `keep` (Admission.settle), which stores it with the
   * request's ledger record: the backlog dies with this process, the ledger does not. Once kept the
   * charge is no longer this process's to apply — it is never queued here, so whichever process
   * drains owed charges first (core/receipt-drain.ts) applies it, this one included, and no two
   * apply it. Only with a store that has Receipts: they are what applies it (Receipts.charge); the
   * embedded store is never unreachable.
   */
  private async handOver(keep: KeepOwed | undefined, requestId: string, principal: Principal, slots: Slot[], actual: number): Promise<boolean> {
    if (!keep || !this.o.store.receipts) return false;
    const owed = {
      requestId,
      accountId: principal.account.id,
      charges: lapsedCharges(slots, actual),
      createdAt: new Date(this.o.clock.now()).toISOString(),
    };
    try {
      return await keep(owed);
    } catch (err) {
      // Not stored: held in memory instead, as without `keep`.
      this.o.logger.error({ err, requestId }, 'storing an owed charge with its record failed; holding it in memory');
      return false;
    }
  }

  /**
   * A refused request's reservation whose reply was lost: lost is not undone. A store that stalled
   * past its command timeout runs the reservation once it resumes, and no request is left to settle
   * it — it held the account's worst case and concurrency slots until its TTL lapsed, so the
   * client's retry (Retry-After: 1) was refused with nothing in flight. Given back as soon as the
   * store answers; on a connection to it, after the reservation, in order. (Admitted unmetered
   * instead, the request's own charge gives it back — Receipts.charge — or, if it failed, its
   * release.) Not awaited: the 503 does not wait out a second timeout.
   */
  private giveBackLost(requestId: string): void {
    this.orLater(async () => {
      await this.o.store.release(requestId);
    }).catch((err: unknown) => this.o.logger.error({ err, requestId }, 'giving back a reservation whose reply was lost failed'));
  }

  private queue(task: () => Promise<void>): void {
    if (this.backlog.length >= BACKLOG_LIMIT) {
      this.o.logger.error({ backlog: this.backlog.length }, 'limiter backlog full; dropping a charge');
      return;
    }
    this.backlog.push(task);
  }

  /**
   * Applies queued charges in order while the store answers (runs on the renew timer, on the
   * store's return and ahead of each reservation); one run at a time, which a call during it joins.
   * Resolves false when the store was unreachable again, with charges left queued.
   */
  drainBacklog(): Promise<boolean> {
    if (this.backlog.length === 0) return Promise.resolve(true);
    this.draining ??= this.drainOnce().finally(() => {
      this.draining = undefined;
    });
    return this.draining;
  }

  private async drainOnce(): Promise<boolean> {
    while (this.backlog.length > 0) {
      try {
        await this.backlog[0]!();
      } catch (err) {
        if (err instanceof CounterStoreUnavailableError) return false;
        // A bug, not an outage: this charge alone is dropped, and the ones behind it still land
        // now (stopping here left them for the next drain, past the reservations it precedes).
        this.o.logger.error({ err }, 'applying a queued charge failed; dropped');
      }
      this.backlog.shift();
    }
    return true;
  }

  /** Charges owed to the limiter that are waiting for it to come back (for tests and metrics). */
  get pendingCharges(): number {
    return this.backlog.length;
  }

  /** Fail-open admission: nothing reserved; the actual cost is charged once the store is back. */
  private unmetered(requestId: string, principal: Principal, slots: Slot[]): Admission {
    return {
      headers: () => ({}),
      settle: async (actual, receipt, keep) => {
        if (await this.handOver(keep, requestId, principal, slots, actual)) return;
        this.queue(() => this.chargeLapsed(requestId, slots, actual, receipt, false));
      },
      // Nothing charged, so no charge gives back a reservation whose reply was lost: give it back
      // here, or it held the account's slots until its TTL. (A store that never received it has
      // nothing to give back, and answers that without a round trip.)
      release: async () => this.giveBackLost(requestId),
    };
  }

  /**
   * Charges a request that has no live reservation: it lapsed before settlement (the process
   * stalled past the TTL, or the store was unreachable), or it was admitted unmetered. The upstream
   * did the work, so charge it anyway — without a limit check, as any settlement above the estimate
   * is — to keep the counters equal to the ledger.
   */
  private async chargeLapsed(requestId: string, slots: Slot[], actual: number, receipt?: string, lapsed = true): Promise<void> {
    // Not for a request admitted unmetered: it never had a reservation, and its admission is counted above.
    if (lapsed) this.o.logger.warn({ requestId }, 'charging without a live reservation');
    const charges = lapsedCharges(slots, actual);
    const { receipts } = this.o.store;
    if (receipts && receipt !== undefined) {
      // A shared store: every counter and the receipt at once, and once only — this runs again
      // from the backlog when a reply was lost, and adding per counter would charge twice.
      await receipts.charge(requestId, charges, receipt);
      return;
    }
    // The embedded store answers in-process: no reply is ever lost.
    for (const c of charges) if (c.amount !== 0) await this.o.store.add(c.key, c.amount, c.expiresAt);
  }

  /**
   * The refusal of a request that alone is more than `slot`'s limit, with the counter as it stands
   * in its headers. A store that does not answer changes nothing about the refusal: its headers
   * then leave out what is left rather than say the whole limit is.
   */
  private async refusalForGood(slot: Slot, worstCase: number, principal: Principal, model: ModelConfig, now: number): Promise<GatewayError> {
    let value: number | undefined;
    try {
      [value = 0] = await this.o.store.get([slot.op.key], now);
    } catch (err) {
      if (!(err instanceof CounterStoreUnavailableError)) throw err;
    }
    const refused = this.refusal(slot, value ?? 0, worstCase, principal, model, now, true);
    if (value === undefined) for (const h of Object.keys(refused.headers)) if (h.startsWith('x-ratelimit-remaining-')) delete refused.headers[h];
    return refused;
  }

  /** `forGood`: the request alone is more than the rule's limit, so no reset lets it pass. */
  private refusal(slot: Slot, value: number, worstCase: number, principal: Principal, model: ModelConfig, now: number, forGood = false): GatewayError {
    if (slot.rule === 'balance') return insufficientBalance(value, worstCase);
    const rule = slot.rule;
    const remaining = Math.max(0, slot.limit - value);
    const untilReset = slot.span ? slot.span.endsAt - now : 1000;
    const retryAfter = String(Math.max(1, Math.ceil(untilReset / 1000)));
    const resetAt = !forGood && slot.span && Number.isFinite(slot.span.endsAt) ? new Date(slot.span.endsAt).toISOString() : 'never';
    if (rule.measure === 'concurrent') {
      if (forGood) return new GatewayError('resource_exhausted', { vars: { rule: rule.id, worstCase }, headers: { 'x-tollgate-reset-at': 'never' } });
      return new GatewayError('concurrency_limit', { vars: { rule: rule.id, limit: rule.limit }, headers: { 'retry-after': '1' } });
    }
    const short = !forGood && (rule.window === 'minute' || rule.window === 'hour');
    if (rule.measure === 'credits') {
      const headers = {
        'x-ratelimit-limit-tokens': String(rule.limit),
        'x-ratelimit-remaining-tokens': String(remaining),
        'x-ratelimit-reset-tokens': resetDuration(untilReset),
        'x-tollgate-reset-at': resetAt,
        // What did not fit: beside the remaining tokens, it tells a refusal of a request too big for
        // what is left (a long max_tokens) from a budget that is spent.
        'x-tollgate-request-cost': String(worstCase),
      };
      if (rule.id === KEY_LIMIT_RULE) {
        // The key's owner set it, not the plan: "update your payment method" would not lift it.
        const per = rule.window === 'lifetime' ? 'in all' : `per UTC ${rule.window}`;
        const resets = resetAt === 'never' ? 'No reset makes room for it.' : `It resets at ${resetAt}.`;
        return new GatewayError('key_limit_exceeded', { vars: { rule: rule.id, limit: rule.limit, per, remaining, worstCase, resets }, headers });
      }
      if (short) {
        return new GatewayError('rate_limit_exceeded', {
          vars: { rule: rule.id, limit: rule.limit, unit: 'credits', window: rule.window!, retryAfter },
          headers: { ...headers, 'retry-after': retryAfter },
        });
      }
      return new GatewayError('resource_exhausted', { vars: { rule: rule.id, worstCase }, headers });
    }
    const counted = {
      'x-ratelimit-limit-requests': String(rule.limit),
      'x-ratelimit-remaining-requests': String(remaining),
      'x-ratelimit-reset-requests': resetDuration(untilReset),
    };
    if (rule.window === 'lifetime' || forGood) {
      // A lifetime count never frees up: there is no Retry-After to give, so it is no 429 (SPEC §5).
      return new GatewayError('resource_exhausted', { vars: { rule: rule.id, worstCase }, headers: { ...counted, 'x-tollgate-reset-at': resetAt } });
    }
    const headers = { ...counted, 'retry-after': retryAfter };
    if (rule.window === 'day') {
      // Whose requests the spent count is: only a per-model count is this model's (an account-wide
      // one said "all 100 requests per day for text-embedding-3-small" after 100 chat requests).
      const whose = rule.scope === 'account+model' ? model.id : rule.scope === 'key' ? (principal.key ? 'this API key' : 'the Playground') : 'this account';
      // Only where a card on file lifts the plan: an operator's own plan is raised by the operator.
      const lift = paymentMethodLifts(principal.account.plan, this.o.defaultPlan, (id) => this.o.plans.has(id))
        ? `; update your payment method to lift it: ${this.o.publicUrl.replace(/\/+$/, '')}/app/billing`
        : '. Only the operator of this service can raise it.';
      return new GatewayError('requests_per_day_exceeded', { vars: { rule: rule.id, limit: rule.limit, whose, resetAt, lift }, headers });
    }
    return new GatewayError('rate_limit_exceeded', {
      vars: { rule: rule.id, limit: rule.limit, unit: 'requests', window: rule.window!, retryAfter },
      headers,
    });
  }

  private async renew(): Promise<void> {
    if (this.inflight.size === 0) return;
    const now = this.o.clock.now();
    const live: string[] = [];
    for (const [id, since] of this.inflight) {
      if (now - since <= this.o.maxHoldMs) live.push(id);
      else {
        this.inflight.delete(id);
        this.o.logger.warn({ requestId: id }, 'reservation held past the longest possible request; letting it lapse');
      }
    }
    try {
      await this.o.store.renew(live, now + this.o.reservationTtlMs);
    } catch (err) {
      this.o.logger.warn({ err }, 'renewing reservations failed');
    }
  }

  /** keyLimitsUsed (below) in this meter's store, now. */
  async keyLimitsUsed(account: Account, keys: readonly ApiKey[]): Promise<Map<string, number>> {
    return keyLimitsUsed(this.o.store, this.o.clock.now(), account, keys);
  }

  /** Every measured rule of the account's plan with its current use (SPEC §6 /v1/usage). */
  async status(principal: Principal, models: readonly ModelConfig[]): Promise<{ plan: ResolvedPlan; rules: RuleStatus[] }> {
    const now = this.o.clock.now();
    const plan = this.planOf(principal.account);
    const rules: RuleStatus[] = [];
    const own = principal.key?.limit;
    for (const rule of own ? [...plan.rules, keyLimitRule(own)] : plan.rules) {
      if (!isMeasure(rule)) continue;
      const span = rule.measure === 'concurrent' ? undefined : windowAt(rule.window!, now);
      const reset = span && Number.isFinite(span.endsAt) ? new Date(span.endsAt).toISOString() : null;
      const base = {
        id: rule.id,
        measure: rule.measure,
        limit: rule.limit,
        window: rule.window ?? null,
        scope: rule.scope,
        surfaces: rule.surfaces ?? ['api', 'playground'],
        reset,
      };
      if (rule.scope === 'account+model') {
        const matching = models.filter((m) => !rule.models || ruleApplies({ ...rule, surfaces: undefined }, 'api', m));
        const values = await this.o.store.get(matching.map((m) => counterKey(rule, principal, m.id, span)), now);
        const byModel = matching.map((m, i) => ({ model: m.id, used: values[i]!, remaining: Math.max(0, rule.limit - values[i]!) }));
        const used = byModel.reduce((a, b) => Math.max(a, b.used), 0);
        rules.push({ ...base, used, remaining: Math.max(0, rule.limit - used), byModel });
      } else {
        const [used] = await this.o.store.get([counterKey(rule, principal, '', span)], now);
        rules.push({ ...base, used: used!, remaining: Math.max(0, rule.limit - used!) });
      }
    }
    return { plan, rules };
  }

  /**
   * Stops the timers and makes one last attempt at the charges queued for an unreachable store
   * (fail-open admissions, settlements during an outage); what still cannot land is logged with
   * its count. Charges handed over to the ledger (handOver) are not here: they outlive this process.
   */
  async close(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.sweeper);
    if (this.backlog.length === 0) return;
    await this.drainBacklog();
    if (this.backlog.length > 0) {
      this.o.logger.error({ charges: this.backlog.length }, 'shutting down with charges the limiter never took; the ledger has their records');
    }
  }
}

/**
 * What a request costs each of its counters when no reservation is there to settle: what settling
 * its reservation would have left. Every slot's key, a concurrency slot's with 0: the shared store
 * finds the account by them.
 */
function lapsedCharges(slots: readonly Slot[], actual: number): Charge[] {
  return slots.map(({ op }) => ({
    key: op.key,
    amount: op.settle === 'return' ? 0 : op.settle === 'keep' ? op.amount : Math.sign(op.amount) * actual || 0,
    expiresAt: op.expiresAt,
  }));
}

const unlimited: Admission = {
  headers: () => ({}),
  settle: async () => {},
  release: async () => {},
};

/** OpenAI-style headers for the binding (least remaining) credit budget and request count. */
function limitHeaders(slots: Slot[], values: number[], refund: number, released: boolean, now: number): Record<string, string> {
  const headers: Record<string, string> = {};
  let tokens: { limit: number | undefined; remaining: number; reset: number } | undefined;
  let requests: { limit: number; remaining: number; reset: number } | undefined;
  slots.forEach((slot, i) => {
    const value = values[i]!;
    const reset = slot.span ? slot.span.endsAt - now : Number.POSITIVE_INFINITY;
    if (slot.rule === 'balance') {
      // An actual cost above the worst case can take a balance below 0: nothing is left, as the
      // refusal of the next request says (insufficientBalance).
      const remaining = Math.max(0, value + refund);
      if (!tokens || remaining < tokens.remaining) tokens = { limit: undefined, remaining, reset };
    } else if (slot.rule.measure === 'credits') {
      const remaining = Math.max(0, slot.limit - value + refund);
      if (!tokens || remaining < tokens.remaining) tokens = { limit: slot.limit, remaining, reset };
    } else if (slot.rule.measure === 'requests') {
      const remaining = Math.max(0, slot.limit - value + (released ? 1 : 0));
      if (!requests || remaining < requests.remaining) requests = { limit: slot.limit, remaining, reset };
    }
  });
  if (tokens) {
    if (tokens.limit !== undefined) headers['x-ratelimit-limit-tokens'] = String(tokens.limit);
    headers['x-ratelimit-remaining-tokens'] = String(tokens.remaining);
    headers['x-ratelimit-reset-tokens'] = resetDuration(tokens.reset);
  }
  if (requests) {
    headers['x-ratelimit-limit-requests'] = String(requests.limit);
    headers['x-ratelimit-remaining-requests'] = String(requests.remaining);
    headers['x-ratelimit-reset-requests'] = resetDuration(requests.reset);
  }
  return headers;
}

/**
 * The refusal of a prepaid balance holding `value` credits (SPEC §4), for a request whose worst
 * case is `worstCase` (unknown when its prompt alone was found to cost more than the balance).
 */
function insufficientBalance(value: number, worstCase?: number): GatewayError {
  return new GatewayError('insufficient_balance', {
    vars: { rule: 'balance' },
    // As limitHeaders says it for a balance: no limit, and nothing resets it.
    headers: {
      'x-ratelimit-remaining-tokens': String(Math.max(0, value)),
      'x-ratelimit-reset-tokens': resetDuration(Number.POSITIVE_INFINITY),
      ...(worstCase !== undefined && { 'x-tollgate-request-cost': String(worstCase) }),
    },
  });
}

/**
 * What each unrevoked key with a limit of its own has spent of it in the window open at `now` (the
 * key lists of the web app, the admin API and the CLI); keys without one are not in the map.
 */
export async function keyLimitsUsed(store: CounterStore, now: number, account: Account, keys: readonly ApiKey[]): Promise<Map<string, number>> {
  const limited = keys.filter((k) => k.limit !== null && k.revokedAt === null);
  if (limited.length === 0) return new Map();
  const counters = limited.map((key) => {
    const rule = keyLimitRule(key.limit!);
    return counterKey(rule, { account, key, surface: 'api' }, '', windowAt(rule.window!, now));
  });
  const values = await store.get(counters, now);
  return new Map(limited.map((k, i) => [k.id, values[i] ?? 0]));
}
