import { describe, expect, it } from 'vitest';
import { charsetOf, UTF8_CHARSETS } from './charset.js';

describe('charsetOf', () => {
  it('reads the parameter in any case, spacing and quoting', () => {
    expect(charsetOf('application/json; charset=UTF-8')).toBe('utf-8');
    expect(charsetOf('application/json;charset="utf-16"')).toBe('utf-16');
    expect(charsetOf('application/json ; foo=bar ;  Charset = ISO-8859-1 ')).toBe('iso-8859-1');
  });

  it('is undefined without one, or for a parameter that only mentions the word', () => {
    expect(charsetOf(undefined)).toBeUndefined();
    expect(charsetOf('application/json')).toBeUndefined();
    expect(charsetOf('application/json; profile="charset"')).toBeUndefined();
  });

  it('accepts UTF-8 spellings and ASCII, nothing else', () => {
    expect(['utf-8', 'utf8', 'us-ascii'].every((c) => UTF8_CHARSETS.has(c))).toBe(true);
    expect(UTF8_CHARSETS.has('utf-16')).toBe(false);
    expect(UTF8_CHARSETS.has('iso-8859-1')).toBe(false);
  });
});
