// What every HTTP provider adapter does the same way with its config.
import type { ProviderConfig } from '../config/schema.js';

/** The base URL without trailing slashes, so paths join with a single `/`. */
export function baseUrlOf(config: ProviderConfig): string {
  return config.baseUrl.replace(/\/+$/, '');
}

/**
 * JSON content type, the adapter's auth header when a key is configured, then the operator's
 * headers last so a deployment can replace auth (e.g. Azure's `api-key`).
 */
export function baseHeaders(config: ProviderConfig, authorization: (apiKey: string) => string): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (config.apiKey) headers.authorization = authorization(config.apiKey);
  return Object.assign(headers, config.headers);
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
