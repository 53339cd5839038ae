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
