// The injected clock. Everything that reads time takes a Clock so tests can move it (past UTC
// midnight, past a TTL) instead of sleeping.

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock tests move by hand. */
export class ManualClock implements Clock {
  constructor(private ms: number = Date.UTC(2026, 10, 25, 12, 0, 0)) {}
  now(): number {
    return this.ms;
  }
  set(ms: number): void {
    this.ms = ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}

export function isoAt(clock: Clock): string {
  return new Date(clock.now()).toISOString();
}

/** The UTC calendar day `YYYY-MM-DD` of a timestamp: the key of every `day` window (SPEC §2). */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}
