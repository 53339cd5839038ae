// Group commit for append-only writes: many callers' records become one INSERT. Each add() resolves
// only once the batch holding its record is committed, so "resolved" still means "durable".
//
// Flushing: when `maxRecords` are queued, or `maxDelayMs` after the first record of an idle queue,
// whichever comes first. `maxDelayMs: 0` flushes at the end of the current turn of the event loop
// (setImmediate, not a timer, whose shortest wait is 1 ms): what arrived together goes together,
// and nothing waits when the process is idle. One write is in flight at a time; whatever queues meanwhile goes out in
// the next write straight after (in chunks of at most `maxRecords`), so batches grow with load.
//
// Failure: every add() of the failed batch rejects with the write's error and its records are
// dropped, not retried: the caller learns the record is not stored and decides (a silent retry
// could also double-write a batch whose COMMIT succeeded but whose reply was lost).

export interface BatcherOptions {
  /** Flush as soon as this many records are queued; also the most records per write. Default 200. */
  maxRecords?: number;
  /** Flush at most this many ms after a record enters an idle queue. Default 5. */
  maxDelayMs?: number;
}

export interface BatcherStats {
  /** Writes attempted (successful + failed). */
  flushes: number;
  /** Records in successful writes. */
  written: number;
  failedFlushes: number;
  /** Records whose add() rejected because their write failed. */
  failed: number;
  /** The largest write so far, in records. */
  largestBatch: number;
  /** Queued and not yet being written. */
  queued: number;
}

interface Pending<T> {
  item: T;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class BatchClosedError extends Error {
  constructor() {
    super('the ledger is closed; no more records are accepted');
    this.name = 'BatchClosedError';
  }
}

export class Batcher<T> {
  private readonly maxRecords: number;
  private readonly maxDelayMs: number;
  private queue: Pending<T>[] = [];
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  /** True from the moment a drain starts until, synchronously, it finds the queue empty. */
  private active = false;
  private running: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly counts = { flushes: 0, written: 0, failedFlushes: 0, failed: 0, largestBatch: 0 };

  constructor(
    private readonly write: (items: T[]) => Promise<void>,
    opts: BatcherOptions = {},
  ) {
    this.maxRecords = opts.maxRecords ?? 200;
    this.maxDelayMs = opts.maxDelayMs ?? 5;
    if (!Number.isInteger(this.maxRecords) || this.maxRecords < 1) {
      throw new RangeError(`maxRecords must be a positive integer, got ${this.maxRecords}`);
    }
    if (!(this.maxDelayMs >= 0)) throw new RangeError(`maxDelayMs must be ≥ 0, got ${this.maxDelayMs}`);
  }

  add(item: T): Promise<void> {
    if (this.closed) return Promise.reject(new BatchClosedError());
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.active) return; // the running drain picks it up after the write in flight
      if (this.queue.length >= this.maxRecords) this.start();
      else this.timer ??= this.maxDelayMs === 0 ? setImmediate(() => this.start()) : setTimeout(() => this.start(), this.maxDelayMs);
    });
  }

  /** Writes everything queued now and waits for it (write errors go to the add() callers). */
  async flush(): Promise<void> {
    while (this.queue.length > 0 || this.active) {
      this.start();
      await this.running;
    }
  }

  /** Refuses further add() calls, then writes everything still queued. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  stats(): BatcherStats {
    return { ...this.counts, queued: this.queue.length };
  }

  private start(): void {
    if (this.timer !== undefined) {
      if (this.maxDelayMs === 0) clearImmediate(this.timer as NodeJS.Immediate);
      else clearTimeout(this.timer as NodeJS.Timeout);
    }
    this.timer = undefined;
    if (this.active || this.queue.length === 0) return;
    this.active = true;
    this.running = this.drain();
  }

  // Never rejects: write errors go to the add() callers of that batch.
  private async drain(): Promise<void> {
    // `active` is cleared in the same synchronous step that sees the queue empty, so an add() right
    // after cannot find it set and wait for a drain that has already finished.
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxRecords);
        this.counts.flushes++;
        this.counts.largestBatch = Math.max(this.counts.largestBatch, batch.length);
        try {
          await this.write(batch.map((p) => p.item));
          this.counts.written += batch.length;
          for (const p of batch) p.resolve();
        } catch (err) {
          this.counts.failedFlushes++;
          this.counts.failed += batch.length;
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.active = false;
    }
  }
}
