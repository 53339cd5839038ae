// How far to count a prompt before its upstream call. Counting is linear in what is counted, and a
// request body may hold 10 MB of text: a plan with a fixed credits ceiling caps the count at what
// that ceiling could pay for (gateway.promptCap), but a prepaid balance has no fixed ceiling, and
// a paid account with an empty balance sending 9 MB of text held the event loop ~350 ms before its
// refusal. So a long prompt is counted in full only as far as the balance, as it stands, pays for.

/** Prompts up to this many tokens are counted whole, with no read of any balance (~1 ms of counting). */
export const QUICK_COUNT = 8_192;

export interface PromptBudget {
  /** The fewest prompt tokens the balance, as it stands, cannot pay for (Infinity: no bound). */
  tokensOver: number;
  /** Throws the plan's refusal: the prompt alone costs more than the balance holds. */
  refuse(): never;
}

/**
 * The prompt's token count, where `count(cap)` counts exactly up to `cap` and may stop at any
 * number above it, and `ceiling` is promptCap's fixed bound. A prompt whose count passes both
 * QUICK_COUNT and its budget is refused through the budget: its count stopped short, so it cannot
 * price a reservation, and the reservation would refuse it now anyway (its prompt alone costs more
 * than the balance holds). A budget that cannot be read (undefined: a plan without a balance, or a
 * limiter that does not answer) leaves the count to the fixed ceiling, and the admission to decide.
 */
export async function countPrompt(
  count: (cap: number) => number,
  ceiling: number,
  budget: () => Promise<PromptBudget | undefined>,
): Promise<number> {
  if (ceiling <= QUICK_COUNT) return count(ceiling);
  const quick = count(QUICK_COUNT);
  if (quick <= QUICK_COUNT) return quick;
  const b = await budget();
  if (b === undefined || b.tokensOver >= ceiling) return count(ceiling);
  const tokens = count(b.tokensOver);
  if (tokens >= b.tokensOver) b.refuse();
  return tokens;
}

/**
 * `count` (exact up to its cap, in OpenAI's encoding) as a count of the model's own tokens: times
 * `factor`, plus `overhead` (the catalog's promptTokenFactor and promptOverheadTokens). Exact up to
 * its cap as well: the raw count is asked for as far as the scaled cap allows, and a raw count that
 * stopped past that is, scaled, past the cap.
 */
export function inModelTokens(factor: number, overhead: number, count: (cap: number) => number): (cap: number) => number {
  if (factor === 1 && overhead === 0) return count;
  return (cap) => {
    const raw = count(Number.isFinite(cap) ? Math.max(0, Math.floor((cap - overhead) / factor)) : cap);
    return Math.ceil(raw * factor) + overhead;
  };
}
