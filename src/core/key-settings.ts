// A key's settings as the account or the operator give them (admin API, web app, CLI), checked
// against the catalog and the clock once, so every store keeps them in one form.
import { GatewayError } from '../errors/gateway-error.js';
import type { KeyPatch } from '../storage/ports.js';
import type { Catalog } from './catalog.js';

/** The first instant past the year 9999: no store holds a year of five digits. */
const LATEST = Date.UTC(10_000, 0, 1);

/**
 * The patch with its expiry as a canonical UTC instant and its models deduplicated (first
 * occurrence kept), or 400 invalid_request naming the field: an expiry not after `now` (a key made
 * expired, or "expired" through a PATCH, is a revocation by another name: DELETE says so), a model
 * the catalog does not have.
 */
export function checkKeySettings(patch: KeyPatch, now: number, catalog: Pick<Catalog, 'get'>): KeyPatch {
  const checked: KeyPatch = { ...patch };
  if (patch.expiresAt != null) {
    const at = Date.parse(patch.expiresAt);
    if (!(at > now)) {
      throw new GatewayError('invalid_request', {
        vars: { detail: `expiresAt: must be in the future (it is now ${new Date(now).toISOString()}); to end a key now, revoke it` },
        param: 'expiresAt',
      });
    }
    // An offset can carry 9999-12-31 past the year every store can hold.
    if (at >= LATEST) throw new GatewayError('invalid_request', { vars: { detail: 'expiresAt: at the latest in the year 9999 (UTC)' }, param: 'expiresAt' });
    checked.expiresAt = new Date(at).toISOString();
  }
  if (patch.models != null) {
    patch.models.forEach((id, i) => {
      if (!catalog.get(id)) throw new GatewayError('invalid_request', { vars: { detail: `models[${i}]: no model '${id}'` }, param: `models[${i}]` });
    });
    checked.models = [...new Set(patch.models)];
  }
  return checked;
}
