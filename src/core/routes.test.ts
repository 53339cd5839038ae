import { describe, expect, it } from 'vitest';
import type { ModelConfig } from '../config/schema.js';
import { GatewayError, UpstreamHttpError } from '../errors/gateway-error.js';
import { buildError, malformedResponse } from '../providers/upstream-error.js';
import type { Provider } from '../providers/provider.js';
import { ManualClock } from '../lib/clock.js';
import { fallsBack, RouteCooldown, routesOf } from './routes.js';

const provider = (id: string, configured = true) => ({ id, configured }) as Provider;
const providers = new Map([
  ['a', provider('a')],
  ['b', provider('b')],
  ['keyless', provider('keyless', false)],
]);
const model = (over: Partial<ModelConfig> = {}) =>
  ({ id: 'm', kind: 'embedding', provider: 'a', pro: false, promptTokenFactor: 1, promptOverheadTokens: 0, price: { input: 1 }, ...over }) as ModelConfig;

describe('routesOf', () => {
  it('is the model alone when it has no fallbacks (the same object: nothing copied per request)', () => {
    const m = model();
    const routes = routesOf(m, providers);
    expect(routes).toHaveLength(1);
    expect(routes[0]!.model).toBe(m);
  });

  it("lists the fallbacks in order under their own upstream name, the model's by default, and skips providers without a key", () => {
    const m = model({ upstream: 'm-up', fallbacks: [{ provider: 'keyless' }, { provider: 'b' }, { provider: 'a', upstream: 'm-other' }] });
    const routes = routesOf(m, providers);
    expect(routes.map((r) => [r.provider.id, r.model.provider, r.model.upstream, r.model.id])).toEqual([
      ['a', 'a', 'm-up', 'm'],
      ['b', 'b', 'm-up', 'm'],
      ['a', 'a', 'm-other', 'm'],
    ]);
    expect(Object.isFrozen(routes[1]!.model)).toBe(true);
  });

  it('starts at the first fallback with a key when the model\'s own provider has none; none at all: 503 naming the model\'s', () => {
    expect(routesOf(model({ provider: 'keyless', fallbacks: [{ provider: 'b' }] }), providers).map((r) => r.provider.id)).toEqual(['b']);
    const err = (() => {
      try {
        routesOf(model({ provider: 'keyless', fallbacks: [{ provider: 'keyless', upstream: 'x' }] }), providers);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(GatewayError);
    expect(err).toMatchObject({ code: 'provider_not_configured', vars: { provider: 'keyless' } });
  });
});

describe('fallsBack', () => {
  const http = (status: number, code: string | null = null) => buildError(status, 'a', { code });

  it('on failures that did no work: no connection, key or quota refused, 429, 5xx', () => {
    for (const code of ['upstream_auth_failed', 'upstream_quota_exhausted', 'provider_not_configured'] as const) {
      expect(fallsBack(new GatewayError(code, { vars: { provider: 'a', model: 'm' } })), code).toBe(true);
    }
    expect(fallsBack(new GatewayError('upstream_unavailable', { vars: { provider: 'a', detail: 'connection refused', stage: 'connect' } }))).toBe(true);
    expect(fallsBack(new GatewayError('upstream_timeout', { vars: { provider: 'a', timeoutMs: 1, phase: 'connect' } }))).toBe(true);
    for (const status of [429, 500, 502, 503, 529]) expect(fallsBack(http(status)), String(status)).toBe(true);
  });

  it('not on a timeout or reset after the request was sent (the provider may do and bill it), an invalid answer to a call it took, a 4xx about the request, or a bug', () => {
    expect(fallsBack(new GatewayError('upstream_timeout', { vars: { provider: 'a', timeoutMs: 1, phase: 'first byte' } }))).toBe(false);
    // A reset may come after the provider read the request.
    expect(fallsBack(new GatewayError('upstream_unavailable', { vars: { provider: 'a', detail: 'connection reset', stage: 'exchange' } }))).toBe(false);
    // A proxy in front of the provider gave up waiting for it (504; Cloudflare's 524): the request
    // was sent, and the provider behind it may still be making (and billing) the answer.
    for (const status of [504, 524]) expect(fallsBack(http(status)), String(status)).toBe(false);
    expect(fallsBack(malformedResponse('a', 'the body is not JSON'))).toBe(false);
    for (const status of [400, 404, 409, 413, 422]) expect(fallsBack(http(status)), String(status)).toBe(false);
    // An error the provider answered with HTTP 200: it took the call, whatever status it names.
    for (const status of [429, 502, 503]) {
      const taken = http(status);
      taken.taken = true;
      expect(fallsBack(taken), `${status} under 200`).toBe(false);
    }
    expect(fallsBack(new TypeError('x'))).toBe(false);
    expect(fallsBack(new UpstreamHttpError(400, { error: { message: 'm', type: 't', code: null, param: null } }, 'a'))).toBe(false);
  });
});

describe('RouteCooldown', () => {
  const routes = routesOf(model({ fallbacks: [{ provider: 'b' }, { provider: 'a', upstream: 'm-other' }] }), providers);

  it('moves a route that failed after the others until its time is up, keyed by provider and upstream name', () => {
    const clock = new ManualClock(0);
    const cooldown = new RouteCooldown(clock, 1000);
    expect(cooldown.order(routes)).toBe(routes);
    cooldown.failed(routes[0]!);
    expect(cooldown.order(routes).map((r) => [r.provider.id, r.model.upstream])).toEqual([
      ['b', 'm'],
      ['a', 'm-other'],
      ['a', undefined],
    ]);
    clock.advance(1000);
    expect(cooldown.order(routes)).toBe(routes);
  });

  it('keeps the configured order when every route cools, and does nothing at 0 ms', () => {
    const clock = new ManualClock(0);
    const cooldown = new RouteCooldown(clock, 1000);
    for (const r of routes) cooldown.failed(r);
    expect(cooldown.order(routes)).toEqual(routes);
    const off = new RouteCooldown(clock, 0);
    off.failed(routes[0]!);
    expect(off.order(routes)).toBe(routes);
  });
});
