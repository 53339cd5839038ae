import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../lib/clock.js';
import { randomIds } from '../lib/ids.js';
import { MemoryCounterStore } from '../storage/memory/counters.js';
import type { Storage, TopUpStore } from '../storage/ports.js';
import { openSqliteStorage } from '../storage/sqlite/index.js';
import { AccountService } from './accounts.js';
import { Balances } from './balances.js';

describe("AccountService: the balance's history", () => {
  let storage: Storage;
  let topUps: TopUpStore & { failNext: boolean };
  let accounts: AccountService;
  let balances: Balances;
  let clock: ManualClock;
  let counters: MemoryCounterStore;

  beforeEach(async () => {
    storage = openSqliteStorage('sqlite::memory:');
    clock = new ManualClock();
    counters = new MemoryCounterStore();
    balances = new Balances(counters, () => clock.now());
    // The real store, whose next record() can fail as a crash between the credit and its record would.
    topUps = Object.assign(Object.create(storage.topUps) as TopUpStore, { failNext: false });
    topUps.record = async (t) => {
      if (topUps.failNext) {
        topUps.failNext = false;
        throw new Error('disk full');
      }
      return storage.topUps.record(t);
    };
    accounts = new AccountService(storage.accounts, balances, { plans: { paid: {} as never }, defaultPlan: 'paid' }, clock, randomIds, topUps);
  });
  afterEach(() => storage.close());

  it('records each top-up with its source; a retry under the same key writes the record the first attempt lost', async () => {
    const { id } = await accounts.create({ plan: 'paid' });
    await accounts.addCredits(id, 100, 'cli');
    clock.advance(1000);
    topUps.failNext = true;
    await expect(accounts.addCreditsOnce(id, 500, 'order-9', 'admin')).rejects.toThrow('disk full');
    expect(await balances.get(id)).toBe(600); // credited, not recorded
    expect((await accounts.topUpHistory(id, 10)).data.map((t) => t.credits)).toEqual([100]);
    const retry = await accounts.addCreditsOnce(id, 500, 'order-9', 'admin');
    expect(retry).toMatchObject({ replayed: true, account: { balance: 600 } });
    const history = (await accounts.topUpHistory(id, 10)).data;
    expect(history.map((t) => [t.credits, t.source, t.reference])).toEqual([
      [500, 'admin', 'order-9'],
      [100, 'cli', null],
    ]);
    // Once recorded, another retry adds no second record.
    await accounts.addCreditsOnce(id, 500, 'order-9', 'admin');
    expect((await accounts.topUpHistory(id, 10)).data).toHaveLength(2);
    await expect(accounts.topUpHistory('acct_missing', 10)).rejects.toMatchObject({ code: 'account_not_found' });
  });

  it('a keyless top-up whose record fails still answers its credit (a retry would credit twice) and says so', async () => {
    const { id } = await accounts.create({ plan: 'paid' });
    const failures: unknown[] = [];
    accounts.onRecordFailed = (err) => failures.push(err);
    topUps.failNext = true;
    expect((await accounts.addCredits(id, 300, 'admin')).balance).toBe(300);
    expect(failures).toMatchObject([{ message: 'disk full' }]);
    expect((await accounts.topUpHistory(id, 10)).data).toEqual([]);
  });

  it('a key used through the admin API and retried through the CLI is one top-up and one record', async () => {
    const { id } = await accounts.create({ plan: 'paid' });
    await accounts.addCreditsOnce(id, 500, 'inv-1', 'admin');
    expect(await accounts.addCreditsOnce(id, 500, 'inv-1', 'cli')).toMatchObject({ replayed: true, account: { balance: 500 } });
    expect((await accounts.topUpHistory(id, 10)).data.map((t) => [t.credits, t.source, t.reference])).toEqual([[500, 'admin', 'inv-1']]);
  });

  it('records a top-up under a key used again after the key was forgotten (24 h): a second credit, a second record', async () => {
    const { id } = await accounts.create({ plan: 'paid' });
    await accounts.addCreditsOnce(id, 500, 'invoice-1', 'admin');
    clock.advance(24 * 60 * 60 * 1000 + 1);
    await counters.sweep(clock.now());
    // Past the key's memory the same key adds again (README: "at most once per key and account for 24 hours")…
    expect(await accounts.addCreditsOnce(id, 500, 'invoice-1', 'admin')).toMatchObject({ replayed: false, account: { balance: 1000 } });
    // …and the history shows both credits: the balance is what its records add up to.
    const history = (await accounts.topUpHistory(id, 10)).data;
    expect(history.reduce((sum, t) => sum + t.credits, 0)).toBe(1000);
    // A replay of the second within its 24 h is still kept once.
    await accounts.addCreditsOnce(id, 500, 'invoice-1', 'admin');
    expect((await accounts.topUpHistory(id, 10)).data).toHaveLength(2);
  });
});
