// Ledger.daily answers at most MAX_QUERY_LIMIT rows; reports that must show every day page through it.
import type { DailyUsage, Ledger, UsageQuery } from './ports.js';
import { MAX_QUERY_LIMIT } from './time.js';

/**
 * Every daily row a query matches, newest day first (the CLI's `usage`, the web app's Usage page).
 * One ledger query answers at most MAX_QUERY_LIMIT rows (the newest), and a report of those alone
 * silently lost the older days; so a page that comes back full is kept up to its oldest day, of
 * which it may hold only part, and the next page ends after that day.
 */
export async function allDaily(ledger: Ledger, q: UsageQuery): Promise<DailyUsage[]> {
  const rows: DailyUsage[] = [];
  let to = q.to;
  for (;;) {
    const page = await ledger.daily({ ...q, ...(to !== undefined && { to }), limit: MAX_QUERY_LIMIT });
    if (page.length < MAX_QUERY_LIMIT) return [...rows, ...page];
    const oldest = page.at(-1)!.day;
    const newer = page.filter((r) => r.day !== oldest);
    // Only a single day with MAX_QUERY_LIMIT models and surfaces could fill a page alone.
    if (newer.length === 0) throw new Error(`more than ${MAX_QUERY_LIMIT} usage rows on ${oldest}`);
    rows.push(...newer);
    to = new Date(Date.parse(`${oldest}T00:00:00.000Z`) + 86_400_000).toISOString();
  }
}
