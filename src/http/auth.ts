// Bearer authentication for /v1 and for the admin API.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { KeyService } from '../core/keys.js';
import type { Principal } from '../core/metering.js';
import { GatewayError } from '../errors/gateway-error.js';

export function bearerToken(req: FastifyRequest): string | null {
  const header = req.headers.authorization;
  if (typeof header !== 'string') return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1]! : null;
}

/** The calling key's principal, or 401 invalid_api_key. Records it for the access log. */
export async function requireKey(keys: KeyService, req: FastifyRequest): Promise<Principal> {
  const token = bearerToken(req);
  const found = token === null ? null : await keys.authenticate(token);
  if (!found) throw new GatewayError('invalid_api_key');
  const principal: Principal = { account: found.account, key: found.key, surface: 'api' };
  // Before the suspension's refusal: the key did authenticate, so its answer carries the account's
  // limit headers (SPEC §6) and its access line names the account and key — without them an
  // operator could not tell which suspended account is still calling.
  req.facts.principal = principal;
  // A key is valid for who holds it; the account behind it may not be (the operator's decision).
  if (found.account.suspendedAt !== null) throw new GatewayError('account_suspended');
  return principal;
}

/** Constant-time equality of two secrets of any length (both are hashed to 32 bytes first). */
export function secretsEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}
