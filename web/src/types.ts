// JSON shapes of the /app/api answers (docs/web-api.md).

export interface Account {
  id: string;
  email: string;
  plan: string;
  balance: number;
  paymentMethod: boolean;
}

export interface Session {
  authenticated: boolean;
  csrfToken: string;
  account?: Account;
  /** Whether anyone may sign up; false: accounts are made by the operator. */
  signup?: boolean;
  /** Whether accounts make their own API keys; false: keys are made by the operator. */
  keyCreation?: boolean;
}

export type ModelType = 'chat' | 'image' | 'embedding';

export interface Model {
  id: string;
  type: ModelType;
  pro: boolean;
  owned_by?: string;
  available?: boolean;
  /** Why it is not available: no provider serves it, or the account's plan does not reach it. */
  unavailable?: 'provider' | 'plan';
  /** Prices in credits: `per_image` for an image model, one price or one per size. */
  price?: { unit: 'credits'; per_image?: number | Record<string, number> };
  sizes?: string[];
  default_size?: string;
  /** Image-to-image: the request needs a source image (`image_url`). */
  image_to_image?: boolean;
}

export interface Window {
  limit: number;
  used: number;
  remaining: number;
  reset: string;
}

/** One of the plan's Playground rules (GET /meter `limits`). */
export interface Limit {
  measure: 'credits' | 'requests' | 'concurrent';
  limit: number;
  /** minute, hour, day, month, lifetime; null for `concurrent`. */
  window: string | null;
  /** Counted per model (scope account+model). */
  perModel: boolean;
  /** Counts Pro models. */
  pro: boolean;
  /** Counts regular (non-Pro) models. */
  regular: boolean;
  /** Only models of these kinds (chat, embedding, image); null: every kind. */
  kinds: string[] | null;
  /** Only these models; null: any. */
  ids: string[] | null;
  /** Shared with the account's API keys. */
  api: boolean;
}

export interface Meter {
  day: string;
  plan: string;
  balance: number;
  credits: Window | null;
  requests: Window | null;
  limits: Limit[];
  /** Whether adding a payment method on Billing moves the account to the paid plan (the default plan only). */
  paymentMethodLifts: boolean;
}

/** A key's own credit limit: credits per UTC day, per UTC month, or in all. */
export interface KeyLimit {
  credits: number;
  window: 'day' | 'month' | 'lifetime';
}

export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
  limit: KeyLimit | null;
  /** What it spent of its limit in the window open now (unrevoked keys with a limit). */
  limitUsed?: number;
  /** When it stops working (401 api_key_expired); null: never. */
  expiresAt: string | null;
  /** The only models it may call; null: every model the plan allows. */
  models: string[] | null;
}

export interface NewKey {
  id: string;
  name: string;
  prefix: string;
  createdAt: string;
  key: string;
}

export interface DailyRow {
  day: string;
  model: string;
  surface: 'api' | 'playground';
  requests: number;
  credits: number;
  promptTokens: number;
  outputTokens: number;
}

export interface UsageRecord {
  requestId: string;
  model: string;
  surface: 'api' | 'playground';
  /** The name of the API key that made it (null: the Playground). */
  keyName: string | null;
  promptTokens: number;
  outputTokens: number;
  credits: number;
  status: string;
  httpStatus?: number;
  createdAt: string;
}

export interface Usage {
  /** The gateway's UTC day when it answered: the last of `days`. */
  day: string;
  days: DailyRow[];
  records: UsageRecord[];
  /** The cursor of the requests before these (GET /usage/records?before=); null: none. */
  next: string | null;
}

/** GET /usage/records: a page of requests, newest first. */
export interface UsageRecordsPage {
  records: UsageRecord[];
  next: string | null;
}

export interface Billing {
  plan: string;
  balance: number;
  paymentMethod: boolean;
  /** Whether adding a payment method moves the account to the paid plan (it is on the default plan). */
  paymentMethodLifts: boolean;
  provider: string;
  /** Whether adding a payment method goes through a hosted checkout; false: it is recorded at once. */
  hostedCheckout: boolean;
  /** Whether users top up themselves; otherwise the operator adds credits. */
  selfTopUp: boolean;
  /** The balance's last additions, newest first. */
  topUps: TopUp[];
  /** The cursor of the top-ups before these (GET /billing/top-ups?before=); null: none. */
  topUpsNext: string | null;
}

/** GET /billing/top-ups: a page of the balance's history, newest first. */
export interface TopUpsPage {
  topUps: TopUp[];
  topUpsNext: string | null;
}

export interface TopUp {
  id: string;
  credits: number;
  /** admin / cli: the operator; stripe: a checkout; billing: this page's own top-up. */
  source: 'admin' | 'cli' | 'stripe' | 'billing';
  createdAt: string;
}
