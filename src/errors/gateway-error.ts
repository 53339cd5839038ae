import { catalogue, type ErrorCode } from './catalogue.js';

export type ErrorVars = Record<string, string | number>;

/**
 * An expected failure with a catalogue code. Thrown from anywhere below http/ and turned into a
 * response body in exactly one place (errors/http.ts).
 */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** The request field at fault (SPEC §5 `param`), e.g. `messages[0].content`. */
  readonly param: string | null;
  readonly vars: ErrorVars;
  /** Extra response headers (Retry-After, reset times). */
  readonly headers: Record<string, string>;

  constructor(
    code: ErrorCode,
    opts: { vars?: ErrorVars; param?: string | null; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(code, { cause: opts.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.status = catalogue[code].status;
    this.param = opts.param ?? null;
    this.vars = opts.vars ?? {};
    this.headers = opts.headers ?? {};
  }
}

/**
 * An error answer from an upstream provider. It is not ours, so it keeps the upstream's status;
 * the adapter has already normalised the body to OpenAI's `{ error: { message, type, code, param } }`.
 */
export class UpstreamHttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: { error: { message: string; type: string; code: string | null; param: string | null } },
    readonly provider: string,
    /** Response headers of the upstream's that the caller needs too (its Retry-After). */
    readonly headers: Record<string, string> = {},
  ) {
    super(`upstream ${provider} answered ${status}: ${body.error.message}`);
    this.name = 'UpstreamHttpError';
  }

  /**
   * The provider took the call before it failed: it answered HTTP 2xx with the error inside (an
   * error object under 200; OpenRouter's answer once "the model started processing"). It may have
   * done, and billed, work: no other route is given the call (core/routes.ts fallsBack).
   */
  taken = false;
}

/**
 * Marks an error the client must not retry: the OpenAI SDKs retry 408, 409, 429 and 5xx unless the
 * answer says `x-should-retry: false` — for a failure already charged, a retry is charged again.
 */
export function notRetryable<E extends GatewayError | UpstreamHttpError>(err: E): E {
  err.headers['x-should-retry'] = 'false';
  return err;
}
