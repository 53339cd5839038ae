import { describe, expect, it } from 'vitest';
import { nestsDeeperThan } from './json-depth.js';
import { seededRandom } from './prng.js';

/** The first version, a loop over every character: what the indexOf search must agree with. */
function reference(text: string, max: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      for (i++; i < text.length; i++) {
        if (text[i] === '\\') i++;
        else if (text[i] === '"') break;
      }
    } else if (c === '{' || c === '[') {
      if (++depth > max) return true;
    } else if (c === '}' || c === ']') depth--;
  }
  return false;
}

describe('nestsDeeperThan', () => {
  it('counts objects and arrays inside one another, not side by side', () => {
    expect(nestsDeeperThan('{"a":[{"b":1}]}', 3)).toBe(false);
    expect(nestsDeeperThan('{"a":[{"b":[]}]}', 3)).toBe(true);
    expect(nestsDeeperThan('[[],[],[],[],[]]', 2)).toBe(false);
    expect(nestsDeeperThan('1', 0)).toBe(false);
  });

  it('skips brackets inside strings, escaped quotes included', () => {
    expect(nestsDeeperThan(JSON.stringify({ a: '[[[[{{{{' }), 1)).toBe(false);
    expect(nestsDeeperThan(JSON.stringify({ a: 'say \\"[[[[\\" and "{{{"' }), 1)).toBe(false);
    expect(nestsDeeperThan(JSON.stringify(['\\', [[1]]]), 2)).toBe(true);
  });

  it('agrees with a character-by-character scan on any text, backslash runs and unclosed strings included', () => {
    const random = seededRandom(6);
    const int = (n: number) => Math.floor(random() * n);
    const alphabet = ['"', '\\', '\\', '[', ']', '{', '}', 'a', ':', ','];
    for (let n = 0; n < 20_000; n++) {
      const len = 1 + int(40);
      let text = '';
      for (let i = 0; i < len; i++) text += alphabet[int(alphabet.length)];
      const max = int(4);
      expect(nestsDeeperThan(text, max), `${JSON.stringify(text)} max ${max}`).toBe(reference(text, max));
    }
  });

  it('finds the depth of a body too deep to serialise again', () => {
    const deep = `{"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    expect(nestsDeeperThan(deep, 256)).toBe(true);
    expect(() => JSON.stringify(JSON.parse(deep))).toThrow(RangeError);
  });
});
