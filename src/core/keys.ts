// API keys: issued from the CSPRNG, stored only as SHA-256 hashes, compared in constant time, and
// looked up through a cache. A revocation clears the local entry at once. Everything else — another
// instance's revocation, the CLI's, a plan change — is seen through the store's credentials version
// (storage/ports.ts), read at most once per keys.cacheTtlMs (≤ 1 s): when it moved, the whole cache
// goes. So an entry lives as long as nothing changed, not one TTL: with 1,000 keys each used about
// once a second, a TTL cache re-read key and account from the store for nearly every request.
import { timingSafeEqual } from 'node:crypto';
import type { Clock } from '../lib/clock.js';
import { sha256Hex, type IdGenerator } from '../lib/ids.js';
import type { Account, AccountStore, ApiKey, KeyPatch, KeyStore } from '../storage/ports.js';
import { GatewayError } from '../errors/gateway-error.js';

const SECRET_SHAPE = /^tg-[0-9A-Za-z]{43}$/;
/** last_used_at is advisory: written at most once a minute per key, off the response path. */
const TOUCH_EVERY_MS = 60_000;
/**
 * Even with no change seen, an entry is re-read after 30–60 s (spread by its hash, so keys first used
 * together are not all re-read together): a backstop, not the mechanism.
 */
const MAX_AGE_MS = 60_000;

function maxAgeOf(hash: string): number {
  return MAX_AGE_MS / 2 + ((parseInt(hash.slice(0, 4), 16) / 0x10000) * MAX_AGE_MS) / 2;
}

export interface AuthenticatedKey {
  key: ApiKey;
  account: Account;
}

interface CacheEntry extends AuthenticatedKey {
  expiresAt: number;
  /** The key's own expiry as epoch ms (Infinity: none), parsed once per cache fill. */
  keyExpiresAt: number;
}

export interface KeyServiceOptions {
  /** How stale a cached entry may be: the credentials version is read at most this often. 0 = no cache. */
  cacheTtlMs: number;
  cacheSize: number;
  /** Called when a background write fails; never throws into a request. */
  onBackgroundError?: (err: unknown) => void;
}

export class KeyService {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly lastTouched = new Map<string, number>();
  /** Store reads in flight, by key hash, with the cache generation they started in. */
  private readonly lookups = new Map<string, { generation: number; read: Promise<CacheEntry | null> }>();
  /** The credentials version the cache matches, and when it was read (epoch ms). */
  private version: number | undefined;
  private versionReadAt = -Infinity;
  private versionRead: Promise<void> | undefined;
  /** Bumped whenever the cache is cleared: a lookup that started before must not refill it. */
  private generation = 0;

  constructor(
    private readonly keys: KeyStore,
    private readonly accounts: AccountStore,
    private readonly credentialsVersion: () => Promise<number>,
    private readonly clock: Clock,
    private readonly ids: IdGenerator,
    private readonly opts: KeyServiceOptions,
  ) {}

  /** Creates a key; the secret is returned here and never again. */
  async create(accountId: string, name: string | undefined, settings: KeyPatch = {}): Promise<{ key: ApiKey; secret: string }> {
    const account = await this.accounts.get(accountId);
    if (!account) throw new GatewayError('account_not_found', { vars: { id: accountId } });
    const secret = this.ids.keySecret();
    const key = await this.keys.create({
      id: this.ids.keyId(),
      accountId,
      name: name ?? 'default',
      prefix: `${secret.slice(0, 7)}…`,
      hash: sha256Hex(secret),
      createdAt: new Date(this.clock.now()).toISOString(),
      limit: settings.limit ?? null,
      expiresAt: settings.expiresAt ?? null,
      models: settings.models ?? null,
    });
    return { key, secret };
  }

  /**
   * The key and its account, or null for an unknown, malformed or revoked secret. An expired key
   * throws 401 api_key_expired: its holder learns why, and that a new key is the remedy.
   */
  async authenticate(secret: string): Promise<AuthenticatedKey | null> {
    if (!SECRET_SHAPE.test(secret)) return null;
    const hash = sha256Hex(secret);
    const now = this.clock.now();
    if (this.opts.cacheTtlMs > 0 && now - this.versionReadAt >= this.opts.cacheTtlMs) await this.checkVersion(now);
    const cached = this.cache.get(hash);
    let entry: CacheEntry | null;
    if (cached && cached.expiresAt > now) entry = cached;
    else {
      if (cached) this.cache.delete(hash);
      entry = await this.lookup(hash, now);
      if (!entry) return null;
    }
    if (entry.keyExpiresAt <= now) throw expired(entry.key);
    this.touch(entry.key.id, now);
    return entry;
  }

  /**
   * One store read per key at a time: the requests that miss the cache for a key while its read is
   * in flight share that read. After a restart or a cleared cache, a client with 50 requests in
   * flight otherwise sent 50 reads of the same key and account to the database at once. A read
   * that started before a clear is not shared with callers after it: it may hold the old state.
   */
  private lookup(hash: string, now: number): Promise<CacheEntry | null> {
    const generation = this.generation;
    const flying = this.lookups.get(hash);
    if (flying?.generation === generation) return flying.read;
    const read = this.read(hash, now, generation).finally(() => {
      if (this.lookups.get(hash)?.read === read) this.lookups.delete(hash);
    });
    this.lookups.set(hash, { generation, read });
    return read;
  }

