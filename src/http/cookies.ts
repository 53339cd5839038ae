// Cookie header parsing and Set-Cookie serialisation (RFC 6265), just what the web app needs.

/** Cookies of a request by name; the first of duplicate names wins, as browsers send the most specific first. */
export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    if (name && !Object.hasOwn(out, name)) out[name] = value;
  }
  return out;
}

export interface CookieOptions {
  httpOnly?: boolean;
  sameSite: 'Lax' | 'Strict';
  secure: boolean;
  /** Seconds; 0 deletes the cookie. */
  maxAge: number;
}

export function serializeCookie(name: string, value: string, o: CookieOptions): string {
  let c = `${name}=${value}; Path=/; Max-Age=${o.maxAge}; SameSite=${o.sameSite}`;
  if (o.httpOnly) c += '; HttpOnly';
  if (o.secure) c += '; Secure';
  return c;
}
