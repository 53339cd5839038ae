// The charset a request's Content-Type declares. JSON exchanged between systems is UTF-8 (RFC 8259
// §8.1), and Fastify reads every JSON body as UTF-8: a body declared in another charset is refused
// rather than decoded wrongly (a latin-1 "é" reached the model as U+FFFD).

/** The declared charsets a body is read in as it is: UTF-8 and its ASCII subset. */
export const UTF8_CHARSETS: ReadonlySet<string> = new Set(['utf-8', 'utf8', 'us-ascii', 'ascii']);

/** The `charset` parameter of a Content-Type, lower-cased and unquoted; undefined when none is given. */
export function charsetOf(contentType: string | undefined): string | undefined {
  // Most requests carry no parameter at all: one search, no split.
  if (contentType === undefined || !/charset/i.test(contentType)) return undefined;
  for (const param of contentType.split(';').slice(1)) {
    const eq = param.indexOf('=');
    if (eq < 0 || param.slice(0, eq).trim().toLowerCase() !== 'charset') continue;
    return param.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1').toLowerCase();
  }
  return undefined;
}
