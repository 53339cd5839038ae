// Storage ports: what core needs from persistence, nothing about how. SQLite implements them today;
// PostgreSQL drops in behind the same interfaces. Every implementation passes storage/contract/.
// All methods are async so a networked store fits the same shape.
import type { Surface } from '../core/types.js';
import type { Charge } from './counters.js';

/** Prepaid balances are not here: they are counters in the CounterStore (storage/counters.ts). */
export interface Account {
  id: string;
  email: string | null;
  plan: string;
  hasPaymentMethod: boolean;
  /** ISO 8601 UTC. */
  createdAt: string;
  /** When the operator suspended the account (ISO 8601 UTC), or null: its keys and web sign-in are refused. */
  suspendedAt: string | null;
  /** The operator's note on why; shown to operators only, never to the account. */
  suspendedReason: string | null;
}

export interface NewAccount {
  id: string;
  email: string | null;
  plan: string;
  createdAt: string;
  /** Web sign-in password hash (core/passwords.ts format); absent = none. */
  passwordHash?: string | null;
}

export interface AccountPatch {
  plan?: string;
  /**
   * With `plan`: change it only from this plan, decided by the write itself (a payment method
   * moves the default plan to paid; read first, a plan change landing in between was overwritten).
   */
  planFrom?: string;
  hasPaymentMethod?: boolean;
  /**
   * Suspends (at, with its reason) or, with null, lifts a suspension. An account suspended already
   * keeps the time it was suspended, and its reason unless another is given: suspending it again
   * (the CLI's `accounts suspend` run twice) had made it look suspended just now, for no reason.
   */
  suspension?: { at: string; reason: string | null } | null;
  /**
   * A new sign-in email, stored lowercased; GatewayError `email_taken` when another account has
   * it. Null removes it (a closed account's), freeing the address.
   */
  email?: string | null;
}

/** A page of accounts, newest first (admin listing). */
export interface AccountListQuery {
  /** Only suspended accounts. */
  suspended?: boolean;
  /** Only accounts on this plan. */
  plan?: string;
  /** Accounts created before this one (its id), for the next page. */
  before?: { createdAt: string; id: string };
  limit: number;
}

export interface ApiKey {
  id: string;
  accountId: string;
  name: string;
  /** First characters of the secret, safe to show (`tg-AbCd…`). */
  prefix: string;
  /** SHA-256 of the full secret, hex. The secret itself is never stored. */
  hash: string;
  createdAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
  /** The most credits the key may spend per window, on top of its account's plan; null: none. */
  limit: KeyLimit | null;
  /** ISO 8601 UTC instant from which the key no longer authenticates; null: never. */
  expiresAt: string | null;
  /** The only model ids (the catalog's, not upstream names) the key may call; null: every model its plan allows. */
  models: readonly string[] | null;
}

/** What KeyStore.update changes: each field given is set (null removes it), the others stay. */
export interface KeyPatch {
  limit?: KeyLimit | null;
  expiresAt?: string | null;
  models?: readonly string[] | null;
}

export type KeyLimitWindow = 'day' | 'month' | 'lifetime';
export interface KeyLimit {
  credits: number;
  window: KeyLimitWindow;
}

export interface NewApiKey {
  id: string;
  accountId: string;
  name: string;
  prefix: string;
  hash: string;
  createdAt: string;
  limit?: KeyLimit | null;
  expiresAt?: string | null;
  models?: readonly string[] | null;
}

export type UsageStatus = 'ok' | 'error' | 'aborted';

/** One settled request (SPEC §7 ledger). Append-only. */
export interface UsageRecord {
  requestId: string;
  accountId: string;
  /** Null for Playground requests made with a session rather than a key. */
  keyId: string | null;
  model: string;
  surface: Surface;
  promptTokens: number;
  outputTokens: number;
  /** Integer credits charged. */
  credits: number;
  status: UsageStatus;
  /** HTTP status the client received. */
  httpStatus: number;
  /** ISO 8601 UTC. */
  createdAt: string;
  /**
   * The id (config `providers[].id`) of the provider whose answer was served and charged: a
   * fallback's when the model's own provider failed without doing the work (core/routes.ts), so
   * the ledger reconciles against each provider's invoice. Null when none was: the request failed
   * before or on every route it tried, charged nothing; and on records written before it existed.
   */
  provider: string | null;
}

