// The other half of the receipts outbox (storage/counters.ts Receipts). With a counter store shared
// by processes, a request's settlement keeps its ledger record as a receipt in the same atomic
// step; the gateway then appends the record and tells this drain, which forgets the receipt. A
// receipt nobody forgets — its process was killed between settling and the ledger's commit, or
// the ledger refused the append — is written by the periodic drain of whichever instance runs it
// first. Writing one twice is harmless: the ledger keeps one record per request id.
import type { Clock } from '../lib/clock.js';
import type { Receipts } from '../storage/counters.js';
import type { Ledger, UsageRecord } from '../storage/ports.js';

export interface ReceiptDrainOptions {
  receipts: Receipts;
  ledger: Ledger;
  clock: Clock;
  /** How often to write what others left behind (the reservation TTL: a dead process's leftovers settle within about one). */
  everyMs: number;
  /** Receipts younger than this are left alone: their own process is most likely writing them. */
  graceMs: number;
  logger: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

/** Receipts read per drain round; a longer backlog takes several rounds, each in one ledger batch. */
const DRAIN_BATCH = 500;

export class ReceiptDrain {
  private readonly timer: NodeJS.Timeout;
  /** Ids whose records the ledger holds, forgotten together at the end of the event-loop turn. */
  private written: string[] = [];
  private flushScheduled = false;
  /** One acknowledgement in flight at a time; what arrives meanwhile goes in the next. */
  private acking: Promise<void> = Promise.resolve();
  private draining: Promise<number> | undefined;

  constructor(private readonly o: ReceiptDrainOptions) {
    this.timer = setInterval(() => void this.drain(), o.everyMs);
    this.timer.unref();
  }

  /** The ledger holds this request's record: its receipt can go. */
  recorded(requestId: string): void {
    this.written.push(requestId);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.acking = this.acking.then(() => this.flush());
    });
  }

  private async flush(): Promise<void> {
    const ids = this.written;
    if (ids.length === 0) return;
    this.written = [];
    try {
      await this.o.receipts.acknowledge(ids);
    } catch (err) {
      // Kept receipts are only written again (a no-op in the ledger) by a later drain.
      this.o.logger.warn({ err, receipts: ids.length }, 'forgetting written receipts failed; the drain will');
    }
  }

  /**
   * Writes receipts older than the grace to the ledger and forgets them; returns how many were
   * written. One round at a time; a call during a round joins it.
   */
  drain(): Promise<number> {
    this.draining ??= this.round().finally(() => (this.draining = undefined));
    return this.draining;
  }

  private async round(): Promise<number> {
    let total = 0;
    try {
      for (;;) {
        const due = this.o.clock.now() - this.o.graceMs;
        const found = await this.o.receipts.pending(DRAIN_BATCH);
        const records: UsageRecord[] = [];
        const unreadable: string[] = [];
        for (const { id, receipt } of found) {
          const record = parse(receipt);
          if (record) {
            if (Date.parse(record.createdAt) <= due) records.push(record);
            continue;
          }
          // Only something other than Tollgate writes such a value; the log keeps it.
          this.o.logger.error({ id, receipt }, 'unreadable receipt dropped');
          unreadable.push(id);
        }
        let written = 0;
        try {
          if (records.length > 0) written = await this.o.ledger.appendMissing(records);
        } catch (err) {
          this.o.logger.warn({ err }, 'writing left-behind receipts to the ledger failed; the next drain retries');
          await this.o.receipts.acknowledge(unreadable);
          return total;
        }
        await this.o.receipts.acknowledge([...records.map((r) => r.requestId), ...unreadable]);
        total += written;
        if (found.length < DRAIN_BATCH || records.length + unreadable.length === 0) return total;
      }
    } catch (err) {
      this.o.logger.warn({ err }, 'receipt drain failed; the next one retries');
      return total;
    }
  }

  /** Stops the timer and forgets the receipts of what was written so far. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.draining;
    this.acking = this.acking.then(() => this.flush());
    await this.acking;
  }
}

function parse(receipt: string): UsageRecord | null {
  try {
    const r = JSON.parse(receipt) as UsageRecord;
    return typeof r?.requestId === 'string' && typeof r.createdAt === 'string' && Number.isFinite(Date.parse(r.createdAt)) ? r : null;
  } catch {
    return null;
  }
}
