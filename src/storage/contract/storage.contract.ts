// The one behaviour suite every Storage implementation passes (STYLE §13). An implementation's test
// file calls `storageContract('sqlite (memory)', () => openSqliteStorage('sqlite::memory:'))`.
// `open` must return a fresh, empty store on every call: each test owns its store.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GatewayError } from '../../errors/gateway-error.js';
import type { NewApiKey, Storage, TopUp, UsageRecord } from '../ports.js';

const T0 = '2026-11-25T12:00:00.000Z';

function at(iso: string, plusMs = 0): string {
  return new Date(Date.parse(iso) + plusMs).toISOString();
}

export function storageContract(name: string, open: () => Promise<Storage> | Storage): void {
  describe(`storage contract: ${name}`, () => {
    let store: Storage;

    beforeEach(async () => {
      store = await open();
    });

    afterEach(async () => {
      await store.close();
    });

    async function account(id: string, email: string | null = null, plan = 'free') {
      return store.accounts.create({ id, email, plan, createdAt: T0 });
    }

    function newKey(id: string, accountId: string, createdAt = T0): NewApiKey {
      return { id, accountId, name: `key ${id}`, prefix: `tg-${id}`, hash: `hash-${id}`, createdAt };
    }

    function usage(over: Partial<UsageRecord> = {}): UsageRecord {
      return {
        requestId: 'req',
        accountId: 'acc_a',
        keyId: 'key_a',
        model: 'gpt-4o',
        surface: 'api',
        promptTokens: 10,
        outputTokens: 5,
        credits: 15,
        status: 'ok',
        httpStatus: 200,
        createdAt: T0,
        provider: 'openai',
        ...over,
      };
    }

    it('ping answers', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });

    describe('accounts', () => {
      it('creates with no payment method, and reads it back', async () => {
        const created = await account('acc_1', 'ann@example.com');
        expect(created).toEqual({
          id: 'acc_1',
          email: 'ann@example.com',
          plan: 'free',
          hasPaymentMethod: false,
          createdAt: T0,
          suspendedAt: null,
          suspendedReason: null,
        });
        expect(await store.accounts.get('acc_1')).toEqual(created);
      });

      it('returns null for unknown ids', async () => {
        expect(await store.accounts.get('nope')).toBeNull();
        expect(await store.accounts.update('nope', { plan: 'paid' })).toBeNull();
      });

      // A client names these ids and emails (a path, sign-in): one holding U+0000, which no store
      // ever issued, is as unknown as any other — PostgreSQL refuses such text in a query outright.
      it('returns null for an id or email holding U+0000', async () => {
        await account('acc_1', 'ann@example.com');
        expect(await store.accounts.get('acc_1\u0000')).toBeNull();
        expect(await store.accounts.update('\u0000', { plan: 'paid' })).toBeNull();
        expect(await store.accounts.findByEmail('ann@example.com\u0000')).toBeNull();
        expect(await store.accounts.getPasswordHash('acc_1\u0000')).toBeNull();
        expect(await store.accounts.setPasswordHash('acc_1\u0000', 'h')).toBe(false);
      });

      it('updates only the patched fields', async () => {
        await account('acc_1');
        const paid = await store.accounts.update('acc_1', { plan: 'paid' });
        expect(paid).toMatchObject({ plan: 'paid', hasPaymentMethod: false });
        const withCard = await store.accounts.update('acc_1', { hasPaymentMethod: true });
        expect(withCard).toMatchObject({ plan: 'paid', hasPaymentMethod: true });
        const both = await store.accounts.update('acc_1', { plan: 'free', hasPaymentMethod: false });
        expect(both).toMatchObject({ plan: 'free', hasPaymentMethod: false });
        const untouched = await store.accounts.update('acc_1', {});
        expect(untouched).toEqual(await store.accounts.get('acc_1'));
        expect(untouched).toMatchObject({ plan: 'free', hasPaymentMethod: false });
      });

      it('changes the plan from the one named by planFrom only, in the same write', async () => {
        await account('acc_1');
        await account('acc_2');
        await store.accounts.update('acc_2', { plan: 'team' });
        const upgraded = await store.accounts.update('acc_1', { plan: 'paid', planFrom: 'free', hasPaymentMethod: true });
        expect(upgraded).toMatchObject({ plan: 'paid', hasPaymentMethod: true });
        const kept = await store.accounts.update('acc_2', { plan: 'paid', planFrom: 'free', hasPaymentMethod: true });
        expect(kept).toMatchObject({ plan: 'team', hasPaymentMethod: true });
        expect(await store.accounts.get('acc_2')).toMatchObject({ plan: 'team', hasPaymentMethod: true });
      });

      it('refuses a taken email, case-insensitively, with email_taken', async () => {
        const first = await account('acc_1', 'Ann@Example.com');
        expect(first.email).toBe('ann@example.com');
        const err = await account('acc_2', 'ann@EXAMPLE.COM').catch((e: unknown) => e);
        expect(err).toBeInstanceOf(GatewayError);
        expect((err as GatewayError).code).toBe('email_taken');
        expect((err as GatewayError).status).toBe(409);
        expect((err as GatewayError).vars).toEqual({ email: 'ann@EXAMPLE.COM' });
        expect(await store.accounts.get('acc_2')).toBeNull();
      });

      it('finds an account by email, case-insensitively', async () => {
        const created = await account('acc_1', 'Ann@Example.com');
        await account('acc_2', 'bob@example.com');
        expect(await store.accounts.findByEmail('ann@example.com')).toEqual(created);
        expect(await store.accounts.findByEmail('ANN@EXAMPLE.COM')).toEqual(created);
        expect(await store.accounts.findByEmail('nobody@example.com')).toBeNull();
      });

      it('stores, replaces and clears a password hash, never showing it on the account', async () => {
        await account('acc_1', 'ann@example.com');
        expect(await store.accounts.getPasswordHash('acc_1')).toBeNull();
        expect(await store.accounts.setPasswordHash('acc_1', 'scrypt$1$1$1$a$b')).toBe(true);
        expect(await store.accounts.getPasswordHash('acc_1')).toBe('scrypt$1$1$1$a$b');
        expect(await store.accounts.setPasswordHash('acc_1', 'scrypt$2$2$2$c$d')).toBe(true);
        expect(await store.accounts.getPasswordHash('acc_1')).toBe('scrypt$2$2$2$c$d');
        expect(JSON.stringify(await store.accounts.get('acc_1'))).not.toContain('scrypt');
        expect(JSON.stringify(await store.accounts.findByEmail('ann@example.com'))).not.toContain('scrypt');
        // Other updates leave it alone.
        await store.accounts.update('acc_1', { plan: 'paid', hasPaymentMethod: true });
        expect(await store.accounts.getPasswordHash('acc_1')).toBe('scrypt$2$2$2$c$d');
        expect(await store.accounts.setPasswordHash('acc_1', null)).toBe(true);
        expect(await store.accounts.getPasswordHash('acc_1')).toBeNull();
        expect(await store.accounts.setPasswordHash('nope', 'x')).toBe(false);
        expect(await store.accounts.getPasswordHash('nope')).toBeNull();
      });

      it('creates an account with its password hash in one step', async () => {
        const created = await store.accounts.create({ id: 'acc_1', email: 'a@b.c', plan: 'free', createdAt: T0, passwordHash: 'scrypt$h' });
        expect(created).toEqual({ id: 'acc_1', email: 'a@b.c', plan: 'free', hasPaymentMethod: false, createdAt: T0, suspendedAt: null, suspendedReason: null });
        expect(await store.accounts.getPasswordHash('acc_1')).toBe('scrypt$h');
      });

      it('suspends with a reason, keeps the rest, and lifts a suspension', async () => {
        await account('acc_1', 'ann@example.com', 'paid');
        const suspended = await store.accounts.update('acc_1', { suspension: { at: at(T0, 1000), reason: 'chargeback' } });
        expect(suspended).toMatchObject({ plan: 'paid', email: 'ann@example.com', suspendedAt: at(T0, 1000), suspendedReason: 'chargeback' });
        // Another patch leaves the suspension alone.
        expect(await store.accounts.update('acc_1', { plan: 'free' })).toMatchObject({ plan: 'free', suspendedAt: at(T0, 1000), suspendedReason: 'chargeback' });
        expect(await store.accounts.findByEmail('ANN@example.com')).toMatchObject({ suspendedAt: at(T0, 1000) });
        // Suspended again: still since the first time, for the reason given then unless another is.
        const again = await store.accounts.update('acc_1', { suspension: { at: at(T0, 2000), reason: null } });
        expect(again).toMatchObject({ suspendedAt: at(T0, 1000), suspendedReason: 'chargeback' });
        const reasoned = await store.accounts.update('acc_1', { suspension: { at: at(T0, 3000), reason: 'fraud' } });
        expect(reasoned).toMatchObject({ suspendedAt: at(T0, 1000), suspendedReason: 'fraud' });
        const lifted = await store.accounts.update('acc_1', { suspension: null });
        expect(lifted).toMatchObject({ plan: 'free', suspendedAt: null, suspendedReason: null });
        expect(await store.accounts.get('acc_1')).toEqual(lifted);
      });

      it('lists accounts newest first, suspended only, a page after another', async () => {
        for (let i = 1; i <= 5; i++) await store.accounts.create({ id: `acc_${i}`, email: `u${i}@example.com`, plan: 'free', createdAt: at(T0, i * 1000) });
        // Two created in the same millisecond: the id orders them, so no page skips or repeats one.
        await store.accounts.create({ id: 'acc_6a', email: null, plan: 'free', createdAt: at(T0, 6000) });
        await store.accounts.create({ id: 'acc_6b', email: null, plan: 'free', createdAt: at(T0, 6000) });
        const ids = async (q: Parameters<typeof store.accounts.list>[0]) => (await store.accounts.list(q)).map((a) => a.id);
        expect(await ids({ limit: 100 })).toEqual(['acc_6b', 'acc_6a', 'acc_5', 'acc_4', 'acc_3', 'acc_2', 'acc_1']);
        expect(await ids({ limit: 2 })).toEqual(['acc_6b', 'acc_6a']);
        expect(await ids({ limit: 2, before: { createdAt: at(T0, 6000), id: 'acc_6b' } })).toEqual(['acc_6a', 'acc_5']);
        expect(await ids({ limit: 3, before: { createdAt: at(T0, 3000), id: 'acc_3' } })).toEqual(['acc_2', 'acc_1']);
        await store.accounts.update('acc_2', { suspension: { at: at(T0, 9000), reason: null } });
        await store.accounts.update('acc_5', { suspension: { at: at(T0, 9000), reason: 'spam' } });
        expect(await ids({ limit: 10, suspended: true })).toEqual(['acc_5', 'acc_2']);
        expect(await ids({ limit: 1, suspended: true, before: { createdAt: at(T0, 5000), id: 'acc_5' } })).toEqual(['acc_2']);
        await store.accounts.update('acc_4', { plan: 'team' });
        await store.accounts.update('acc_2', { plan: 'team' });
        await store.accounts.update('acc_6a', { plan: 'team' });
        expect(await ids({ limit: 10, plan: 'team' })).toEqual(['acc_6a', 'acc_4', 'acc_2']);
        expect(await ids({ limit: 1, plan: 'team', before: { createdAt: at(T0, 6000), id: 'acc_6a' } })).toEqual(['acc_4']);
        expect(await ids({ limit: 10, plan: 'team', suspended: true })).toEqual(['acc_2']);
        expect(await ids({ limit: 10, plan: 'gold' })).toEqual([]);
      });

      it("changes an account's email, lowercased; one another account has is email_taken and changes nothing", async () => {
        await account('acc_1', 'ann@example.com');
        await account('acc_2', 'bob@example.com');
        expect(await store.accounts.update('acc_1', { email: 'Ann.New@Example.com' })).toMatchObject({ email: 'ann.new@example.com', plan: 'free' });
        expect((await store.accounts.findByEmail('ANN.NEW@example.com'))?.id).toBe('acc_1');
        expect(await store.accounts.findByEmail('ann@example.com')).toBeNull();
        await expect(store.accounts.update('acc_1', { email: 'BOB@example.com', plan: 'paid' })).rejects.toMatchObject({ code: 'email_taken' });
        expect(await store.accounts.get('acc_1')).toMatchObject({ email: 'ann.new@example.com', plan: 'free' });
        await account('acc_3', null);
        expect(await store.accounts.update('acc_3', { email: 'cy@example.com' })).toMatchObject({ email: 'cy@example.com' });
      });

      it('allows any number of accounts without an email', async () => {
        await account('acc_1', null);
        await account('acc_2', null);
        expect((await store.accounts.get('acc_2'))?.email).toBeNull();
      });
    });

    describe('keys', () => {
      beforeEach(async () => {
        await account('acc_a');
        await account('acc_b');
      });

      it('creates and finds a key by id and by hash', async () => {
        const created = await store.keys.create(newKey('key_1', 'acc_a'));
        expect(created).toEqual({ ...newKey('key_1', 'acc_a'), revokedAt: null, lastUsedAt: null, limit: null, expiresAt: null, models: null });
        expect(await store.keys.get('key_1')).toEqual(created);
        expect(await store.keys.findByHash('hash-key_1')).toEqual(created);
      });

      it('returns null or nothing for unknown ids and hashes', async () => {
        expect(await store.keys.get('nope')).toBeNull();
        expect(await store.keys.findByHash('nope')).toBeNull();
        expect(await store.keys.revoke('nope', T0)).toBeNull();
        expect(await store.keys.listByAccount('nope')).toEqual([]);
        await expect(store.keys.touchLastUsed('nope', T0)).resolves.toBeUndefined();
      });

      it('returns null or nothing for ids holding U+0000', async () => {
        await store.keys.create(newKey('key_1', 'acc_a'));
        expect(await store.keys.get('key_1\u0000')).toBeNull();
        expect(await store.keys.revoke('key_1\u0000', T0)).toBeNull();
        expect(await store.keys.listByAccount('acc_a\u0000')).toEqual([]);
      });

      it('refuses a key for an unknown account and a duplicate hash', async () => {
        await expect(store.keys.create(newKey('key_1', 'acc_missing'))).rejects.toThrow();
        await store.keys.create(newKey('key_1', 'acc_a'));
        await expect(store.keys.create({ ...newKey('key_2', 'acc_a'), hash: 'hash-key_1' })).rejects.toThrow();
        expect(await store.keys.get('key_2')).toBeNull();
      });

      it("lists one account's keys, oldest first", async () => {
        await store.keys.create(newKey('key_2', 'acc_a', at(T0, 2000)));
        await store.keys.create(newKey('key_1', 'acc_a', at(T0, 1000)));
        await store.keys.create(newKey('key_3', 'acc_b', at(T0, 500)));
        const listed = await store.keys.listByAccount('acc_a');
        expect(listed.map((k) => k.id)).toEqual(['key_1', 'key_2']);
        expect(listed.every((k) => k.accountId === 'acc_a')).toBe(true);
      });

      it('revokes, keeping the first revocation time', async () => {
        await store.keys.create(newKey('key_1', 'acc_a'));
        const first = at(T0, 60_000);
        expect((await store.keys.revoke('key_1', first))?.revokedAt).toBe(first);
        expect((await store.keys.revoke('key_1', at(T0, 120_000)))?.revokedAt).toBe(first);
        expect((await store.keys.findByHash('hash-key_1'))?.revokedAt).toBe(first);
        expect((await store.keys.get('key_1'))?.revokedAt).toBe(first);
      });

      it('keeps a credit limit given at creation, sets, changes and removes one', async () => {
        const limited = await store.keys.create({ ...newKey('key_1', 'acc_a'), limit: { credits: 9_000_000_000, window: 'month' } });
        expect(limited.limit).toEqual({ credits: 9_000_000_000, window: 'month' });
        await store.keys.create(newKey('key_2', 'acc_a'));
        expect((await store.keys.update('key_2', { limit: { credits: 500, window: 'day' } }))?.limit).toEqual({ credits: 500, window: 'day' });
        expect((await store.keys.findByHash('hash-key_2'))?.limit).toEqual({ credits: 500, window: 'day' });
        expect((await store.keys.update('key_2', { limit: { credits: 7, window: 'lifetime' } }))?.limit).toEqual({ credits: 7, window: 'lifetime' });
        expect((await store.keys.update('key_1', { limit: null }))?.limit).toBeNull();
        expect((await store.keys.get('key_1'))?.limit).toBeNull();
        expect(await store.keys.update('nope', { limit: null })).toBeNull();
        expect(await store.keys.update('key_1\u0000', { limit: null })).toBeNull();
      });

      it('keeps an expiry and a model list given at creation; an update sets only the fields it gives', async () => {
        const given = await store.keys.create({ ...newKey('key_1', 'acc_a'), expiresAt: at(T0, 86_400_000), models: ['gpt-4o-mini', 'flux/schnell'] });
        expect(given).toMatchObject({ expiresAt: at(T0, 86_400_000), models: ['gpt-4o-mini', 'flux/schnell'], limit: null });
        const plain = await store.keys.create(newKey('key_2', 'acc_a'));
        expect(plain).toMatchObject({ expiresAt: null, models: null });
        expect(await store.keys.findByHash('hash-key_1')).toMatchObject({ expiresAt: at(T0, 86_400_000), models: ['gpt-4o-mini', 'flux/schnell'] });

        const limited = await store.keys.update('key_1', { limit: { credits: 50, window: 'day' } });
        expect(limited).toMatchObject({ limit: { credits: 50, window: 'day' }, expiresAt: at(T0, 86_400_000), models: ['gpt-4o-mini', 'flux/schnell'] });
        const narrowed = await store.keys.update('key_1', { models: ['text-embedding-3-small'] });
        expect(narrowed).toMatchObject({ limit: { credits: 50, window: 'day' }, expiresAt: at(T0, 86_400_000), models: ['text-embedding-3-small'] });
        const both = await store.keys.update('key_1', { expiresAt: null, models: null });
        expect(both).toMatchObject({ limit: { credits: 50, window: 'day' }, expiresAt: null, models: null });
        expect(await store.keys.get('key_1')).toMatchObject({ limit: { credits: 50, window: 'day' }, expiresAt: null, models: null });
        expect((await store.keys.update('key_2', { expiresAt: at(T0, 1000) }))?.expiresAt).toBe(at(T0, 1000));
        expect((await store.keys.listByAccount('acc_a')).map((k) => k.expiresAt)).toEqual([null, at(T0, 1000)]);
        expect(await store.keys.update('nope', { models: null })).toBeNull();
      });

      it('records last use, never moving it backwards', async () => {
        await store.keys.create(newKey('key_1', 'acc_a'));
        await store.keys.create(newKey('key_2', 'acc_a'));
        await store.keys.touchLastUsed('key_1', at(T0, 5000));
        expect((await store.keys.get('key_1'))?.lastUsedAt).toBe(at(T0, 5000));
        await store.keys.touchLastUsed('key_1', at(T0, 9000));
        expect((await store.keys.get('key_1'))?.lastUsedAt).toBe(at(T0, 9000));
        await store.keys.touchLastUsed('key_1', at(T0, 1000));
        expect((await store.keys.get('key_1'))?.lastUsedAt).toBe(at(T0, 9000));
        expect((await store.keys.get('key_2'))?.lastUsedAt).toBeNull();
      });

      it('moves the credentials version on revocation, account changes, password changes and key limits, never on a touch', async () => {
        await store.keys.create(newKey('key_1', 'acc_a'));
        let v = await store.credentialsVersion();
        const moved = async () => {
          const next = await store.credentialsVersion();
          const changed = next !== v;
          v = next;
          return changed;
        };
        await store.keys.touchLastUsed('key_1', at(T0, 5000));
        await store.keys.create(newKey('key_2', 'acc_a'));
        await account('acc_c');
        expect(await moved()).toBe(false);
        await store.keys.revoke('key_1', at(T0, 6000));
        expect(await moved()).toBe(true);
        await store.accounts.update('acc_a', { plan: 'paid' });
        expect(await moved()).toBe(true);
        await store.accounts.update('acc_a', { suspension: { at: at(T0, 7000), reason: null } });
        expect(await moved()).toBe(true);
        await store.accounts.setPasswordHash('acc_b', 'scrypt$x');
        expect(await moved()).toBe(true);
        // A key's limit is read from the key cache like its revocation.
        await store.keys.update('key_2', { limit: { credits: 10, window: 'day' } });
        expect(await moved()).toBe(true);
        expect(await moved()).toBe(false);
        // So are its expiry and its models.
        await store.keys.update('key_2', { expiresAt: at(T0, 9000) });
        expect(await moved()).toBe(true);
        await store.keys.update('key_2', { models: ['gpt-4o-mini'] });
        expect(await moved()).toBe(true);
      });
    });

    describe('top-ups', () => {
      const topUp = (id: string, over: Partial<TopUp> = {}): TopUp => ({
        id, accountId: 'acc_a', credits: 500, source: 'admin', reference: null, createdAt: at(T0, 1000), ...over,
      });

      it('keeps each top-up, lists an account\'s newest first, and keeps a reference once per source', async () => {
        expect(await store.topUps.record(topUp('top_1'))).toBe(true);
        expect(await store.topUps.record(topUp('top_2', { credits: 9_000_000_000_000, createdAt: at(T0, 3000), source: 'stripe', reference: 'cs_1' }))).toBe(true);
        // The same session delivered again, under a new id: not kept twice.
        expect(await store.topUps.record(topUp('top_3', { createdAt: at(T0, 4000), source: 'stripe', reference: 'cs_1' }))).toBe(false);
        // The same reference from another source, or another account, is its own…
        expect(await store.topUps.record(topUp('top_4', { createdAt: at(T0, 2000), source: 'cli', reference: 'cs_1' }))).toBe(true);
        // …except between the admin API and the CLI, which share the operator's Idempotency-Keys.
        expect(await store.topUps.record(topUp('top_7', { createdAt: at(T0, 2500), source: 'admin', reference: 'cs_1' }))).toBe(false);
        expect(await store.topUps.record(topUp('top_5', { accountId: 'acc_b', source: 'stripe', reference: 'cs_1' }))).toBe(true);
        // Without a reference nothing is merged: two equal top-ups are two.
        expect(await store.topUps.record(topUp('top_6', { createdAt: at(T0, 500) }))).toBe(true);
        const listed = await store.topUps.list('acc_a', 10);
        expect(listed.map((t) => t.id)).toEqual(['top_2', 'top_4', 'top_1', 'top_6']);
        expect(listed[0]).toEqual(topUp('top_2', { credits: 9_000_000_000_000, createdAt: at(T0, 3000), source: 'stripe', reference: 'cs_1' }));
        expect((await store.topUps.list('acc_a', 2)).map((t) => t.id)).toEqual(['top_2', 'top_4']);
        // Page by page, a tie in time broken by id as in the first page.
        const all = (await store.topUps.list('acc_a', 100)).map((t) => t.id);
        const paged: string[] = [];
        for (let page = await store.topUps.list('acc_a', 1); page.length > 0; page = await store.topUps.list('acc_a', 1, paged.at(-1))) paged.push(page[0]!.id);
        expect(paged).toEqual(all);
        expect(await store.topUps.list('acc_a', 10, 'top_unknown')).toEqual([]);

        expect(await store.topUps.list('nope', 10)).toEqual([]);
        expect(await store.topUps.list('acc_a\u0000', 10)).toEqual([]);

        // Whether a reference was kept: by account and source.
        expect(await store.topUps.has('acc_a', 'stripe', 'cs_1')).toBe(true);
        expect(await store.topUps.has('acc_a', 'stripe', 'cs_2')).toBe(false);
        expect(await store.topUps.has('acc_a', 'billing', 'cs_1')).toBe(false);
        expect(await store.topUps.has('acc_c', 'stripe', 'cs_1')).toBe(false);
        expect(await store.topUps.has('acc_a\u0000', 'stripe', 'cs_1\u0000')).toBe(false);
      });

      it('keeps a reference once per space when the admin API and the CLI record it at the same moment', async () => {
        // An operator's Idempotency-Key sent through both at once: one credit (core/balances.ts),
        // both record it — and the history must hold it once, whichever commits first.
        for (let i = 0; i < 50; i++) {
          const kept = await Promise.all([
            store.topUps.record(topUp(`top_a${i}`, { source: 'admin', reference: `inv_${i}` })),
            store.topUps.record(topUp(`top_c${i}`, { source: 'cli', reference: `inv_${i}` })),
          ]);
          expect(kept.filter(Boolean), `inv_${i}`).toHaveLength(1);
        }
        expect(await store.topUps.list('acc_a', 1000)).toHaveLength(50);
      });
    });

    describe('shared secrets', () => {
      it('keeps the first value made for a name and hands it to every later caller, racing or not', async () => {
        expect(await store.sharedSecret('web.sessionSecret', () => 'first')).toBe('first');
        expect(await store.sharedSecret('web.sessionSecret', () => 'second')).toBe('first');
        // Two instances starting at once each make their own: both get the one stored.
        const raced = await Promise.all(Array.from({ length: 20 }, (_, i) => store.sharedSecret('other', () => `made ${i}`)));
        expect(new Set(raced).size).toBe(1);
        expect(raced[0]).toMatch(/^made \d+$/);
        expect(await store.sharedSecret('web.sessionSecret', () => 'third')).toBe('first');
      });
    });

    describe('ledger', () => {
      it('round-trips every field of a record', async () => {
        const r = usage({ keyId: null, surface: 'playground', status: 'aborted', httpStatus: 499, requestId: 'r1', provider: 'azure-eu' });
        await store.ledger.append(r);
        expect(await store.ledger.query({})).toEqual([r]);
      });

      it('keeps the provider that served a record, and none for one no provider served', async () => {
        const served = usage({ requestId: 'r1', provider: 'backup' });
        const failed = usage({ requestId: 'r2', createdAt: at(T0, 1), provider: null, credits: 0, status: 'error', httpStatus: 503 });
        await store.ledger.append(served);
        await store.ledger.append(failed);
        const drained = usage({ requestId: 'r3', createdAt: at(T0, 2), provider: 'fal' });
        expect(await store.ledger.appendMissing([drained])).toBe(1);
        expect((await store.ledger.query({})).map((r) => [r.requestId, r.provider])).toEqual([
          ['r3', 'fal'],
          ['r2', null],
          ['r1', 'backup'],
        ]);
        expect((await store.ledger.query({ accountId: 'acc_a' })).map((r) => r.provider)).toEqual(['fal', null, 'backup']);
      });

      it('appendMissing stores only the records whose request id it does not hold yet', async () => {
        const stored = usage({ requestId: 'r1', credits: 5, createdAt: at(T0, 1000) });
        await store.ledger.append(stored);
        const fresh = [usage({ requestId: 'r2', credits: 6, createdAt: at(T0, 2000) }), usage({ requestId: 'r3', credits: 7, createdAt: at(T0, 1000) })];
        expect(await store.ledger.appendMissing([{ ...stored, credits: 9 }, ...fresh])).toBe(2);
        expect(await store.ledger.appendMissing([stored, ...fresh])).toBe(0);
        expect(await store.ledger.appendMissing([])).toBe(0);
        const rows = await store.ledger.query({});
        expect(rows.map((r) => [r.requestId, r.credits]).sort()).toEqual([['r1', 5], ['r2', 6], ['r3', 7]]);
      });

      it('returns records newest first', async () => {
        for (const [i, ms] of [0, 3000, 1000, 2000].entries()) {
          await store.ledger.append(usage({ requestId: `r${i}`, createdAt: at(T0, ms) }));
        }
        const rows = await store.ledger.query({});
        expect(rows.map((r) => r.requestId)).toEqual(['r1', 'r3', 'r2', 'r0']);
      });

      it('bounds by time: from inclusive, to exclusive, a bare date meaning its start', async () => {
        await store.ledger.append(usage({ requestId: 'late24', createdAt: '2026-11-24T23:59:59.999Z' }));
        await store.ledger.append(usage({ requestId: 'start25', createdAt: '2026-11-25T00:00:00.000Z' }));
        await store.ledger.append(usage({ requestId: 'noon25', createdAt: '2026-11-25T12:00:00.000Z' }));
        await store.ledger.append(usage({ requestId: 'start26', createdAt: '2026-11-26T00:00:00.000Z' }));
        const ids = async (q: { from?: string; to?: string }) =>
          (await store.ledger.query(q)).map((r) => r.requestId);
        expect(await ids({ from: '2026-11-25', to: '2026-11-26' })).toEqual(['noon25', 'start25']);
        expect(await ids({ from: '2026-11-25T12:00:00.000Z' })).toEqual(['start26', 'noon25']);
        expect(await ids({ to: '2026-11-25T12:00:00.000Z' })).toEqual(['start25', 'late24']);
        expect(await ids({ from: '2026-11-25T00:00:00.001Z', to: '2026-11-26T00:00:00.001Z' })).toEqual([
          'start26',
          'noon25',
        ]);
        expect(await ids({ from: '2026-11-27' })).toEqual([]);
      });

      it('filters by account', async () => {
        await store.ledger.append(usage({ requestId: 'a1', accountId: 'acc_a' }));
        await store.ledger.append(usage({ requestId: 'b1', accountId: 'acc_b', createdAt: at(T0, 1) }));
        await store.ledger.append(usage({ requestId: 'a2', accountId: 'acc_a', createdAt: at(T0, 2) }));
        const rows = await store.ledger.query({ accountId: 'acc_a' });
        expect(rows.map((r) => r.requestId)).toEqual(['a2', 'a1']);
        expect(await store.ledger.query({ accountId: 'acc_none' })).toEqual([]);
        expect(await store.ledger.query({ accountId: 'acc_a\u0000' })).toEqual([]);
        expect(await store.ledger.daily({ accountId: 'acc_a\u0000' })).toEqual([]);
      });

      it('limits to the newest rows, 1000 by default', async () => {
        for (let i = 0; i < 1005; i++) {
          await store.ledger.append(usage({ requestId: `r${i}`, createdAt: at(T0, i * 1000) }));
        }
        const five = await store.ledger.query({ limit: 5 });
        expect(five.map((r) => r.requestId)).toEqual(['r1004', 'r1003', 'r1002', 'r1001', 'r1000']);
        const all = await store.ledger.query({});
        expect(all).toHaveLength(1000);
        expect(all.at(-1)?.requestId).toBe('r5');
        expect(await store.ledger.query({ limit: 100_000 })).toHaveLength(1005);
      });

      it('pages through every record, ties in time included, once each and in order', async () => {
        // 3 accounts, 5 records per millisecond: a page may end in the middle of a millisecond.
        for (let i = 0; i < 60; i++) {
          await store.ledger.append(usage({ requestId: `r${i}`, accountId: `acc_${'abc'[i % 3]}`, createdAt: at(T0, Math.floor(i / 5)) }));
        }
        const walk = async (q: { accountId?: string; from?: string; to?: string }, limit: number) => {
          const seen: string[] = [];
          let before: string | undefined;
          for (let pages = 1; ; pages++) {
            const page = await store.ledger.page({ ...q, limit, ...(before !== undefined && { before }) });
            seen.push(...page.records.map((r) => r.requestId));
            if (page.next === null) return { seen, pages };
            expect(page.records).toHaveLength(limit);
            before = page.next;
          }
        };
        for (const q of [{}, { accountId: 'acc_b' }, { from: at(T0, 3), to: at(T0, 9) }, { accountId: 'acc_a', from: at(T0, 2) }]) {
          const all = (await store.ledger.query({ ...q, limit: 10_000 })).map((r) => r.requestId);
          expect(all.length).toBeGreaterThan(5);
          for (const limit of [1, 4, 7, all.length, all.length + 1]) {
            const { seen, pages } = await walk(q, limit);
            expect(seen, `${JSON.stringify(q)} by ${limit}`).toEqual(all);
            expect(pages).toBe(Math.max(1, Math.ceil(all.length / limit)));
          }
        }
        // A cursor stays a position: records stored after it was given are not on the pages after it.
        const first = await store.ledger.page({ limit: 10 });
        await store.ledger.append(usage({ requestId: 'newer', createdAt: at(T0, 99) }));
        const second = await store.ledger.page({ limit: 10, before: first.next! });
        expect(second.records.map((r) => r.requestId)).not.toContain('newer');
        expect(second.records[0]!.createdAt <= first.records.at(-1)!.createdAt).toBe(true);
        // query() honours a cursor too, and daily totals ignore one.
        expect((await store.ledger.query({ limit: 10, before: first.next! })).map((r) => r.requestId)).toEqual(second.records.map((r) => r.requestId));
        const totals = await store.ledger.daily({});
        expect(await store.ledger.daily({ before: first.next! })).toEqual(totals);
      });

      it('refuses a cursor it could not have given', async () => {
        await expect(store.ledger.page({ before: 'bm90IGEgY3Vyc29y' })).rejects.toThrow(RangeError);
      });

      it('aggregates daily by day, account, model and surface with exact sums', async () => {
        const d1 = '2026-11-24T';
        const d2 = '2026-11-25T';
        const rows: Partial<UsageRecord>[] = [
          // day 1, acc_a, gpt-4o, api: two requests
          { createdAt: `${d1}00:00:00.000Z`, promptTokens: 10, outputTokens: 1, credits: 11 },
          { createdAt: `${d1}23:59:59.999Z`, promptTokens: 20, outputTokens: 2, credits: 22 },
          // day 1, acc_a, gpt-4o, playground
          { createdAt: `${d1}08:00:00.000Z`, surface: 'playground', promptTokens: 3, outputTokens: 4, credits: 7 },
          // day 1, acc_a, other model, api
          { createdAt: `${d1}09:00:00.000Z`, model: 'mini', promptTokens: 100, outputTokens: 0, credits: 1 },
          // day 2, acc_a, gpt-4o, api: three requests incl. an error that charged nothing
          { createdAt: `${d2}00:00:00.000Z`, promptTokens: 5, outputTokens: 5, credits: 10 },
          { createdAt: `${d2}01:00:00.000Z`, promptTokens: 6, outputTokens: 7, credits: 13 },
          { createdAt: `${d2}02:00:00.000Z`, promptTokens: 0, outputTokens: 0, credits: 0, status: 'error', httpStatus: 502 },
          // day 2, acc_b
          { createdAt: `${d2}03:00:00.000Z`, accountId: 'acc_b', model: 'mini', surface: 'playground', promptTokens: 1, outputTokens: 1, credits: 2 },
        ];
        for (const [i, r] of rows.entries()) await store.ledger.append(usage({ requestId: `r${i}`, ...r }));

        const row = (day: string, accountId: string, model: string, surface: string, n: number[]) => ({
          day,
          accountId,
          model,
          surface,
          requests: n[0],
          promptTokens: n[1],
          outputTokens: n[2],
          credits: n[3],
        });
        expect(await store.ledger.daily({})).toEqual([
          row('2026-11-25', 'acc_a', 'gpt-4o', 'api', [3, 11, 12, 23]),
          row('2026-11-25', 'acc_b', 'mini', 'playground', [1, 1, 1, 2]),
          row('2026-11-24', 'acc_a', 'gpt-4o', 'api', [2, 30, 3, 33]),
          row('2026-11-24', 'acc_a', 'gpt-4o', 'playground', [1, 3, 4, 7]),
          row('2026-11-24', 'acc_a', 'mini', 'api', [1, 100, 0, 1]),
        ]);
        expect(await store.ledger.daily({ accountId: 'acc_b' })).toEqual([
          row('2026-11-25', 'acc_b', 'mini', 'playground', [1, 1, 1, 2]),
        ]);
        expect(await store.ledger.daily({ accountId: 'acc_a', from: '2026-11-25', to: '2026-11-26' })).toEqual([
          row('2026-11-25', 'acc_a', 'gpt-4o', 'api', [3, 11, 12, 23]),
        ]);
        expect(await store.ledger.daily({ to: '2026-11-24' })).toEqual([]);
        // A range that cuts days counts only the records inside it.
        expect(await store.ledger.daily({ accountId: 'acc_a', from: '2026-11-24T08:30:00.000Z', to: '2026-11-25T00:30:00.000Z' })).toEqual([
          row('2026-11-25', 'acc_a', 'gpt-4o', 'api', [1, 5, 5, 10]),
          row('2026-11-24', 'acc_a', 'gpt-4o', 'api', [1, 20, 2, 22]),
          row('2026-11-24', 'acc_a', 'mini', 'api', [1, 100, 0, 1]),
        ]);
        expect(await store.ledger.daily({ from: '2026-11-25T02:00:00.000Z' })).toEqual([
          row('2026-11-25', 'acc_a', 'gpt-4o', 'api', [1, 0, 0, 0]),
          row('2026-11-25', 'acc_b', 'mini', 'playground', [1, 1, 1, 2]),
        ]);
      });
    });
  });
}