export interface UsageQuery {
  accountId?: string;
  /** Inclusive lower bound, ISO date or timestamp. */
  from?: string;
  /** Exclusive upper bound, ISO date or timestamp. */
  to?: string;
  /** Rows returned: 1000 by default, at most 10000. */
  limit?: number;
  /**
   * Only records after this position in the newest-first order: a page's `next` (storage/cursor.ts).
   * A cursor of another store names another row; passed to it, it is just a position in time.
   */
  before?: string;
}

export interface UsagePage {
  records: UsageRecord[];
  /** The cursor of the page after this one (as `before`); null when this page holds the oldest record. */
  next: string | null;
}

export interface DailyUsage {
  /** UTC date `YYYY-MM-DD`. */
  day: string;
  accountId: string;
  model: string;
  surface: Surface;
  requests: number;
  promptTokens: number;
  outputTokens: number;
  credits: number;
}

export interface AccountStore {
  /**
   * Stores the email lowercased (uniqueness is case-insensitive). Throws GatewayError `email_taken`
   * when the email already belongs to an account.
   */
  create(account: NewAccount): Promise<Account>;
  get(id: string): Promise<Account | null>;
  /** Null when no account matches. */
  update(id: string, patch: AccountPatch): Promise<Account | null>;
  /** The account with this email, compared case-insensitively; null when none. */
  findByEmail(email: string): Promise<Account | null>;
  /** Newest first (created_at, then id), at most `limit`. */
  list(q: AccountListQuery): Promise<Account[]>;
  /** Replaces the password hash; false when no account matches. */
  setPasswordHash(id: string, hash: string | null): Promise<boolean>;
  /** The stored password hash; null when the account has none or does not exist. */
  getPasswordHash(id: string): Promise<string | null>;
}

export interface KeyStore {
  create(key: NewApiKey): Promise<ApiKey>;
  /** The authentication lookup. Its lastUsedAt may lag the latest touches (get() does not). */
  findByHash(hash: string): Promise<ApiKey | null>;
  get(id: string): Promise<ApiKey | null>;
  /** Oldest first. */
  listByAccount(accountId: string): Promise<ApiKey[]>;
  /** Sets revokedAt; returns the key, or null if unknown. Revoking twice keeps the first time. */
  revoke(id: string, at: string): Promise<ApiKey | null>;
  /** Sets the fields `patch` gives, in one statement; returns the key, or null if unknown. */
  update(id: string, patch: KeyPatch): Promise<ApiKey | null>;
  /** Never moves lastUsedAt backwards (requests settle out of order). Unknown ids are ignored. */
  touchLastUsed(id: string, at: string): Promise<void>;
}

export interface Ledger {
  /** Stores the record; resolves once it is durable. */
  append(record: UsageRecord): Promise<void>;
  /**
   * Stores those of `records` whose requestId is not stored yet; resolves with how many, once they
   * are durable. For receipts (core/receipt-drain.ts), which may reach the ledger twice: drained
   * while their own process also wrote them, or after it wrote them and died.
   */
  appendMissing(records: readonly UsageRecord[]): Promise<number>;
  /** Newest first. */
  query(q: UsageQuery): Promise<UsageRecord[]>;
  /** query() with the cursor of the next page: every record of a range, however many, page by page. */
  page(q: UsageQuery): Promise<UsagePage>;
  /** Aggregates by UTC day, account, model and surface; newest day first, then account, model, surface. */
  daily(q: UsageQuery): Promise<DailyUsage[]>;
  /**
   * Present on a ledger shared by processes (PostgreSQL), next to a counter store shared by them
   * (Redis): see OwedCharges. SQLite has none: its limiter is in-process and never unreachable.
   */
  readonly owed?: OwedCharges;
}

/**
 * A served request's charge that the counter store could not take (it was unreachable when the
 * request settled): every counter of its plan with the amount to add, as Receipts.charge takes it.
 */
