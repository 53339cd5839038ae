import { expect, it } from 'vitest';
import { allDaily } from './all-daily.js';
import type { DailyUsage, Ledger, UsageQuery } from './ports.js';
import { MAX_QUERY_LIMIT } from './time.js';

/** A ledger's daily() over fixed rows, as the stores answer it: newest day first, `to` exclusive, at most `limit`. */
function ledgerOf(rows: DailyUsage[]): { ledger: Ledger; calls: UsageQuery[] } {
  const calls: UsageQuery[] = [];
  const daily = async (q: UsageQuery) => {
    calls.push(q);
    // Dates, or midnights (what allDaily sends): the day before `to` is the last included.
    const to = q.to === undefined ? '\uffff' : q.to.slice(0, 10);
    return rows.filter((r) => r.day < to && (q.from === undefined || r.day >= q.from)).slice(0, q.limit);
  };
  return { ledger: { daily } as unknown as Ledger, calls };
}

const row = (day: string, model: string): DailyUsage => ({ day, accountId: 'a', model, surface: 'api', requests: 1, promptTokens: 1, outputTokens: 1, credits: 1 });
const day = (i: number) => new Date(Date.UTC(2026, 0, 1) - i * 86_400_000).toISOString().slice(0, 10);

it('returns every row, paging past MAX_QUERY_LIMIT without losing or repeating a day cut between pages', async () => {
  // Three models a day, so the first page ends partway through a day.
  const rows = Array.from({ length: 4_000 }, (_, i) => [row(day(i), 'a'), row(day(i), 'b'), row(day(i), 'c')]).flat();
  const { ledger, calls } = ledgerOf(rows);
  const all = await allDaily(ledger, { accountId: 'a' });
  expect(all).toEqual(rows);
  expect(calls.length).toBe(2);
  expect(calls.every((c) => c.limit === MAX_QUERY_LIMIT)).toBe(true);
});

it('asks once when the first page is not full', async () => {
  const rows = [row(day(0), 'a'), row(day(1), 'a')];
  const { ledger, calls } = ledgerOf(rows);
  expect(await allDaily(ledger, { accountId: 'a', from: day(5), to: day(-1) })).toEqual(rows);
  expect(calls).toEqual([{ accountId: 'a', from: day(5), to: day(-1), limit: MAX_QUERY_LIMIT }]);
});
