// The one place an error becomes an HTTP answer (SPEC §5). Catalogue errors get the seed's body
// plus an OpenAI `error` object; upstream errors keep their status and normalised body; anything
// else is a bug and becomes a generic 500 that names only the request id.
import { catalogue, type ErrorCode } from './catalogue.js';
import { GatewayError, UpstreamHttpError, type ErrorVars } from './gateway-error.js';

export interface ErrorContext {
  requestId: string;
  path: string;
  publicUrl: string;
  now: number;
}

export interface ErrorResponse {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
  /** True when the error is a bug: log it at error level with its stack. */
  unexpected: boolean;
}

/**
 * The longest a value from the request (a model name, a detail) may be in a message: a 500 KB
 * `model` was copied twice into its 404 and once into the log line.
 */
const MAX_VAR_CHARS = 512;

/**
 * The longest wait a Retry-After may ask of a client that retries by itself. openai-node (v5 on)
 * sleeps for whatever Retry-After says, uncapped (client.ts retryRequest), and retries twice by
 * default: an hour or month window's 429 held an SDK call for hours before it failed. A longer
 * wait, the gateway's or an upstream's, is said with `x-should-retry: false` too, so the SDK
 * surfaces the 429 at once (the Python SDK caps its own wait at 60 s).
 */
const LONGEST_RETRY_WAIT_S = 60;

/**
 * Whether an answer's Retry-After (seconds, or an HTTP date as an upstream may send) or an upstream's
 * `retry-after-ms` (passed on: providers/upstream-error.ts), which openai-node reads first, asks
 * for a longer wait.
 */
function waitsLong(headers: Record<string, string>, now: number): boolean {
  if (Number(headers['retry-after-ms']) > LONGEST_RETRY_WAIT_S * 1000) return true;
  const retryAfter = headers['retry-after'];
  if (retryAfter === undefined) return false;
  const seconds = Number(retryAfter);
  const ms = Number.isNaN(seconds) ? Date.parse(retryAfter) - now : seconds * 1000;
  return ms > LONGEST_RETRY_WAIT_S * 1000;
}

const clip = (v: string) => (v.length > MAX_VAR_CHARS ? `${v.slice(0, MAX_VAR_CHARS)}…` : v);

export function renderMessage(code: ErrorCode, vars: ErrorVars, ctx: Pick<ErrorContext, 'publicUrl' | 'requestId'>): string {
  const all: ErrorVars = { detail: '', ...vars, publicUrl: ctx.publicUrl.replace(/\/$/, ''), requestId: ctx.requestId };
  return catalogue[code].message.replace(/\{(\w+)\}/g, (m, name: string) => (name in all ? clip(String(all[name])) : m));
}

export function errorBody(
  code: ErrorCode,
  opts: { vars?: ErrorVars; param?: string | null; rule?: string },
  ctx: ErrorContext,
): Record<string, unknown> {
  const spec = catalogue[code];
  const message = renderMessage(code, opts.vars ?? {}, ctx);
  return {
    message,
    path: ctx.path,
    requestId: ctx.requestId,
    statusCode: String(spec.status),
    timestamp: new Date(ctx.now).toISOString(),
    error: {
      message,
      type: spec.type,
      code,
      param: opts.param ?? null,
      ...(opts.rule !== undefined && { rule: opts.rule }),
    },
  };
}

export function toErrorResponse(err: unknown, ctx: ErrorContext): ErrorResponse {
  if (err instanceof GatewayError) {
    const rule = err.vars.rule;
    const noRetry = 'retry' in catalogue[err.code] || waitsLong(err.headers, ctx.now);
    return {
      status: err.status,
      headers: noRetry ? { ...err.headers, 'x-should-retry': 'false' } : err.headers,
      body: errorBody(err.code, { vars: err.vars, param: err.param, ...(rule !== undefined && { rule: String(rule) }) }, ctx),
      unexpected: false,
    };
  }
  if (err instanceof UpstreamHttpError) {
    // A provider's own long Retry-After (a daily token limit) held the SDK call as long.
    const headers = waitsLong(err.headers, ctx.now) ? { ...err.headers, 'x-should-retry': 'false' } : err.headers;
    return { status: err.status, headers, body: err.body, unexpected: false };
  }
  return { status: 500, headers: {}, body: errorBody('internal_error', {}, ctx), unexpected: true };
}
