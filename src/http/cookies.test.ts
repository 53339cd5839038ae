import { describe, expect, it } from 'vitest';
import { parseCookies, serializeCookie } from './cookies.js';

describe('cookies', () => {
  it('parses a Cookie header, first name wins', () => {
    expect(parseCookies('a=1; b=x.y-z_; a=2; bad; =v; q="quoted"')).toEqual({ a: '1', b: 'x.y-z_', q: 'quoted' });
    expect(parseCookies(undefined)).toEqual({});
  });

  it('serialises with path, lifetime and flags', () => {
    expect(serializeCookie('tg_session', 'v', { httpOnly: true, sameSite: 'Lax', secure: true, maxAge: 60 })).toBe(
      'tg_session=v; Path=/; Max-Age=60; SameSite=Lax; HttpOnly; Secure',
    );
    expect(serializeCookie('tg_csrf', '', { sameSite: 'Strict', secure: false, maxAge: 0 })).toBe('tg_csrf=; Path=/; Max-Age=0; SameSite=Strict');
  });
});
