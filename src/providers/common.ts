// What every HTTP provider adapter does the same way: its config, its token counts, its event streams.
import type { ProviderConfig } from '../config/schema.js';
import { isObject } from '../lib/is-object.js';
import { SseDecoder, type SseEvent } from '../lib/sse.js';
import { malformedResponse, MAX_ANSWER_BYTES } from './upstream-error.js';

/** The base URL without trailing slashes, so paths join with a single `/`. */
export function baseUrlOf(config: ProviderConfig): string {
  return config.baseUrl.replace(/\/+$/, '');
}

/**
 * JSON content type, the adapter's auth header (`authorization` unless the wire format names
 * another: Anthropic's `x-api-key`) when a key is configured, then the operator's headers last so a
 * deployment can replace auth (e.g. Azure's `api-key`).
 */
export function baseHeaders(config: ProviderConfig, authorization: (apiKey: string) => string, header = 'authorization'): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (config.apiKey) headers[header] = authorization(config.apiKey);
  // No content coding: the gateway decodes none (upstream-error.ts codingOf). Without the header
  // any coding is acceptable (RFC 9110 §12.5.3), and some servers and proxies compress then. An
  // operator's own header, in whatever case, stands.
  if (!Object.keys(config.headers).some((h) => h.toLowerCase() === 'accept-encoding')) headers['accept-encoding'] = 'identity';
  return Object.assign(headers, config.headers);
}

/**
 * A token count as metering can use it: a finite, non-negative integer, else undefined; held to
 * 2^53 − 1. A broken upstream's 1e20 is charged the reservation either way (gateway.ts
 * chargeable), but its record did not fit PostgreSQL's bigint: the ledger row was lost and its
 * receipt retried for ever.
 */
export function tokenCount(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.min(Math.ceil(v), Number.MAX_SAFE_INTEGER) : undefined;
}

/** A stream event's data as the JSON object every provider's events are; malformed (502) otherwise. */
export function eventObject(ev: SseEvent, provider: string): Record<string, unknown> {
  let data: unknown;
  try {
    data = JSON.parse(ev.data);
  } catch {
    throw malformedResponse(provider, 'a stream event is not JSON');
  }
  // Google's OpenAI-compatible endpoint wraps its errors in a list (`[{"error": {…}}]`), as its
  // error answers are: unwrapped, the adapter reads the error and its message, where "not a JSON
  // object" told the caller nothing.
  if (Array.isArray(data) && data.length === 1 && isObject(data[0]) && isObject(data[0].error)) return data[0];
  if (!isObject(data)) throw malformedResponse(provider, 'a stream event is not a JSON object');
  return data;
}

/**
 * The SSE decoder (lib/sse.ts) as a stream adapter reads an upstream body with it: push each chunk,
 * take the events it completed. An event is never longer than a whole answer may be
 * (MAX_ANSWER_BYTES): an upstream writing one line, or `data:` lines, without end had the decoder
 * hold all of it until the total timeout — ~100 MB a second, the process out of memory within two
 * minutes. Synchronous, like the decoder: no extra async layer per event.
 */
export class BoundedSseDecoder {
  private readonly decoder = new SseDecoder();
  /** Bytes since an event last completed. */
  private pending = 0;

  constructor(private readonly provider: string) {}

  push(chunk: Uint8Array): readonly SseEvent[] {
    const events = this.decoder.push(chunk);
    this.pending = events.length === 0 ? this.pending + chunk.length : 0;
    if (this.pending > MAX_ANSWER_BYTES) throw malformedResponse(this.provider, `a stream event is longer than ${MAX_ANSWER_BYTES / 1024 / 1024} MiB`);
    return events;
  }

  end(): readonly SseEvent[] {
    return this.decoder.end();
  }
}

/** A value shorter than this is not masked: local servers' placeholder keys (`x`, `ollama`) protect nothing, and masking them would garble every message that holds those letters. */
const MIN_MASKED_CHARS = 8;

/**
 * Masks this provider's own credentials — its apiKey and its configured header values (Azure's
 * `api-key`, a Basic authorization) — in text the upstream sent back. Servers quote them: a
 * pydantic 422 with the header as `input`, a proxy page listing the request's headers, an error
 * object under 200, a mid-stream error event. Unmasked, the caller read the operator's key.
 * Only error answers pass through it, never a successful body.
 */
export function credentialMask(config: ProviderConfig): (text: string) => string {
  const secrets = [config.apiKey ?? '', ...Object.values(config.headers)]
    .filter((s) => s.length >= MIN_MASKED_CHARS)
    // Longest first: a header `Bearer <key>` goes whole before the key inside it is looked for.
    .sort((a, b) => b.length - a.length);
  if (secrets.length === 0) return (text) => text;
  return (text) => secrets.reduce((t, s) => t.replaceAll(s, '[redacted]'), text);
}
