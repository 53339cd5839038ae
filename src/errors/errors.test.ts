// Keeps the catalogue and docs/errors.md in step: every code documented with its status and type,
// nothing documented that the code does not have.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { catalogue, type ErrorCode } from './catalogue.js';
import { GatewayError, UpstreamHttpError } from './gateway-error.js';
import { toErrorResponse } from './http.js';

const docs = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
/** Each code is a `## code` heading followed by a line `status · type`. */
const documented = new Map(
  [...docs.matchAll(/^## `([a-z_]+)`\s*\n+\*\*(\d{3})\*\* · `([a-z_]+)`/gm)].map((m) => [m[1]!, { status: Number(m[2]), type: m[3]! }]),
);

describe('error catalogue', () => {
  it('documents every code with its status and type', () => {
    for (const [code, spec] of Object.entries(catalogue)) {
      expect(documented.get(code), `docs/errors.md lacks ${code}`).toEqual({ status: spec.status, type: spec.type });
    }
  });

  it('documents no code the catalogue lacks', () => {
    const headings = [...docs.matchAll(/^## `([a-z_]+)`/gm)].map((m) => m[1]!);
    expect(headings.filter((c) => !Object.hasOwn(catalogue, c))).toEqual([]);
    expect(new Set(headings).size).toBe(headings.length);
  });

  it('fills every placeholder a message uses', () => {
    const ctx = { requestId: 'r', path: '/p', publicUrl: 'http://gw/', now: 0 };
    for (const code of Object.keys(catalogue) as ErrorCode[]) {
      const names = [...catalogue[code].message.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
      const vars = Object.fromEntries(names.map((n) => [n, `<${n}>`]));
      const body = toErrorResponse(new GatewayError(code, { vars }), ctx).body as { message: string };
      expect(body.message, code).not.toMatch(/\{\w+\}/);
    }
  });
});

describe('toErrorResponse', () => {
  const ctx = { requestId: '798b860e-98c2-4e8e-8c50-550bcfc2eccc', path: '/v1/chat/completions', publicUrl: 'https://gw.example/', now: Date.UTC(2026, 10, 25, 7, 13, 27, 813) };

  it('gives catalogue errors the seed body plus an OpenAI error object', () => {
    const r = toErrorResponse(new GatewayError('invalid_api_key'), ctx);
    expect(r.status).toBe(401);
    expect(r.body).toEqual({
      message: 'This request requires a valid API key. You can create a new API key on the Keys page: https://gw.example/app/keys',
      path: '/v1/chat/completions',
      requestId: ctx.requestId,
      statusCode: '401',
      timestamp: '2026-11-25T07:13:27.813Z',
      error: {
        message: 'This request requires a valid API key. You can create a new API key on the Keys page: https://gw.example/app/keys',
        type: 'authentication_error',
        code: 'invalid_api_key',
        param: null,
      },
    });
  });

  it('names the field at fault in param', () => {
    const r = toErrorResponse(new GatewayError('invalid_request', { vars: { detail: 'x' }, param: 'messages[0].role' }), ctx);
    expect((r.body.error as { param: string }).param).toBe('messages[0].role');
  });

  it('keeps upstream status and body', () => {
    const body = { error: { message: 'slow down', type: 'rate_limit_error', code: 'rate_limit', param: null } };
    const r = toErrorResponse(new UpstreamHttpError(429, body, 'openai'), ctx);
    expect(r).toMatchObject({ status: 429, body, unexpected: false });
  });

  it('tells the SDKs not to retry an error whose Retry-After is past a minute (openai-node sleeps for any)', () => {
    const limit = (retryAfter: string) => new GatewayError('rate_limit_exceeded', { vars: { rule: 'r', limit: 1, unit: 'requests', window: 'hour', retryAfter }, headers: { 'retry-after': retryAfter } });
    expect(toErrorResponse(limit('60'), ctx).headers['x-should-retry']).toBeUndefined();
    expect(toErrorResponse(limit('61'), ctx).headers['x-should-retry']).toBe('false');
    const body = { error: { message: 'tokens per day', type: 'rate_limit_error', code: 'rate_limit_exceeded', param: null } };
    const upstream = (retryAfter: string) => toErrorResponse(new UpstreamHttpError(429, body, 'groq', { 'retry-after': retryAfter }), ctx).headers;
    expect(upstream('7')).toEqual({ 'retry-after': '7' });
    expect(upstream('3600')).toEqual({ 'retry-after': '3600', 'x-should-retry': 'false' });
    // An HTTP date, as a provider may send it: two hours after ctx.now.
    expect(upstream(new Date(ctx.now + 7_200_000).toUTCString())['x-should-retry']).toBe('false');
    expect(upstream(new Date(ctx.now + 30_000).toUTCString())['x-should-retry']).toBeUndefined();
  });

  it("counts an upstream's retry-after-ms too: openai-node reads it before Retry-After and sleeps for it", () => {
    const body = { error: { message: 'tokens per day', type: 'rate_limit_error', code: 'rate_limit_exceeded', param: null } };
    const upstream = (headers: Record<string, string>) => toErrorResponse(new UpstreamHttpError(429, body, 'azure', headers), ctx).headers;
    expect(upstream({ 'retry-after-ms': '3600000' })['x-should-retry']).toBe('false');
    expect(upstream({ 'retry-after': '2', 'retry-after-ms': '3600000' })['x-should-retry']).toBe('false');
    expect(upstream({ 'retry-after-ms': '60000' })['x-should-retry']).toBeUndefined();
    expect(upstream({ 'retry-after': '1', 'retry-after-ms': '450' })['x-should-retry']).toBeUndefined();
  });

  it('hides internal messages behind internal_error', () => {
    const r = toErrorResponse(new Error('SQLITE_CORRUPT at /var/secret/path'), ctx);
    expect(r.status).toBe(500);
    expect(r.unexpected).toBe(true);
    expect(JSON.stringify(r.body)).not.toMatch(/SQLITE|secret/);
    expect((r.body.error as { code: string }).code).toBe('internal_error');
    expect(r.body.message).toContain(ctx.requestId);
  });
});
