// A ledger range as a CSV download (the admin API's and the web app's exports): every record,
// however many, read a page at a time so memory stays flat.
import { Readable } from 'node:stream';
import type { Ledger, UsagePage, UsageQuery, UsageRecord } from '../storage/ports.js';

/** Records per read of the ledger while an export streams (the ledger answers at most 10,000). */
const EXPORT_PAGE = 5000;

/**
 * `header`, then a line per record of `q`, newest first. The first page is read before this
 * resolves, so before the answer starts: a ledger that cannot be read is an error answer (503
 * storage_unavailable), not a 200 cut short after the header line. A read failing on a later page
 * can only cut the download, which no client takes for a whole file.
 */
export async function ledgerCsv(ledger: Ledger, q: UsageQuery, header: string, line: (r: UsageRecord) => string): Promise<Readable> {
  async function* lines(first: UsagePage) {
    yield header;
    for (let page = first; ; page = await ledger.page({ ...q, limit: EXPORT_PAGE, before: page.next })) {
      yield page.records.map(line).join('');
      if (page.next === null) return;
    }
  }
  return Readable.from(lines(await ledger.page({ ...q, limit: EXPORT_PAGE })));
}
