// The services the server and the CLI share, built from a loaded config. One place decides which
// storage implementation a `storage.url` means.
import type { Config } from './config/schema.js';
import { AccountService } from './core/accounts.js';
import { Catalog } from './core/catalog.js';
import { KeyService } from './core/keys.js';
import { Pricing } from './core/pricing.js';
import { systemClock, type Clock } from './lib/clock.js';
import { randomIds, type IdGenerator } from './lib/ids.js';
import type { Storage } from './storage/ports.js';
import type { CounterStore } from './storage/counters.js';
import { openSqliteCounterStore } from './storage/sqlite/counters.js';
import { openSqliteStorage } from './storage/sqlite/index.js';
import { openPostgresStorage } from './storage/postgres/index.js';
import { openRedisCounterStore } from './storage/redis/counters.js';
import { Balances } from './core/balances.js';
import { resolvePlans, type ResolvedPlan } from './config/plans.js';

export interface Services {
  config: Config;
  clock: Clock;
  ids: IdGenerator;
  storage: Storage;
  counters: CounterStore;
  balances: Balances;
  plans: ReadonlyMap<string, ResolvedPlan>;
  catalog: Catalog;
  pricing: Pricing;
  accounts: AccountService;
  keys: KeyService;
}

export interface ServiceOptions {
  clock?: Clock;
  ids?: IdGenerator;
  onBackgroundError?: (err: unknown) => void;
  /** A counter store to use instead of the one `limiter.url` names (tests: a second instance). */
  counters?: CounterStore;
}

/** The storage implementation a `storage.url` names. */
export async function openStorage(url: string): Promise<Storage> {
  if (url.startsWith('sqlite:')) return openSqliteStorage(url);
  return openPostgresStorage(url);
}

/**
 * The counter store `limiter.url` names. `embedded` keeps the counters in the same SQLite database
 * as the accounts and the ledger (on the storage's connection, so a settlement and its ledger row
 * commit together), so a restart keeps today's usage and every balance; `redis://` shares them
 * between every instance. Close it before the storage.
 */
export function openCounters(config: Config, storage?: Storage): CounterStore {
  if (config.limiter.url !== 'embedded') return openRedisCounterStore(config.limiter.url);
  return openSqliteCounterStore(config.storage.url, storage);
}

export async function buildServices(config: Config, opts: ServiceOptions = {}): Promise<Services> {
  // Refused rather than ignored: an operator who configured a shared limiter must not get a
  // per-process one without knowing.
  const clock = opts.clock ?? systemClock;
  const ids = opts.ids ?? randomIds;
  const storage = await openStorage(config.storage.url);
  let counters: CounterStore;
  try {
    counters = opts.counters ?? openCounters(config, storage);
  } catch (err) {
    await storage.close();
    throw err;
  }
  const balances = new Balances(counters, () => clock.now());
  const keys = new KeyService(storage.keys, storage.accounts, () => storage.credentialsVersion(), clock, ids, {
    cacheTtlMs: config.keys.cacheTtlMs,
    cacheSize: config.keys.cacheSize,
    ...(opts.onBackgroundError && { onBackgroundError: opts.onBackgroundError }),
  });
  const accounts = new AccountService(storage.accounts, balances, config, clock, ids, storage.topUps);
  accounts.onChange = (id) => keys.invalidateAccount(id);
  return {
    config,
    clock,
    ids,
    storage,
    counters,
    balances,
    // Config load already validated the plans; this is the same pure resolution.
    plans: resolvePlans(config.plans).plans,
    catalog: new Catalog(config.models),
    pricing: new Pricing(config.credits.perUsd),
    accounts,
    keys,
  };
}
