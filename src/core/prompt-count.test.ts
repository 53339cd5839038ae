import { describe, expect, it } from 'vitest';
import { countPrompt, inModelTokens, QUICK_COUNT, type PromptBudget } from './prompt-count.js';

/** A prompt of `tokens` tokens whose counter stops just past its cap, as countText may; records each cap. */
function prompt(tokens: number) {
  const caps: number[] = [];
  const count = (cap: number) => {
    caps.push(cap);
    return Math.min(tokens, cap + 1);
  };
  return { caps, count };
}

const refused = new Error('insufficient balance');
function budget(tokensOver: number) {
  let reads = 0;
  const read = async (): Promise<PromptBudget> => {
    reads++;
    return {
      tokensOver,
      refuse: () => {
        throw refused;
      },
    };
  };
  return { read, reads: () => reads };
}

describe('countPrompt', () => {
  it('counts a short prompt once, without reading the budget', async () => {
    const p = prompt(500);
    const b = budget(0);
    expect(await countPrompt(p.count, Number.POSITIVE_INFINITY, b.read)).toBe(500);
    expect(p.caps).toEqual([QUICK_COUNT]);
    expect(b.reads()).toBe(0);
  });

  it('under a fixed ceiling at most QUICK_COUNT, counts to that ceiling only', async () => {
    const p = prompt(1_000_000);
    const b = budget(0);
    expect(await countPrompt(p.count, 5_000, b.read)).toBe(5_001);
    expect(p.caps).toEqual([5_000]);
    expect(b.reads()).toBe(0);
  });

  it('counts a long prompt only as far as the balance pays for, and refuses it past that', async () => {
    const p = prompt(3_000_000);
    const b = budget(20_000);
    await expect(countPrompt(p.count, Number.POSITIVE_INFINITY, b.read)).rejects.toBe(refused);
    expect(p.caps).toEqual([QUICK_COUNT, 20_000]);
  });

  it('refuses a long prompt whose exact count is the first the balance cannot pay for', async () => {
    const p = prompt(20_000);
    await expect(countPrompt(p.count, Number.POSITIVE_INFINITY, budget(20_000).read)).rejects.toBe(refused);
  });

  it('admits a long prompt the balance pays for, counted exactly', async () => {
    const p = prompt(19_999);
    expect(await countPrompt(p.count, Number.POSITIVE_INFINITY, budget(20_000).read)).toBe(19_999);
    expect(p.caps).toEqual([QUICK_COUNT, 20_000]);
  });

  it('leaves a long prompt to the fixed ceiling when there is no budget, or a larger one', async () => {
    const none = prompt(50_000);
    expect(await countPrompt(none.count, Number.POSITIVE_INFINITY, async () => undefined)).toBe(50_000);
    expect(none.caps).toEqual([QUICK_COUNT, Number.POSITIVE_INFINITY]);
    const larger = prompt(50_000);
    expect(await countPrompt(larger.count, 40_000, budget(90_000).read)).toBe(40_001);
    expect(larger.caps).toEqual([QUICK_COUNT, 40_000]);
  });
});

describe('inModelTokens (catalog promptTokenFactor and promptOverheadTokens)', () => {
  it('scales the count and adds the overhead, and stays exact up to its cap', () => {
    for (const [factor, overhead] of [[1.3, 0], [1, 150], [1.25, 120], [2, 7]] as const) {
      for (const tokens of [0, 1, 99, 100, 101, 1_000, 54_321]) {
        const scaled = Math.ceil(tokens * factor) + overhead;
        const count = inModelTokens(factor, overhead, prompt(tokens).count);
        expect(count(Number.POSITIVE_INFINITY)).toBe(scaled);
        for (const cap of [0, overhead, scaled - 1, scaled, scaled + 1, 10 * scaled + 5]) {
          const got = count(cap);
          // Exact whenever the scaled count is within the cap; past it, some number past the cap.
          if (scaled <= cap) expect(got, `${factor} ${overhead} ${tokens} ${cap}`).toBe(scaled);
          else expect(got, `${factor} ${overhead} ${tokens} ${cap}`).toBeGreaterThan(cap);
        }
      }
    }
  });

  it('is the count itself at factor 1 and no overhead', () => {
    const { count } = prompt(10);
    expect(inModelTokens(1, 0, count)).toBe(count);
  });
});
