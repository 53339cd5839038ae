// Cross-origin access to /v1, as OpenAI's own API allows it: a browser app with a key (the openai
// SDK's dangerouslyAllowBrowser, a fetch from a page) is answered with the CORS headers that let it
// read the answer. Keys are bearer tokens, never cookies, so an origin allowed here gains nothing a
// script without the key could use; operators who want none set `server.corsOrigins: []`.
// Protocol: https://fetch.spec.whatwg.org/#http-cors-protocol
import type { FastifyReply, FastifyRequest } from 'fastify';

/** What a page may read of a /v1 answer besides the CORS-safelisted headers. */
const EXPOSED = [
  'x-request-id',
  'retry-after',
  'retry-after-ms',
  'x-should-retry',
  'x-ratelimit-limit-tokens',
  'x-ratelimit-remaining-tokens',
  'x-ratelimit-reset-tokens',
  'x-ratelimit-limit-requests',
  'x-ratelimit-remaining-requests',
  'x-ratelimit-reset-requests',
  'x-tollgate-credits-used',
  'x-tollgate-clamped',
  'x-tollgate-reset-at',
  'x-tollgate-request-cost',
].join(', ');

/** How long a browser may reuse a preflight's answer, s. */
const PREFLIGHT_MAX_AGE_S = 86_400;

export class Cors {
  private readonly any: boolean;
  private readonly origins: ReadonlySet<string>;

  /** `origins`: `*`, or exact origins (`https://app.example.com`); empty: no CORS at all. */
  constructor(origins: readonly string[]) {
    this.any = origins.includes('*');
    this.origins = new Set(origins);
  }

  /** The Access-Control-Allow-Origin value for a request's Origin, or undefined (no CORS headers). */
  private allowed(origin: string | undefined): string | undefined {
    if (origin === undefined) return undefined;
    if (this.any) return '*';
    return this.origins.has(origin) ? origin : undefined;
  }

  /**
   * Adds the CORS headers an actual request's answer needs (errors included: set before the handler
   * runs). With origins listed, every answer varies by Origin, the ones without CORS headers too:
   * a shared cache must not hand the answer made for another origin (or none) to a listed one.
   */
  onRequest(req: FastifyRequest, reply: FastifyReply): void {
    if (!this.any) reply.header('vary', 'Origin');
    const allow = this.allowed(req.headers.origin);
    if (allow === undefined) return;
    reply.header('access-control-allow-origin', allow).header('access-control-expose-headers', EXPOSED);
  }

  /** Answers a preflight (OPTIONS with Access-Control-Request-Method): 204, with or without permission. */
  preflight(req: FastifyRequest, reply: FastifyReply): FastifyReply {
    const allow = this.allowed(req.headers.origin);
    // (Vary: set by onRequest, which runs before this as before every /v1 answer.)
    reply.code(204);
    if (allow === undefined) return reply.send();
    const asked = req.headers['access-control-request-headers'];
    reply
      .header('access-control-allow-origin', allow)
      .header('access-control-allow-methods', 'GET, POST, OPTIONS')
      // Whatever the page asks to send: the openai SDK adds its own x-stainless-* headers, and
      // the key decides what the request may do, not its headers.
      .header('access-control-allow-headers', typeof asked === 'string' && asked.length <= 2048 ? asked : 'authorization, content-type')
      .header('access-control-max-age', String(PREFLIGHT_MAX_AGE_S));
    return reply.send();
  }
}
