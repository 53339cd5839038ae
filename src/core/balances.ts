// Prepaid credit balances live in the counter store, next to the counters a request reserves
// against, so "reserve the worst case from the balance" is part of the same atomic step.
import type { CounterStore } from '../storage/counters.js';

/** All of one account's counters share the `{accountId}` hash tag (one Redis Cluster slot). */
export const accountKeyPrefix = (accountId: string) => `tg:{${accountId}}`;
export const balanceKey = (accountId: string) => `${accountKeyPrefix(accountId)}:balance`;

export class Balances {
  constructor(
    private readonly store: CounterStore,
    private readonly now: () => number,
  ) {}

  async get(accountId: string): Promise<number> {
    const [value] = await this.store.get([balanceKey(accountId)], this.now());
    return value ?? 0;
  }

  async add(accountId: string, amount: number): Promise<number> {
    return this.store.add(balanceKey(accountId), amount, null);
  }
}
