// The other half of the receipts outbox (storage/counters.ts Receipts). With a counter store shared
// by processes, a request's settlement keeps its ledger record as a receipt in the same atomic
// step; the gateway then appends the record and tells this drain, which forgets the receipt. A
// receipt nobody forgets — its process was killed between settling and the ledger's commit, or
// the ledger refused the append — is written by the periodic drain of whichever instance runs it
// first. Writing one twice is harmless: the ledger keeps one record per request id.
//
// The other way round too: a request that settled while the counter store was unreachable had its
// charge written to the ledger with its record (storage/ports.ts OwedCharges), and the drain
// applies such owed charges to the store once it answers, whoever served them.
import type { Clock } from '../lib/clock.js';
import { CounterStoreUnavailableError, type Receipts } from '../storage/counters.js';
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

/**
 * A settlement's receipt: its ledger record and when it was kept (ms). The drain's grace counts
 * from then, not from the record's createdAt, which is the admission: a 30 s stream's receipt was
 * otherwise due the moment it was kept, and written by the drain while its own process was still
 * writing it (a second ledger row on a store without a unique request id).
 */
export function receiptOf(record: UsageRecord, keptAt: number): string {
  return JSON.stringify({ ...record, keptAt });
}

/** Receipts read per drain round; a longer backlog takes several rounds, each in one ledger batch. */
const DRAIN_BATCH = 500;

/** Owed charges taken per ledger transaction (each is one counter-store call while it is open). */
const OWED_BATCH = 100;

/**
 * How long the counter store remembers an owed charge it applied (Receipts.charge). A drain that
 * applied some of its batch and then went silent — its host lost power or the network, so no FIN
 * reaches PostgreSQL — keeps the rows locked until PostgreSQL gives up on the connection (TCP
 * keepalive: about 2 h 11 min by default), and the next drain applies them again then. With the
 * store's usual 15 minutes it had forgotten them, and counted them twice.
 */
const OWED_MEMORY_MS = 24 * 3_600_000;

export class ReceiptDrain {
  private readonly timer: NodeJS.Timeout;
  /** Ids whose records the ledger holds, forgotten together at the end of the event-loop turn. */
  private written: string[] = [];
  private flushScheduled = false;
  /** One acknowledgement in flight at a time; what arrives meanwhile goes in the next. */
  private acking: Promise<void> = Promise.resolve();
  private draining: Promise<number> | undefined;
  /** soon() came during a round: another follows it. */
  private again = false;
  private closed = false;

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
      this.o.logger.warn({ err, receipts: ids.length }, 'forgetting written receipts failed; a later drain retries');
    }
  }

  /**
   * Writes receipts older than the grace to the ledger and forgets them, then applies owed charges
   * (applyOwed); returns how many receipts were written. One round at a time; a call during a round
   * joins it.
   */
  drain(): Promise<number> {
    this.draining ??= this.round().finally(() => {
      this.draining = undefined;
      if (this.again && !this.closed) {
        this.again = false;
        void this.drain();
      }
    });
    return this.draining;
  }

  /**
   * A round now, or straight after the one running (which may have met the outage that just
   * ended): for when the counter store answers again, so the charges owed since it went away
   * land at once rather than a period later — until they do, the counters miss them.
   */
  soon(): void {
    if (this.closed) return;
    if (this.draining) this.again = true;
    else void this.drain();
  }

  private async round(): Promise<number> {
    const written = await this.writeReceipts();
    await this.applyOwed();
    return written;
  }

  /**
   * Applies owed charges (storage/ports.ts OwedCharges) to the counter store; returns how many.
   * Each is applied by Receipts.charge, once per request id: a charge whose settlement did land
   * after all (its reply was lost in the outage) answers false and is done too. No age to wait
   * for: a charge is in the ledger only once its process handed it over (core/plan-meter.ts
   * handOver) and will never apply it itself, and the ledger lets one process take it at a time.
   */
  async applyOwed(): Promise<number> {
    const owed = this.o.ledger.owed;
    if (!owed) return 0;
    let total = 0;
    try {
      for (;;) {
        let unreachable = false;
        const forgotten = await owed.settle(OWED_BATCH, async (due) => {
          const applied: string[] = [];
          for (const o of due) {
            try {
              await this.o.receipts.charge(o.requestId, o.charges, '', OWED_MEMORY_MS);
              applied.push(o.requestId);
            } catch (err) {
              // Still (or again) down: what was applied so far is forgotten, the rest waits.
              if (err instanceof CounterStoreUnavailableError) {
                unreachable = true;
                break;
              }
              // Only a bug or a hand-edited row gets here, and it would fail the same way every round.
              this.o.logger.error({ err, owed: o }, 'an owed charge the counter store refuses; dropped');
              applied.push(o.requestId);
            }
          }
          return applied;
        });
        total += forgotten;
        if (unreachable || forgotten < OWED_BATCH) break;
      }
    } catch (err) {
      this.o.logger.warn({ err }, 'applying owed charges failed; the next drain retries');
    }
    if (total > 0) this.o.logger.warn({ charges: total }, 'applied charges owed since the limiter was unreachable');
    return total;
  }

  private async writeReceipts(): Promise<number> {
    let total = 0;
    try {
      for (;;) {
        const due = this.o.clock.now() - this.o.graceMs;
        const found = await this.o.receipts.pending(DRAIN_BATCH);
        const records: UsageRecord[] = [];
        const unreadable: string[] = [];
        for (const { id, receipt } of found) {
          const kept = parse(receipt);
          if (kept) {
            const { keptAt, ...record } = kept;
            if ((keptAt ?? Date.parse(record.createdAt)) <= due) records.push(record);
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
        // Remembered as charged, as long as an owed charge is: a receipt left here may be one whose
        // settlement's reply was lost, its charge also owed in the ledger (applyOwed).
        await this.o.receipts.acknowledge([...records.map((r) => r.requestId), ...unreadable], OWED_MEMORY_MS);
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
    this.closed = true;
    clearInterval(this.timer);
    await this.draining;
    this.acking = this.acking.then(() => this.flush());
    await this.acking;
  }
}

/**
 * A receipt's record and when it was kept (absent in receipts written before keptAt existed). A
 * receipt kept before records named their provider has none: null, as the ledger has for them.
 */
function parse(receipt: string): (UsageRecord & { keptAt?: number }) | null {
  try {
    const r = JSON.parse(receipt) as UsageRecord & { keptAt?: unknown };
    if (r?.keptAt !== undefined && !Number.isFinite(r.keptAt)) delete r.keptAt;
    if (r !== null && typeof r === 'object' && typeof r.provider !== 'string') r.provider = null;
    return typeof r?.requestId === 'string' && typeof r.createdAt === 'string' && Number.isFinite(Date.parse(r.createdAt)) ? (r as UsageRecord & { keptAt?: number }) : null;
  } catch {
    return null;
  }
}
