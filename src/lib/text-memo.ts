// A bounded memo of numbers by text, for a pure function of a long string that costs far more
// than hashing it: the token count of a prompt's parts. Two generations instead of an LRU list: a
// hit in the older one moves the entry to the newer, and when the newer fills, the older is dropped
// whole — no per-hit bookkeeping, and what a busy gateway keeps seeing (system prompts, the
// history a chat client sends again on every turn) stays.
//
// The memory it may hold is a budget in characters (UTF-16 code units) per generation, plus a
// fixed charge per entry for the Map's own slot; a text longer than a generation's budget is never
// kept. It holds request text in the process's memory (as the requests in flight do), nowhere else.

/** What one entry costs beyond its text, in characters: the Map slot and the string's header. */
const ENTRY_OVERHEAD = 32;

export class TextMemo {
  private current = new Map<string, number>();
  private previous = new Map<string, number>();
  private used = 0;

  /** `budget`: characters per generation (two generations may be held). */
  constructor(private readonly budget: number) {}

  get(text: string): number | undefined {
    const n = this.current.get(text);
    if (n !== undefined) return n;
    const old = this.previous.get(text);
    if (old !== undefined) this.set(text, old);
    return old;
  }

  set(text: string, value: number): void {
    const cost = text.length + ENTRY_OVERHEAD;
    if (cost > this.budget) return;
    if (this.used + cost > this.budget) {
      this.previous = this.current;
      this.current = new Map();
      this.used = 0;
    }
    this.current.set(text, value);
    this.used += cost;
  }

  /** Entries held, both generations (tests). */
  get size(): number {
    return this.current.size + this.previous.size;
  }
}
