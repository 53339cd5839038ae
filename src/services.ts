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
import { openSqliteStorage } from './storage/sqlite/index.js';

export interface Services {
  config: Config;
  clock: Clock;
  ids: IdGenerator;
  storage: Storage;
  catalog: Catalog;
  pricing: Pricing;
  accounts: AccountService;
  keys: KeyService;
}

export interface ServiceOptions {
  clock?: Clock;
  ids?: IdGenerator;
  onBackgroundError?: (err: unknown) => void;
}

export function openStorage(url: string): Storage {
  if (url.startsWith('sqlite:')) return openSqliteStorage(url);
  throw new Error(`storage.url '${url.replace(/\/\/[^@]*@/, '//…@')}': only sqlite: storage is available in this version`);
}

export function buildServices(config: Config, opts: ServiceOptions = {}): Services {
  // Refused rather than ignored: an operator who configured a shared limiter must not get a
  // per-process one without knowing.
  if (config.limiter.url !== 'embedded') {
    throw new Error(`limiter.url '${config.limiter.url.replace(/\/\/[^@]*@/, '//…@')}': only the embedded limiter is available in this version`);
  }
  const clock = opts.clock ?? systemClock;
  const ids = opts.ids ?? randomIds;
  const storage = openStorage(config.storage.url);
  const keys = new KeyService(storage.keys, storage.accounts, clock, ids, {
    cacheTtlMs: config.keys.cacheTtlMs,
    cacheSize: config.keys.cacheSize,
    ...(opts.onBackgroundError && { onBackgroundError: opts.onBackgroundError }),
  });
  const accounts = new AccountService(storage.accounts, config, clock, ids);
  accounts.onChange = (id) => keys.invalidateAccount(id);
  return {
    config,
    clock,
    ids,
    storage,
    catalog: new Catalog(config.models),
    pricing: new Pricing(config.credits.perUsd),
    accounts,
    keys,
  };
}
