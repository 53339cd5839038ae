import { describe, expect, it } from 'vitest';
import { GatewayError, UpstreamHttpError } from '../errors/gateway-error.js';
import { UpstreamBodyTooLarge, type UpstreamResponse } from '../upstream/types.js';
import { jsonText, MAX_ANSWER_BYTES, upstreamError } from './upstream-error.js';

/** A response whose body is `size` bytes of `text`, refused past the reader's limit as the client does. */
function response(status: number, text: string, size = text.length): UpstreamResponse {
  return {
    status,
    headers: {},
    body: (async function* () {})(),
    text: async (maxBytes = Number.POSITIVE_INFINITY) => {
      if (size > maxBytes) throw new UpstreamBodyTooLarge(maxBytes);
      return text;
    },
    json: async () => JSON.parse(text),
    dump: async () => {},
    cancel: () => {},
  };
}

describe('reading upstream bodies within limits', () => {
  it('an answer longer than MAX_ANSWER_BYTES is a 502 invalid_upstream_response, not held whole', async () => {
    const err = await jsonText(response(200, '{}', MAX_ANSWER_BYTES + 1), 'oai').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamHttpError);
    expect((err as UpstreamHttpError).body.error).toMatchObject({ code: 'invalid_upstream_response', message: expect.stringMatching(/longer than 64 MiB/) });
  });

  it('an error body past its limit is answered by its status alone', async () => {
    const err = await upstreamError(response(500, 'x', 10 * 1024 * 1024), 'oai', () => ({}));
    expect(err).toBeInstanceOf(UpstreamHttpError);
    expect((err as UpstreamHttpError).status).toBe(500);
    expect((err as UpstreamHttpError).body.error.message).toBe('The upstream answered HTTP 500 with an error body longer than 64 KiB.');
    const auth = await upstreamError(response(401, 'x', 10 * 1024 * 1024), 'oai', () => ({}));
    expect(auth).toBeInstanceOf(GatewayError);
  });

  it('a redirect is a 502 naming where it pointed, not a 3xx passed on', async () => {
    const res = { ...response(302, ''), headers: { location: 'https://api.example.com/v2/chat/completions' } };
    const err = (await upstreamError(res, 'oai', () => ({})));
    expect(err).toBeInstanceOf(UpstreamHttpError);
    expect((err as UpstreamHttpError).status).toBe(502);
    expect((err as UpstreamHttpError).body.error).toMatchObject({ code: 'upstream_redirect', message: expect.stringContaining('to https://api.example.com/v2/chat/completions') });
  });

  it("a redirect's query (a signed URL, a key in the provider's URL) does not reach the caller", async () => {
    const res = { ...response(307, ''), headers: { location: 'https://api.example.com/v1/chat/completions?key=AIzaSySecretKey#frag' } };
    const err = (await upstreamError(res, 'oai', () => ({}))) as UpstreamHttpError;
    expect(err.body.error).toMatchObject({ code: 'upstream_redirect', message: expect.stringContaining('to https://api.example.com/v1/chat/completions)') });
    expect(JSON.stringify(err.body)).not.toContain('AIzaSySecretKey');
  });
});

describe('upstream error answers', () => {
  const withHeaders = (res: UpstreamResponse, headers: Record<string, string>): UpstreamResponse => ({ ...res, headers });

  it('a 429 passes on the Retry-After the provider sent, JSON body or not, and one without gets 1 (SPEC §5)', async () => {
    const json = (await upstreamError(withHeaders(response(429, '{"error":{"message":"slow down"}}'), { 'retry-after': '30' }), 'oai', () => ({ message: 'slow down' }))) as UpstreamHttpError;
    expect(json.headers['retry-after']).toBe('30');
    const html = (await upstreamError(withHeaders(response(429, '<html>Too Many Requests</html>'), { 'retry-after': '20' }), 'oai', () => ({}))) as UpstreamHttpError;
    expect(html.headers['retry-after']).toBe('20');
    const none = (await upstreamError(response(429, '{}'), 'oai', () => ({}))) as UpstreamHttpError;
    expect(none.headers['retry-after']).toBe('1');
  });

  it('a fractional Retry-After, retry-after-ms and x-should-retry pass on as sent (the SDKs read them)', async () => {
    const err = (await upstreamError(withHeaders(response(429, '{}'), { 'retry-after': '0.5', 'retry-after-ms': '450' }), 'oai', () => ({}))) as UpstreamHttpError;
    expect(err.headers).toMatchObject({ 'retry-after': '0.5', 'retry-after-ms': '450' });
    const odd = (await upstreamError(withHeaders(response(429, '{}'), { 'retry-after-ms': 'soon', 'x-should-retry': 'maybe' }), 'oai', () => ({}))) as UpstreamHttpError;
    expect(odd.headers['retry-after-ms']).toBeUndefined();
    expect(odd.headers['x-should-retry']).toBeUndefined();
    // OpenAI's own say on retrying, which the SDKs obey.
    const final = (await upstreamError(withHeaders(response(500, '{}'), { 'x-should-retry': 'false' }), 'oai', () => ({}))) as UpstreamHttpError;
    expect(final.headers['x-should-retry']).toBe('false');
  });

  it("a Retry-After that is not a delay or a date is not passed on", async () => {
    const err = (await upstreamError(withHeaders(response(503, '{}'), { 'retry-after': '<script>alert(1)</script>' }), 'oai', () => ({}))) as UpstreamHttpError;
    expect(err.headers['retry-after']).toBeUndefined();
  });

  it("a proxy's HTML error page reaches the caller as its text, cut to 300 characters", async () => {
    const err = (await upstreamError(response(502, `<html><body><h1>Bad Gateway</h1>${'x'.repeat(2000)}</body></html>`), 'oai', () => ({}))) as UpstreamHttpError;
    expect(err.body.error.message).toBe(`Bad Gateway ${'x'.repeat(288)}…`);
  });

  it('a 300 Multiple Choices is a redirect too, never passed on', async () => {
    const err = (await upstreamError(response(300, ''), 'oai', () => ({}))) as UpstreamHttpError;
    expect(err.status).toBe(502);
    expect(err.body.error.code).toBe('upstream_redirect');
  });
});
