// fetch wrapper for /app/api: sends the CSRF header, turns error bodies into ApiError.

export const API_BASE = '/app/api';

/** A refused or failed call: the error body's `message` and `error.code` (docs/errors.md). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly requestId: string | undefined;
  /**
   * The plan rule that refused the call (`error.rule`): set only on the gateway's own plan
   * refusals. A provider's error passes through with the provider's code (OpenAI's 429 is
   * `rate_limit_exceeded` too) and never names a rule.
   */
  readonly rule: string | undefined;
  /**
   * A credit refusal's `x-tollgate-request-cost` (the request's worst case) and
   * `x-ratelimit-remaining-tokens` (what was left): a request too big for what is left, not a
   * budget that is spent, when both are there and something was left.
   */
  readonly credits: { cost: number; left: number } | undefined;
  constructor(status: number, code: string, message: string, requestId?: string, rule?: string, credits?: { cost: number; left: number }) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.requestId = requestId;
    this.rule = rule;
    this.credits = credits;
  }
}

export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof DOMException && e.name === 'AbortError') return new ApiError(0, 'aborted', 'The request was stopped.');
  return new ApiError(0, 'network_error', 'Could not reach the gateway. Check your connection and try again.');
}

let csrfFallback = '';

/** Remembers the token from GET /session in case the cookie cannot be read. */
export function setCsrfToken(token: string): void {
  csrfFallback = token;
}

function readCookie(name: string): string | null {
  for (const part of document.cookie.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return null;
}

function csrfToken(): string {
  // `__Host-tg_csrf` on a gateway served over https (the server's web-session.ts says why).
  return readCookie('__Host-tg_csrf') ?? readCookie('tg_csrf') ?? csrfFallback;
}

/**
 * The account this page was loaded for (null: signed out). Sent with every call, and checked
 * against whose answer comes back: another tab that signs in as someone else changes the session
 * (a cookie) under this page too, which would otherwise go on acting for an account it does not show.
 */
let loadedFor: string | null = null;
let sessionChangedHandler: (() => void) | null = null;

export function setLoadedAccount(id: string | null): void {
  loadedFor = id;
}

/** Called when the browser's session turns out to be another account's than this page's. */
export function onSessionChanged(handler: () => void): void {
  sessionChangedHandler = handler;
}

const ACCOUNT_HEADER = 'x-tollgate-account';
const SESSION_CHANGED = 'This page was opened for another account: someone signed in or out in another tab or window. The page now shows the account signed in; nothing was changed.';

let unauthorizedHandler: (() => void) | null = null;

/** Called when a call answers 401 outside sign-in (the session expired or was revoked). */
export function onUnauthorized(handler: () => void): void {
  unauthorizedHandler = handler;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

async function errorFrom(res: Response): Promise<ApiError> {
  let body: unknown = null;
  try {
    body = await res.json();
  } catch {
    // not JSON (a proxy's HTML page, an empty body): fall through to a generic message
  }
  const err = isObject(body) && isObject(body.error) ? body.error : null;
  const message =
    (isObject(body) && typeof body.message === 'string' && body.message) ||
    (err && typeof err.message === 'string' && err.message) ||
    `The gateway answered HTTP ${res.status}${res.statusText ? ` (${res.statusText})` : ''}.`;
  const code = (err && typeof err.code === 'string' && err.code) || `http_${res.status}`;
  const requestId =
    (isObject(body) && typeof body.requestId === 'string' && body.requestId) || res.headers.get('x-request-id') || undefined;
  const rule = (err && typeof err.rule === 'string' && err.rule) || undefined;
  const cost = Number(res.headers.get('x-tollgate-request-cost') ?? NaN);
  const left = Number(res.headers.get('x-ratelimit-remaining-tokens') ?? NaN);
  return new ApiError(res.status, code, message, requestId, rule, Number.isFinite(cost) && Number.isFinite(left) ? { cost, left } : undefined);
}

/** Sends a call and returns the raw response when it is OK; throws ApiError otherwise. */
export async function send(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
  const headers: Record<string, string> = { accept: 'application/json, text/event-stream' };
  if (method !== 'GET' && method !== 'HEAD') headers['x-csrf-token'] = csrfToken();
  if (body !== undefined) headers['content-type'] = 'application/json';
  // The server refuses a change (409 session_changed) for a page loaded for another account.
  const expected = loadedFor;
  if (expected !== null) headers[ACCOUNT_HEADER] = expected;
  let res: Response;
  try {
    res = await fetch(API_BASE + path, {
      method,
      headers,
      credentials: 'same-origin',
      ...(body !== undefined && { body: JSON.stringify(body) }),
      ...(signal && { signal }),
    });
  } catch (e) {
    throw toApiError(e);
  }
  // A read answered for another account than the page shows: its data is not this page's to show.
  const answeredFor = res.headers.get(ACCOUNT_HEADER);
  if (expected !== null && path !== '/session' && answeredFor !== null && answeredFor !== expected) {
    sessionChangedHandler?.();
    throw new ApiError(409, 'session_changed', SESSION_CHANGED);
  }
  if (!res.ok) {
    const error = await errorFrom(res);
    if (error.code === 'session_changed') sessionChangedHandler?.();
    if (res.status === 401 && path !== '/signin' && path !== '/signup' && unauthorizedHandler) unauthorizedHandler();
    throw error;
  }
  return res;
}

/** A JSON call: the parsed body (undefined for 204). */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await send(method, path, body);
  if (res.status === 204) return undefined as T;
  try {
    return (await res.json()) as T;
  } catch {
    throw new ApiError(res.status, 'invalid_response', 'The gateway sent an answer this page could not read.');
  }
}

/**
 * The `data:` payloads of a server-sent-event body, parsed as JSON, as they arrive.
 * Stops at `[DONE]`; payloads that are not JSON are skipped.
 */
export async function* sseData(res: Response): AsyncGenerator<unknown> {
  if (!res.body) return;
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  const flush = function* (): Generator<unknown, boolean> {
    if (data.length === 0) return false;
    const payload = data.join('\n');
    data = [];
    if (payload.trim() === '[DONE]') return true;
    try {
      yield JSON.parse(payload);
    } catch {
      // a malformed event: ignore it rather than break the stream
    }
    return false;
  };
  try {
    for (;;) {
      const { done, value } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        let line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.endsWith('\r')) line = line.slice(0, -1);
        if (line === '') {
          if (yield* flush()) return;
        } else if (line.startsWith('data:')) {
          data.push(line.slice(5).replace(/^ /, ''));
        }
        // comments (":") and other fields (event:, id:, retry:) are not used
      }
      if (done) {
        if (buffer.startsWith('data:')) data.push(buffer.slice(5).replace(/^ /, ''));
        yield* flush();
        return;
      }
    }
  } finally {
    reader.releaseLock();
  }
}
