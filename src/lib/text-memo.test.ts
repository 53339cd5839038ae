import { describe, expect, it } from 'vitest';
import { TextMemo } from './text-memo.js';

const text = (c: string, n = 68) => c.repeat(n); // 68 + 32 = 100 characters of budget each

describe('TextMemo', () => {
  it('answers what it was told, for an equal string built anew', () => {
    const memo = new TextMemo(1000);
    memo.set(text('a'), 7);
    expect(memo.get(JSON.parse(JSON.stringify(text('a'))) as string)).toBe(7);
    expect(memo.get(text('b'))).toBeUndefined();
  });

  it('holds at most two generations of its budget, dropping the older whole', () => {
    const memo = new TextMemo(300); // three entries per generation
    for (const c of 'abcdefg') memo.set(text(c), c.charCodeAt(0));
    // a b c filled the first generation, d e f the second, g started a third: a b c are gone.
    expect(memo.size).toBe(4);
    for (const c of 'abc') expect(memo.get(text(c))).toBeUndefined();
    for (const c of 'defg') expect(memo.get(text(c))).toBe(c.charCodeAt(0));
  });

  it('keeps what is used: a hit in the older generation moves the entry to the newer', () => {
    const memo = new TextMemo(300);
    for (const c of 'abc') memo.set(text(c), 1);
    for (const c of 'def') memo.set(text(c), 2); // a b c are the older generation now
    expect(memo.get(text('a'))).toBe(1); // moved: d e f are the older generation, a the newer
    for (const c of 'gh') memo.set(text(c), 3); // the newer fills (a g h)
    memo.set(text('i'), 4); // and is the older one now: d e f dropped, a kept
    expect(memo.get(text('a'))).toBe(1);
    expect(memo.get(text('d'))).toBeUndefined();
  });

  it('never keeps a text longer than a generation', () => {
    const memo = new TextMemo(300);
    memo.set(text('x', 400), 1);
    expect(memo.get(text('x', 400))).toBeUndefined();
    expect(memo.size).toBe(0);
  });
});