export interface OwedCharge {
  requestId: string;
  accountId: string;
  charges: Charge[];
  /** ISO 8601 UTC: when it was first owed. */
  createdAt: string;
}

/**
 * Owed charges kept with their ledger records, so a charge is exactly as durable as the record it
 * belongs to. A process that settles during a counter-store outage would otherwise hold the charge
 * only in memory: killed or stopped before the store is back, the record would stay and the charge
 * be lost (the reservation lapses and gives the worst case back). Once stored here a charge belongs
 * to no process: whichever drains first applies it (core/receipt-drain.ts).
 */
export interface OwedCharges {
  /**
   * As Ledger.append, and in the same transaction keeps `owed` (one per request id; a second is
   * ignored). Resolves once both are durable; if it rejects, neither is stored.
   */
  append(record: UsageRecord, owed: OwedCharge): Promise<void>;
  /**
   * Takes up to `limit` owed charges no concurrent call holds (oldest first), hands them to
   * `apply`, and forgets those whose ids it returns — in one transaction with the taking, so two
   * processes never apply the same charge at once, and a process that dies while applying leaves
   * every charge it took to the next. If `apply` throws, nothing is forgotten. Returns how many
   * were forgotten.
   */
  settle(limit: number, apply: (owed: readonly OwedCharge[]) => Promise<readonly string[]>): Promise<number>;
}

/** Who added credits to a balance. */
export type TopUpSource = 'admin' | 'cli' | 'stripe' | 'billing';

/** One addition to a prepaid balance: the balance's own history, beside the ledger of what spent it. */
export interface TopUp {
  id: string;
  accountId: string;
  credits: number;
  /** admin: the admin API; cli: `tollgate accounts credits`; stripe: a paid Checkout Session; billing: the Billing page's own top-up (billing.selfTopUp). */
  source: TopUpSource;
  /** The caller's reference (an Idempotency-Key, a Stripe Checkout Session id), or null. */
  reference: string | null;
  /** ISO 8601 UTC. */
  createdAt: string;
}

/**
 * The sources whose references share one space with `source`'s: the admin API and the CLI both
 * take the operator's Idempotency-Keys, remembered per account in one counter (core/balances.ts),
 * so a key used through one and retried through the other is one top-up.
 */
export function referenceSpace(source: TopUpSource): readonly TopUpSource[] {
  return source === 'admin' || source === 'cli' ? ['admin', 'cli'] : [source];
}

export interface TopUpStore {
  /**
   * Stores the top-up; false, storing nothing, when the account already has one with the same
   * (non-null) reference in its source's reference space (referenceSpace): a retry that finds its
   * credit made records it once.
   */
  record(topUp: TopUp): Promise<boolean>;
  /**
   * The account's top-ups, newest first, at most `limit`; with `before`, those after that top-up of
   * the account (its id) in that order, none when it has no such top-up.
   */
  list(accountId: string, limit: number, before?: string): Promise<TopUp[]>;
  /** Whether the account has a top-up of `source` with `reference` (a Stripe session that was credited). */
  has(accountId: string, source: TopUpSource, reference: string): Promise<boolean>;
}

export interface Storage {
  accounts: AccountStore;
  keys: KeyStore;
  ledger: Ledger;
  topUps: TopUpStore;
  /**
   * A number that changes whenever a key or an account changes (revocation, plan, deletion …),
   * whoever made the change: this process, another instance, the CLI. The key cache keeps entries
   * while it stays the same (core/keys.ts). last_used_at touches do not change it.
   */
  credentialsVersion(): Promise<number>;
  /**
   * The deployment's secret named `name`: the one stored, or else `make()`'s, stored now. The first
   * to store it wins, so every instance sharing the store (and every later start) gets the same.
   */
  sharedSecret(name: string, make: () => string): Promise<string>;
  /** Throws when the store cannot serve (for /readyz). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The database cannot be reached or did not answer in time (a network store that is down, frozen
 * or out of connections) — an outage, answered 503 storage_unavailable, not a bug's 500.
 */
export class StorageUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageUnavailableError';
  }
}
