// JSON shapes of stored objects as the APIs show them. Key hashes never leave the server.
import type { ModelConfig } from '../config/schema.js';
import type { AccountInfo } from '../core/accounts.js';
import type { RuleStatus } from '../core/plan-meter.js';
import type { Pricing } from '../core/pricing.js';
import type { Account, ApiKey, DailyUsage, UsageRecord } from '../storage/ports.js';
import { csvLine } from '../lib/csv.js';

export function accountView(a: AccountInfo) {
  return { ...accountSummaryView(a), balance: a.balance };
}

/** An account without its balance (a listing: each balance is a read of the limiter). */
export function accountSummaryView(a: Account) {
  return {
    id: a.id,
    email: a.email,
    plan: a.plan,
    paymentMethod: a.hasPaymentMethod,
    createdAt: a.createdAt,
    suspendedAt: a.suspendedAt,
    suspendedReason: a.suspendedReason,
  };
}

export function keyView(k: ApiKey) {
  return {
    id: k.id,
    accountId: k.accountId,
    name: k.name,
    prefix: k.prefix,
    createdAt: k.createdAt,
    lastUsedAt: k.lastUsedAt,
    revokedAt: k.revokedAt,
    limit: k.limit,
    expiresAt: k.expiresAt,
    models: k.models,
  };
}

/** A ledger record as the operator sees it (admin API): every field, the serving provider's id included. */
export function usageRecordView(r: UsageRecord) {
  return { ...r };
}

/**
 * A ledger record as its account sees it (web app): without the provider, which is the operator's
 * routing — a fallback's id may name an account or region the operator keeps to itself, as
 * `ownedBy` keeps the provider out of /v1/models.
 */
export function accountUsageRecordView(r: UsageRecord) {
  const { provider: _operators, ...shown } = r;
  return shown;
}

/** A ledger record's CSV columns (admin API, CLI): every field of usageRecordView, time first. */
const RECORD_COLUMNS = ['createdAt', 'requestId', 'accountId', 'keyId', 'model', 'surface', 'promptTokens', 'outputTokens', 'credits', 'status', 'httpStatus', 'provider'] as const;
export const usageRecordCsvHeader = csvLine(RECORD_COLUMNS);
export const usageRecordCsv = (r: UsageRecord) => csvLine(RECORD_COLUMNS.map((c) => r[c]));

/** An account's own export (web app): no provider (the operator's routing), the key's name beside its id. */
const ACCOUNT_RECORD_COLUMNS = ['createdAt', 'requestId', 'model', 'surface', 'keyName', 'keyId', 'promptTokens', 'outputTokens', 'credits', 'status', 'httpStatus'] as const;
export const accountUsageCsvHeader = csvLine(ACCOUNT_RECORD_COLUMNS);
export const accountUsageCsv = (r: UsageRecord, keyName: string | null) =>
  csvLine(ACCOUNT_RECORD_COLUMNS.map((c) => (c === 'keyName' ? keyName : r[c])));

/** Daily totals' CSV columns (admin API `group=day`, CLI). */
const DAILY_COLUMNS = ['day', 'accountId', 'model', 'surface', 'requests', 'promptTokens', 'outputTokens', 'credits'] as const;
export const dailyUsageCsvHeader = csvLine(DAILY_COLUMNS);
export const dailyUsageCsv = (r: DailyUsage) => csvLine(DAILY_COLUMNS.map((c) => r[c]));

/** Totals of a set of daily rows, and the rows per model. */
export function summariseDaily(rows: readonly DailyUsage[]) {
  const byModel = new Map<string, { model: string; requests: number; promptTokens: number; outputTokens: number; credits: number }>();
  let credits = 0;
  let requests = 0;
  for (const r of rows) {
    credits += r.credits;
    requests += r.requests;
    const m = byModel.get(r.model) ?? { model: r.model, requests: 0, promptTokens: 0, outputTokens: 0, credits: 0 };
    m.requests += r.requests;
    m.promptTokens += r.promptTokens;
    m.outputTokens += r.outputTokens;
    m.credits += r.credits;
    byModel.set(r.model, m);
  }
  return { credits, requests, byModel: [...byModel.values()] };
}

/** A catalog model as `/v1/models` lists it (without the caller-specific `available`). */
export function modelEntry(m: ModelConfig, pricing: Pricing) {
  return {
    id: m.id,
    object: 'model',
    created: 0,
    owned_by: m.ownedBy ?? m.provider,
    type: m.kind,
    pro: m.pro,
    price: { unit: 'credits', ...pricing.describe(m) },
    ...(m.kind === 'chat' && { vision: m.vision }),
    ...(m.kind === 'image' && { sizes: m.sizes, default_size: m.defaultSize, ...(m.imageToImage && { image_to_image: true }) }),
  };
}

/** A rule's limit, usage and reset as /v1/usage and the admin API show it (models never used left out). */
export function ruleView(r: RuleStatus) {
  return {
    id: r.id,
    measure: r.measure,
    limit: r.limit,
    window: r.window,
    scope: r.scope,
    surfaces: r.surfaces,
    used: r.used,
    remaining: r.remaining,
    reset: r.reset,
    ...(r.byModel && { by_model: r.byModel.filter((m) => m.used > 0) }),
  };
}