  private async read(hash: string, now: number, generation: number): Promise<CacheEntry | null> {
    const key = await this.keys.findByHash(hash);
    // The lookup is by hash, so timing reveals nothing about the secret; the explicit constant-time
    // comparison guards against a store whose lookup is looser than equality (e.g. a prefix index).
    if (!key || !timingSafeEqual(Buffer.from(key.hash, 'hex'), Buffer.from(hash, 'hex'))) return null;
    if (key.revokedAt !== null) return null;
    const account = await this.accounts.get(key.accountId);
    if (!account) return null;

    const entry: CacheEntry = { key, account, expiresAt: now + maxAgeOf(hash), keyExpiresAt: key.expiresAt === null ? Infinity : Date.parse(key.expiresAt) };
    // A clear while this lookup was reading means what it read may be the old state.
    if (this.opts.cacheTtlMs > 0 && generation === this.generation) {
      if (this.cache.size >= this.opts.cacheSize) {
        const oldest = this.cache.keys().next();
        if (!oldest.done) this.cache.delete(oldest.value);
      }
      this.cache.set(hash, entry);
    }
    return entry;
  }

  /** Reads the store's credentials version (one read shared by concurrent callers); clears the cache when it moved. */
  private checkVersion(now: number): Promise<void> {
    this.versionRead ??= this.credentialsVersion()
      .then((v) => {
        if (v !== this.version) this.clear();
        this.version = v;
        this.versionReadAt = now;
      })
      .finally(() => {
        this.versionRead = undefined;
      });
    return this.versionRead;
  }

  private clear(): void {
    this.cache.clear();
    this.generation++;
  }

  /**
   * The id of the key `idOrSecret` names: an id as it is, or the key a secret belongs to (a leaked
   * key is found as its secret, with neither its id nor its account at hand). An unknown secret is
   * key_not_found named by its display prefix, never in full.
   */
  async idOf(idOrSecret: string): Promise<string> {
    if (!SECRET_SHAPE.test(idOrSecret)) return idOrSecret;
    const key = await this.keys.findByHash(sha256Hex(idOrSecret));
    if (!key) throw new GatewayError('key_not_found', { vars: { id: `${idOrSecret.slice(0, 7)}…` } });
    return key.id;
  }

  async revoke(id: string): Promise<ApiKey> {
    // Revoked already: nothing to write. The write would move the credentials version anyway (the
    // stores' triggers fire on any UPDATE of revoked_at, PostgreSQL's once per statement even when
    // no row changes), and every instance would empty its whole key cache for nothing — a signed-in
    // user repeating one DELETE emptied them all, for every customer, as often as it liked.
    const current = await this.keys.get(id);
    if (current?.revokedAt) return current;
    const key = await this.keys.revoke(id, new Date(this.clock.now()).toISOString());
    if (!key) throw new GatewayError('key_not_found', { vars: { id } });
    this.cache.delete(key.hash);
    this.generation++;
    return key;
  }

  /**
   * Sets a key's credit limit, expiry or models (null removes one); the next request with it sees
   * them (here at once, elsewhere within keys.cacheTtlMs: the write moves the credentials version).
   * A revoked key keeps what it had.
   */
  async update(id: string, patch: KeyPatch): Promise<ApiKey> {
    const current = await this.keys.get(id);
    if (!current) throw new GatewayError('key_not_found', { vars: { id } });
    if (unchangedBy(current, patch)) return current;
    const key = await this.keys.update(id, patch);
    if (!key) throw new GatewayError('key_not_found', { vars: { id } });
    this.cache.delete(key.hash);
    this.generation++;
    return key;
  }

  /** Drops cached copies of an account (after a plan or payment change) so the next request sees it. */
  invalidateAccount(accountId: string): void {
    for (const [hash, entry] of this.cache) if (entry.account.id === accountId) this.cache.delete(hash);
    this.generation++;
  }

  private touch(keyId: string, now: number): void {
    const last = this.lastTouched.get(keyId);
    if (last !== undefined && now - last < TOUCH_EVERY_MS) return;
    this.lastTouched.set(keyId, now);
    if (this.lastTouched.size > this.opts.cacheSize * 2) this.lastTouched.clear();
    this.keys.touchLastUsed(keyId, new Date(now).toISOString()).catch((err) => this.opts.onBackgroundError?.(err));
  }
}

/**
 * Whether `patch` leaves the key as it is: it has those settings already, or is revoked (which keeps
 * its own). Nothing is written then: every write empties every instance's key cache.
 */
export function unchangedBy(key: ApiKey, patch: KeyPatch): boolean {
  if (key.revokedAt !== null) return true;
  const { limit, expiresAt, models } = patch;
  if (limit !== undefined && !(key.limit === limit || (key.limit !== null && limit !== null && key.limit.credits === limit.credits && key.limit.window === limit.window))) return false;
  if (expiresAt !== undefined && !sameInstant(key.expiresAt, expiresAt)) return false;
  if (models !== undefined && !(key.models === models || (key.models !== null && models !== null && key.models.length === models.length && key.models.every((m, i) => m === models[i])))) return false;
  return true;
}

function sameInstant(a: string | null, b: string | null): boolean {
  return a === b || (a !== null && b !== null && Date.parse(a) === Date.parse(b));
}

function expired(key: ApiKey): GatewayError {
  return new GatewayError('api_key_expired', { vars: { expiresAt: key.expiresAt ?? '' } });
}
