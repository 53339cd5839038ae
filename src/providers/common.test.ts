import { describe, expect, it } from 'vitest';
import { credentialMask } from './common.js';

const provider = (apiKey: string | undefined, headers: Record<string, string> = {}) => ({ id: 'p', type: 'openai', baseUrl: 'http://x', headers, ...(apiKey !== undefined && { apiKey }) });

describe('credentialMask', () => {
  it('masks the apiKey and every configured header value, the longest first', () => {
    const mask = credentialMask(provider('sk-0123456789', { 'api-key': 'azure-0123456789', authorization: 'Basic dXNlcjpwYXNz' }));
    expect(mask('got Bearer sk-0123456789, api-key azure-0123456789 and Basic dXNlcjpwYXNz twice: sk-0123456789')).toBe(
      'got Bearer [redacted], api-key [redacted] and [redacted] twice: [redacted]',
    );
  });

  it('masks a header value that holds the apiKey whole, not just the key inside it', () => {
    // Shortest first, the key inside went first and the rest of the header value (its own secret) stayed.
    const mask = credentialMask(provider('sk-0123456789', { 'x-proxy-auth': 'sk-0123456789:proxy-secret-42' }));
    expect(mask('sent x-proxy-auth sk-0123456789:proxy-secret-42')).toBe('sent x-proxy-auth [redacted]');
  });

  it("leaves a local server's placeholder key alone: masking `x` would garble every message", () => {
    const mask = credentialMask(provider('x', { 'OpenAI-Beta': 'v2' }));
    expect(mask('max_tokens exceeds the context')).toBe('max_tokens exceeds the context');
    expect(credentialMask(provider(undefined))('anything')).toBe('anything');
  });
});
