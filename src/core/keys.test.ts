import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../lib/clock.js';
import { randomIds } from '../lib/ids.js';
import { openSqliteStorage } from '../storage/sqlite/index.js';
import type { Storage } from '../storage/ports.js';
import { KeyService } from './keys.js';

const TTL = 500;

describe('KeyService cache', () => {
  let dir: string;
  let store: Storage;
  let other: Storage; // a second connection to the same file: another process, the CLI
  let clock: ManualClock;
  let service: KeyService;
  let reads: number;
  let gate: Promise<void> | undefined; // when set, lookups read at once but answer only when it resolves

  beforeEach(async () => {
    dir = mkdtempSync(join(os.tmpdir(), 'tollgate-keys-'));
    const url = `sqlite:${join(dir, 'db.sqlite')}`;
    store = openSqliteStorage(url);
    other = openSqliteStorage(url);
    clock = new ManualClock();
    reads = 0;
    // The real store, counting its lookups by hash.
    const keys: Storage['keys'] = Object.create(store.keys);
    keys.findByHash = async (h) => {
      reads++;
      const found = await store.keys.findByHash(h);
      await gate;
      return found;
    };
    service = new KeyService(keys, store.accounts, () => store.credentialsVersion(), clock, randomIds, { cacheTtlMs: TTL, cacheSize: 100 });
    await store.accounts.create({ id: 'acc_1', email: null, plan: 'free', createdAt: new Date(clock.now()).toISOString() });
  });

  afterEach(async () => {
    await store.close();
    await other.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps an entry while nothing changed, however long (no re-read per TTL)', async () => {
    const { secret } = await service.create('acc_1', 'k');
    expect(await service.authenticate(secret)).not.toBeNull();
    for (let i = 0; i < 20; i++) {
      clock.advance(TTL * 2);
      expect((await service.authenticate(secret))?.account.plan).toBe('free');
    }
    expect(reads).toBe(1);
  });

  it('refuses a cached key from its expiry on, without reading it again; another instance\'s change of it is seen', async () => {
    const expiresAt = new Date(clock.now() + 10_000).toISOString();
    const { key, secret } = await service.create('acc_1', 'k', { expiresAt });
    expect(await service.authenticate(secret)).not.toBeNull();
    clock.advance(9_999);
    expect(await service.authenticate(secret)).not.toBeNull();
    clock.advance(1);
    await expect(service.authenticate(secret)).rejects.toMatchObject({ code: 'api_key_expired', vars: { expiresAt } });
    expect(reads).toBe(1);
    // Moved later by another process (the CLI): seen through the credentials version.
    await other.keys.update(key.id, { expiresAt: new Date(clock.now() + 60_000).toISOString() });
    clock.advance(TTL);
    expect(await service.authenticate(secret)).not.toBeNull();
  });

  it('writes nothing for a patch that changes nothing, nor for a revoked key', async () => {
    const { key } = await service.create('acc_1', 'k', { models: ['a', 'b'], expiresAt: '2027-01-01T00:00:00.000Z' });
    const before = await store.credentialsVersion();
    await service.update(key.id, { models: ['a', 'b'], expiresAt: '2027-01-01T01:00:00+01:00' });
    expect(await store.credentialsVersion()).toBe(before);
    await service.update(key.id, { models: ['b', 'a'] });
    expect(await store.credentialsVersion()).not.toBe(before);
    await service.revoke(key.id);
    const revoked = await store.credentialsVersion();
    expect((await service.update(key.id, { models: null })).models).toEqual(['b', 'a']);
    expect(await store.credentialsVersion()).toBe(revoked);
  });

  it('re-reads an unchanged entry only after its backstop age, 30–60 s', async () => {
    const { secret } = await service.create('acc_1', 'k');
    await service.authenticate(secret);
    clock.advance(29_999);
    await service.authenticate(secret);
    expect(reads).toBe(1);
    clock.advance(30_002);
    await service.authenticate(secret);
    expect(reads).toBe(2);
  });

  it("sees another connection's revocation and plan change within one TTL", async () => {
    const { key, secret } = await service.create('acc_1', 'k');
    const { secret: second } = await service.create('acc_1', 'k2');
    await service.authenticate(secret);
    await service.authenticate(second);
    await other.accounts.update('acc_1', { plan: 'paid' });
    await other.keys.revoke(key.id, new Date(clock.now()).toISOString());
    // Within the TTL the cached entry may still answer; after it, never.
    clock.advance(TTL);
    expect(await service.authenticate(secret)).toBeNull();
    expect((await service.authenticate(second))?.account.plan).toBe('paid');
  });

  it('a lookup that read before a change does not refill the cache after it was cleared', async () => {
    const { key, secret } = await service.create('acc_1', 'k');
    let open!: () => void;
    gate = new Promise((r) => (open = r));
    const pending = service.authenticate(secret);
    while (reads === 0) await new Promise((r) => setImmediate(r));
    // The lookup has read the key; before it answers, the key is revoked (by this process).
    await service.revoke(key.id);
    open();
    gate = undefined;
    expect(await pending).not.toBeNull(); // it read before the revocation
    expect(await service.authenticate(secret)).toBeNull(); // and did not put the old state in the cache
  });

  it('50 requests that miss the cache for one key share one store read (a cold cache does not burst)', async () => {
    const { secret } = await service.create('acc_1', 'k');
    const { secret: second } = await service.create('acc_1', 'k2');
    let open!: () => void;
    gate = new Promise((r) => (open = r));
    const pending = [...Array.from({ length: 50 }, () => service.authenticate(secret)), service.authenticate(second)];
    while (reads < 2) await new Promise((r) => setImmediate(r));
    open();
    gate = undefined;
    const answers = await Promise.all(pending);
    expect(answers.every((a) => a?.account.id === 'acc_1')).toBe(true);
    expect(answers[0]?.key.name).toBe('k');
    expect(answers[50]?.key.name).toBe('k2');
    expect(reads).toBe(2); // one per key, not one per request
    await service.authenticate(secret);
    expect(reads).toBe(2);
  });

  it('a request after a clear does not join a read that started before it', async () => {
    const { key, secret } = await service.create('acc_1', 'k');
    let open!: () => void;
    gate = new Promise((r) => (open = r));
    const before = service.authenticate(secret);
    while (reads === 0) await new Promise((r) => setImmediate(r));
    await service.revoke(key.id); // clears the cache while the first read waits
    gate = undefined;
    const after = service.authenticate(secret);
    expect(await after).toBeNull(); // its own read, which sees the revocation
    open();
    expect(await before).not.toBeNull();
    expect(reads).toBe(2);
  });

  it('a failed read is answered to every caller sharing it, and the next request reads again', async () => {
    const { secret } = await service.create('acc_1', 'k');
    let fail!: (err: Error) => void;
    gate = new Promise((_, reject) => (fail = reject));
    const pending = [service.authenticate(secret), service.authenticate(secret)];
    while (reads === 0) await new Promise((r) => setImmediate(r));
    fail(new Error('database unavailable'));
    gate = undefined;
    for (const p of pending) await expect(p).rejects.toThrow('database unavailable');
    expect(reads).toBe(1);
    expect(await service.authenticate(secret)).not.toBeNull();
    expect(reads).toBe(2);
  });

  it("invalidateAccount makes this process's next request see the account's change at once, not after the TTL", async () => {
    const { secret } = await service.create('acc_1', 'k');
    await service.authenticate(secret);
    await store.accounts.update('acc_1', { plan: 'paid' });
    service.invalidateAccount('acc_1');
    expect((await service.authenticate(secret))?.account.plan).toBe('paid');
  });

  it('writes last_used_at at most once a minute per key, not on every request', async () => {
    const { secret } = await service.create('acc_1', 'k');
    const touch = vi.spyOn(store.keys, 'touchLastUsed');
    for (let i = 0; i < 5; i++) {
      await service.authenticate(secret);
      clock.advance(10_000);
    }
    expect(touch).toHaveBeenCalledTimes(1);
    clock.advance(20_000);
    await service.authenticate(secret);
    expect(touch).toHaveBeenCalledTimes(2);
  });

  it('names an unknown secret by its display prefix only, never in full (errors are logged)', async () => {
    const secret = `tg-${'a'.repeat(43)}`;
    const err = await service.idOf(secret).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'key_not_found' });
    expect(JSON.stringify({ message: (err as Error).message, vars: (err as { vars: unknown }).vars })).not.toContain(secret);
  });

  it('answers a token not shaped like a key without a store lookup (a flood of junk tokens costs no reads)', async () => {
    for (const junk of ['sk-proj-abc', `tg-${'a'.repeat(42)}`, `tg-${'a'.repeat(42)}!`, '']) expect(await service.authenticate(junk)).toBeNull();
    expect(reads).toBe(0);
  });

  it('does not move the version with last_used_at touches', async () => {
    const { secret } = await service.create('acc_1', 'k');
    const v = await store.credentialsVersion();
    await service.authenticate(secret);
    clock.advance(120_000);
    await service.authenticate(secret);
    expect(await store.credentialsVersion()).toBe(v);
  });
});
