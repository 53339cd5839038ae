// /v1 answers browsers on other origins the way OpenAI's API does (http/cors.ts), unless the
// operator narrows or turns it off (server.corsOrigins).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const chat = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });

describe('CORS on /v1, any origin (the default)', () => {
  let t: TestGateway;
  let secret: string;
  beforeAll(async () => {
    t = await startTestGateway();
    secret = (await t.newAccount()).secret;
  });
  afterAll(async () => t?.close());

  it('answers a preflight with what the page asked to send', async () => {
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, x-stainless-os' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-methods')).toBe('GET, POST, OPTIONS');
    expect(res.headers.get('access-control-allow-headers')).toBe('authorization, content-type, x-stainless-os');
    expect(res.headers.get('access-control-max-age')).toBe('86400');
  });

  it("answers a preflight without reading its body: a stranger's OPTIONS had up to 10 MiB of JSON parsed", async () => {
    // Not JSON at all: parsed, it was a 400 invalid_json, so a 9 MB body was parsed too (~100 ms
    // of the event loop each, with no key asked for).
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'content-type': 'application/json' },
      body: `{"model": "${'x'.repeat(100_000)}`,
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    // The connection still serves the next request.
    expect((await fetch(`${t.url}/v1/models`)).status).toBe(200);
  });

  it('lets the page read the answer, its limit headers and its errors', async () => {
    const headers = { origin: 'https://app.example', authorization: `Bearer ${secret}`, 'content-type': 'application/json' };
    const ok = await fetch(`${t.url}/v1/chat/completions`, { method: 'POST', headers, body: chat });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe('*');
    const exposed = ok.headers.get('access-control-expose-headers')!.split(', ');
    for (const h of ['x-request-id', 'x-ratelimit-remaining-tokens', 'x-tollgate-credits-used', 'retry-after']) expect(exposed).toContain(h);
    const refused = await fetch(`${t.url}/v1/chat/completions`, { method: 'POST', headers: { ...headers, authorization: 'Bearer tg-nope' }, body: chat });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe('*');
    const models = await fetch(`${t.url}/v1/models`, { headers: { origin: 'https://app.example' } });
    expect(models.headers.get('access-control-allow-origin')).toBe('*');
  });

  it('lets the page read a 404 too: an endpoint or method the gateway does not serve', async () => {
    // The openai SDK's client.responses.create() from a page: without the headers the browser
    // hides the 404 and the SDK reports a connection error.
    const headers = { origin: 'https://app.example', authorization: `Bearer ${secret}`, 'content-type': 'application/json' };
    for (const [method, path] of [['POST', '/v1/responses'], ['GET', '/v1/chat/completions']] as const) {
      const res = await fetch(`${t.url}${path}`, { method, headers, ...(method === 'POST' && { body: chat }) });
      expect(res.status).toBe(404);
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('route_not_found');
    }
  });

  it('sends nothing of it to a caller that is not a browser on another origin', async () => {
    const res = await fetch(`${t.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' }, body: chat });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    // Nor to the web app's own API, which runs on cookies.
    const app = await fetch(`${t.url}/app/api/session`, { headers: { origin: 'https://app.example' } });
    expect(app.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('CORS on /v1, narrowed or off', () => {
  let t: TestGateway;
  let off: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ config: { server: { host: '127.0.0.1', port: 0, publicUrl: 'http://gateway.test', corsOrigins: ['https://app.example.com'] } } });
    off = await startTestGateway({ config: { server: { host: '127.0.0.1', port: 0, publicUrl: 'http://gateway.test', corsOrigins: [] } } });
  });
  afterAll(async () => {
    await t?.close();
    await off?.close();
  });

  const preflight = (url: string, origin: string) =>
    fetch(`${url}/v1/chat/completions`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST' } });

  it('allows only the listed origins, by name', async () => {
    const listed = await preflight(t.url, 'https://app.example.com');
    expect(listed.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(listed.headers.get('vary')).toMatch(/Origin/);
    const other = await preflight(t.url, 'https://evil.example');
    expect(other.status).toBe(204);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    // The answer depends on the Origin whatever it was, so a shared cache must key it by Origin:
    // else the one made for another origin (or none) is served to the listed one, unreadable.
    expect(other.headers.get('vary')).toMatch(/Origin/);
    for (const origin of ['https://evil.example', undefined]) {
      const models = await fetch(`${t.url}/v1/models`, { headers: origin ? { origin } : {} });
      expect(models.headers.get('access-control-allow-origin')).toBeNull();
      expect(models.headers.get('vary')).toMatch(/Origin/);
    }
  });

  it('with none listed, answers no preflight and sends no CORS headers', async () => {
    const res = await preflight(off.url, 'https://app.example');
    expect(res.status).toBe(404);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });
});
