import { describe, expect, it } from 'vitest';
import { isObject } from './is-object.js';

describe('isObject', () => {
  it('is true for objects only, not null, arrays or other values', () => {
    expect([{}, { a: 1 }, Object.create(null)].map(isObject)).toEqual([true, true, true]);
    expect([null, undefined, [], [1], 'x', 1, true].map(isObject)).toEqual([false, false, false, false, false, false, false]);
  });
});
