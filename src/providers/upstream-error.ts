// Turning an upstream's error answer into OpenAI's `{ error: { message, type, code, param } }`.
// Each adapter knows its own error body (`parse`); what every adapter shares — reading the body,
// surviving HTML or empty bodies, choosing a type from the status — lives here.
import { GatewayError, UpstreamHttpError } from '../errors/gateway-error.js';
import { isObject } from '../lib/is-object.js';
import { JsonText } from '../lib/json-text.js';
import { UpstreamBodyTooLarge, type UpstreamResponse } from '../upstream/types.js';

export type OpenAiError = UpstreamHttpError['body']['error'];

/** What an adapter could read from a JSON error body; missing fields get defaults. */
export interface ErrorFields {
  message?: string;
  type?: string;
  code?: string | null;
  param?: string | null;
}

export function typeForStatus(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 400 && status < 500) return 'invalid_request_error';
  return 'api_error';
}

const MAX_TEXT = 300;

/** A short, single-line rendering of a non-JSON body (HTML error pages from proxies included). */
function textMessage(status: number, text: string): string {
  const plain = text
    .replace(/<(script|style)[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  if (plain.length === 0) return `The upstream answered HTTP ${status} with an empty body.`;
  return plain.length > MAX_TEXT ? `${plain.slice(0, MAX_TEXT)}…` : plain;
}

export const asString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** `code` may be a number upstream (e.g. 429); OpenAI's shape wants a string or null. */
export function codeOf(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  return null;
}

const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/**
 * The upstream's word on retrying, passed on so the caller's SDK does as the provider asked (SPEC
 * §5): Retry-After in seconds (some providers send fractions, "0.5", which the SDKs read with
 * parseFloat) or as an HTTP date; `retry-after-ms`, which openai-node and openai-python read
 * first; and `x-should-retry`, OpenAI's own say on whether a retry can succeed, which both obey.
 */
function retryHeadersOf(res: UpstreamResponse): Record<string, string> {
  const out: Record<string, string> = {};
  const value = first(res.headers['retry-after']);
  if (value !== undefined && /^[\w .,:+-]{1,64}$/.test(value)) out['retry-after'] = value;
  const ms = first(res.headers['retry-after-ms']);
  if (ms !== undefined && /^\d{1,9}(\.\d{1,6})?$/.test(ms)) out['retry-after-ms'] = ms;
  const should = first(res.headers['x-should-retry']);
  if (should === 'true' || should === 'false') out['x-should-retry'] = should;
  return out;
}

/**
 * The validation error list of Python servers built on FastAPI / pydantic (fal, vLLM and others
 * answer 422 `{ detail: [{ loc, msg, type }] }`): one message naming each field, the first field
 * as `param` and its error type as `code`. Undefined when `detail` is not such a list.
 */
export function validationDetail(detail: unknown): ErrorFields | undefined {
  if (!Array.isArray(detail)) return undefined;
  const parts: string[] = [];
  let param: string | null = null;
  let code: string | null = null;
  for (const d of detail) {
    if (!isObject(d)) continue;
    // `loc` starts with where the field lives ("body"); the rest is the field path.
    const loc = Array.isArray(d.loc) ? d.loc.filter((p, i) => !(i === 0 && p === 'body')).join('.') : '';
    const msg = asString(d.msg) ?? JSON.stringify(d);
    parts.push(loc ? `${loc}: ${msg}` : msg);
    param ??= loc || null;
    code ??= asString(d.type) ?? null;
  }
  return parts.length > 0 ? { message: parts.join('; '), param, code } : undefined;
}

/**
 * Every field of an error read from a body that was parsed before it was masked (a 200-wrapped
 * error, a mid-stream event): an upstream may quote the key in `type`, `code` or `param` as well.
 */
export function maskFields(f: ErrorFields, mask: (text: string) => string): ErrorFields {
  const m = <T extends string | null | undefined>(v: T): T => (typeof v === 'string' ? (mask(v) as T) : v);
  return { message: m(f.message), type: m(f.type), code: m(f.code), param: m(f.param) };
}

export function buildError(status: number, provider: string, f: ErrorFields, headers: Record<string, string> = {}): UpstreamHttpError {
  // SPEC §5: a 429 carries Retry-After. A provider that sent none (or an error object under HTTP 200
  // naming 429) gets the shortest wait one can say; the SDKs back off further on their own.
  if (status === 429 && headers['retry-after'] === undefined) headers = { ...headers, 'retry-after': '1' };
  return new UpstreamHttpError(
    status,
    {
      error: {
        message: f.message ?? `The upstream answered HTTP ${status}.`,
        type: f.type ?? typeForStatus(status),
        code: f.code ?? null,
        param: f.param ?? null,
      },
    },
    provider,
    headers,
  );
}

/**
 * The longest answer body read whole, bytes: a chat completion or an embedding list is kilobytes,
 * ten b64 images tens of megabytes. A body past it is cut off and answered 502 — an upstream that
 * sent 300 MB held ~900 MB of memory and the event loop for seconds.
 */
export const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

/** An error body is read up to this much; a longer one is answered by its status alone. */
const MAX_ERROR_BYTES = 64 * 1024;

/**
 * The content coding a body came in (`gzip`, `br`, …), undefined for none or `identity`. The
 * gateway decodes none, and every provider asks for none (`accept-encoding: identity`, common.ts); a server
 * or proxy that compresses regardless sent bytes that, read as text, were a JSON parse error on a
 * 2xx and binary garbage as an error's message.
 */
export function codingOf(res: UpstreamResponse): string | undefined {
  const v = res.headers['content-encoding'];
  if (v === undefined) return undefined;
  const coding = (Array.isArray(v) ? v.join(', ') : v).trim();
  return coding === '' || coding.toLowerCase() === 'identity' ? undefined : coding.slice(0, 64);
}

/** A 2xx answer in a content coding (codingOf): refused by its coding, its body left unread. */
export function encodedAnswer(res: UpstreamResponse, provider: string, coding: string): UpstreamHttpError {
  res.cancel();
  return malformedResponse(provider, `the body is in Content-Encoding: ${coding}, which the gateway does not decode`);
}

/** A 2xx body read whole, within MAX_ANSWER_BYTES. */
async function answerText(res: UpstreamResponse, provider: string): Promise<string> {
  const coding = codingOf(res);
  if (coding !== undefined) throw encodedAnswer(res, provider, coding);
  try {
    return await res.text(MAX_ANSWER_BYTES);
  } catch (err) {
    if (err instanceof UpstreamBodyTooLarge) throw malformedResponse(provider, `the body is longer than ${MAX_ANSWER_BYTES / 1024 / 1024} MiB`);
    throw err;
  }
}

/**
 * Reads a non-2xx response and normalises it with the adapter's `parse` for JSON bodies. A 401 or
 * 403 is about the gateway's own provider key, not the caller's: it becomes upstream_auth_failed,
 * and the provider's message (which may quote part of that key) is kept only as the cause. `mask`
 * (common.ts credentialMask) takes the provider's credentials out of everything read first.
 */
export async function upstreamError(
  res: UpstreamResponse,
  provider: string,
  parse: (json: unknown) => ErrorFields,
  mask: (text: string) => string = (text) => text,
): Promise<UpstreamHttpError | GatewayError> {
  const coding = codingOf(res);
  let text: string;
  try {
    // Not read: decoded as text it is binary garbage, which went to the caller as the message.
    if (coding !== undefined) {
      res.cancel();
      text = `The upstream answered HTTP ${res.status} with a body in Content-Encoding: ${coding}, which the gateway does not decode.`;
    } else text = mask(await res.text(MAX_ERROR_BYTES));
  } catch (err) {
    if (!(err instanceof UpstreamBodyTooLarge)) throw err;
    // Not read: what it says is unknown, and "an empty body" would be wrong.
    text = `The upstream answered HTTP ${res.status} with an error body longer than ${MAX_ERROR_BYTES / 1024} KiB.`;
  }
  if (res.status >= 300 && res.status < 400) {
    // undici does not follow redirects: a provider URL that moved is the operator's to fix, and a
    // 3xx passed on would send the caller's SDK somewhere it cannot follow either. The caller sees
    // where, without the query: a signed URL's, or a key the provider's baseUrl carries.
    const location = typeof res.headers.location === 'string' ? ` to ${mask(res.headers.location.split(/[?#]/)[0]!).slice(0, 200)}` : '';
    return buildError(502, provider, { message: `The upstream redirected (HTTP ${res.status}${location}); check the provider's baseUrl.`, type: 'api_error', code: 'upstream_redirect' });
  }
  if (res.status === 401 || res.status === 403) {
    return new GatewayError('upstream_auth_failed', { vars: { provider, upstreamStatus: res.status }, cause: new Error(textMessage(res.status, text)) });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return buildError(res.status, provider, { message: textMessage(res.status, text) }, retryHeadersOf(res));
  }
  const fields = parse(json);
  if (fields.message === undefined) fields.message = textMessage(res.status, text);
  return buildError(res.status, provider, fields, retryHeadersOf(res));
}

/** A 2xx answer whose body is not what the wire format promises. */
export function malformedResponse(provider: string, what: string): UpstreamHttpError {
  return buildError(502, provider, { message: `The upstream sent an invalid response: ${what}.`, type: 'api_error', code: 'invalid_upstream_response' });
}

/**
 * Reads a 2xx JSON object body as text with its top-level members located (lib/json-text.ts): the
 * answer can pass to the client without being parsed and serialised again.
 */
export async function jsonText(res: UpstreamResponse, provider: string): Promise<JsonText> {
  const text = await answerText(res, provider);
  const body = JsonText.parse(text);
  if (body) return body;
  try {
    JSON.parse(text);
  } catch {
    throw malformedResponse(provider, 'the body is not JSON');
  }
  throw malformedResponse(provider, 'the body is not a JSON object');
}

/** Reads a 2xx JSON object body. */
export async function jsonObject(res: UpstreamResponse, provider: string): Promise<Record<string, unknown>> {
  const text = await answerText(res, provider);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw malformedResponse(provider, 'the body is not JSON');
  }
  if (!isObject(json)) throw malformedResponse(provider, 'the body is not a JSON object');
  return json;
}
