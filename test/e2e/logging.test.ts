// One JSON log line per request, and no secret in any of them: API keys, the admin token and the
// providers' keys never reach the log, on success or failure paths.
import { once } from 'node:events';
import { connect } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { jsonLines } from '../helpers/log-lines.js';
import { chatStreamFixture } from '../helpers/fake-openai.js';

const lines: Array<Record<string, unknown>> = [];
const sink = jsonLines(lines);

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway({ gateway: { logger: pino({ level: 'info' }, sink) } });
});
afterAll(async () => t?.close());

describe('start warnings', () => {
  it('a short admin token or session secret is named at start with its length, never its value', async () => {
    const seen: Array<Record<string, unknown>> = [];
    const out = jsonLines(seen);
    const g = await startTestGateway({ config: { admin: { token: 'short-admin-token' }, web: { sessionSecret: 'short-secret' } }, gateway: { logger: pino({ level: 'info' }, out) } });
    await g.close();
    const warnings = seen.filter((l) => l.level === 40).map((l) => String(l.msg));
    expect(warnings).toContain('web.sessionSecret is 12 characters: use at least 32 random ones (e.g. openssl rand -base64 32)');
    expect(warnings).toContain('admin.token is 17 characters: use at least 32 random ones (e.g. openssl rand -base64 32)');
    expect(JSON.stringify(seen)).not.toMatch(/short-admin-token|short-secret/);
  });

  it('an empty admin token or session secret is not called short (the admin API is off; the secret is made once and kept in the database)', async () => {
    const seen: Array<Record<string, unknown>> = [];
    const g = await startTestGateway({ config: { admin: { token: '' }, web: { sessionSecret: '' } }, gateway: { logger: pino({ level: 'info' }, jsonLines(seen)) } });
    await g.close();
    expect(seen.filter((l) => l.level === 40).map((l) => String(l.msg))).not.toContainEqual(expect.stringMatching(/is 0 characters/));
  });
});

describe('request logs', () => {
  it('writes one line per request with the request id, and never a secret', async () => {
    const { secret, accountId } = await t.newAccount();
    const client = t.client(secret);
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true });
    for await (const _ of stream);
    t.openai.enqueue({ kind: 'json', status: 401, body: { error: { message: 'Incorrect API key provided: sk-upstr*****cret', type: 'invalid_request_error', code: 'invalid_api_key', param: null } } });
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).catch(() => {});
    // A provider that echoes a whole key in its message: masked in the operator's line.
    const echoed = 'sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789';
    t.openai.enqueue({ kind: 'json', status: 403, body: { error: { message: `Key ${echoed} is disabled`, type: 'invalid_request_error', code: null, param: null } } });
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).catch(() => {});
    await fetch(`${t.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${secret}x`, 'content-type': 'application/json' }, body: '{' });
    await fetch(`${t.url}/admin/v1/accounts/${accountId}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    await fetch(`${t.url}/v1/${secret}/chat/completions`); // a key pasted into the path: 404, not logged
    await new Promise((r) => setTimeout(r, 50));

    const text = JSON.stringify(lines);
    for (const s of [secret, secret.slice(3), ADMIN_TOKEN, 'sk-upstream-secret', 'fal-upstream-secret', echoed]) expect(text).not.toContain(s);

    // The caller's 502 hides the provider's words; the operator's log has them, once per refusal.
    const refused = lines.filter((l) => l.level === 50 && String(l.msg).startsWith("the provider refused the gateway's credentials"));
    expect(refused).toEqual([
      expect.objectContaining({ provider: 'openai', upstreamStatus: 401, detail: expect.stringContaining('Incorrect API key provided') }),
      expect.objectContaining({ provider: 'openai', upstreamStatus: 403, detail: expect.stringContaining('[masked] is disabled') }),
    ]);

    const requests = lines.filter((l) => l.msg === 'request');
    // 2 admin calls from newAccount, 4 chat calls, 1 with a wrong key (refused before its malformed
    // body is read), 1 admin read, 1 key in the path.
    expect(requests).toHaveLength(9);
    expect(requests.at(-1)).toMatchObject({ status: 404, path: '/v1/tg-[masked]/chat/completions' });
    const chat = requests.filter((l) => l.path === '/v1/chat/completions');
    // The provider's 401 is about the gateway's key: a 502 upstream_auth_failed to the caller.
    expect(chat.map((l) => l.status)).toEqual([200, 200, 502, 502, 401]);
    expect(chat[0]).toMatchObject({ account: accountId, model: 'gpt-4o-mini', credits: 12, method: 'POST', ip: '127.0.0.1' });
    // A stream's line carries its charge too, written once the stream has settled.
    expect(chat[1]).toMatchObject({ account: accountId, model: 'gpt-4o-mini', credits: expect.any(Number) });
    expect(new Set(requests.map((l) => l.reqId)).size).toBe(9);
    // Each error answer's line says which error it was.
    expect(chat.slice(2).map((l) => l.code)).toEqual(['upstream_auth_failed', 'upstream_auth_failed', 'invalid_api_key']);
    expect(chat[0]).not.toHaveProperty('code');
    expect(requests.at(-1)).toMatchObject({ code: 'route_not_found' });
  });

  it("says which rule refused a request, in its line and in /metrics' tollgate_errors_total; a provider's own error passed through is logged, not counted there", async () => {
    const g = await startTestGateway({ config: { plans: { free: { rules: [{ id: 'tiny', measure: 'requests', limit: 1, window: 'lifetime' }] } } }, gateway: { logger: pino({ level: 'info' }, sink) } });
    try {
      const { secret } = await g.newAccount();
      const before = lines.length;
      const chat = () => g.client(secret).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
      g.openai.enqueue({ kind: 'json', status: 400, body: { error: { message: 'Invalid value for temperature', type: 'invalid_request_error', code: 'invalid_value', param: 'temperature' } } });
      await expect(chat()).rejects.toMatchObject({ status: 400 }); // not done: not counted
      await chat();
      await expect(chat()).rejects.toMatchObject({ status: 403 });
      await new Promise((r) => setTimeout(r, 50));
      const logged = lines.slice(before).filter((l) => l.msg === 'request' && l.path === '/v1/chat/completions');
      expect(logged.map((l) => [l.status, l.code, l.rule])).toEqual([
        [400, 'invalid_value', undefined],
        [200, undefined, undefined],
        [403, 'resource_exhausted', 'tiny'],
      ]);
      const metrics = await (await fetch(`${g.url}/metrics`)).text();
      expect(metrics).toContain('tollgate_errors_total{code="resource_exhausted",rule="tiny"} 1');
      expect(metrics).not.toContain('code="invalid_value"');
    } finally {
      await g.close();
    }
  });
});

describe('a key in a body field', () => {
  it('pasted as the model (a 404 model_not_found) is masked in the access line', async () => {
    const { secret } = await t.newAccount();
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: `openai/${secret}`, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status).toBe(404);
    await new Promise((r) => setTimeout(r, 50));
    expect(JSON.stringify(lines)).not.toContain(secret.slice(3));
    expect(lines.at(-1)).toMatchObject({ msg: 'request', status: 404, model: 'openai/tg-[masked]' });
  });

  it('across the 256-character cut of a long model name is masked before the cut', async () => {
    const { secret } = await t.newAccount();
    const model = `${'m'.repeat(230)}/${secret}`;
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status).toBe(404);
    await new Promise((r) => setTimeout(r, 50));
    // The cut used to leave `tg-` and 22 of the key's characters, which no mask of a whole key matched.
    expect(JSON.stringify(lines)).not.toContain(secret.slice(3, 20));
    expect(lines.at(-1)).toMatchObject({ msg: 'request', status: 404, model: `${'m'.repeat(230)}/tg-[masked]` });
  });

  it('a long model name is clipped at 256 characters: the line is not the client\'s to fill', async () => {
    const { secret } = await t.newAccount();
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm'.repeat(100_000), messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status).toBe(404);
    await new Promise((r) => setTimeout(r, 50));
    expect(lines.at(-1)).toMatchObject({ msg: 'request', status: 404, model: `${'m'.repeat(256)}…` });
  });
});

describe('a model name from the Playground', () => {
  it('is clipped in the access line as on /v1: a signed-in user wrote a 2 MB model whole into the log per request', async () => {
    const cookie = (res: Response) => Object.fromEntries(res.headers.getSetCookie().map((c) => c.split(';')[0]!.split('=') as [string, string]));
    const { tg_csrf: anonymous } = cookie(await fetch(`${t.url}/app/api/session`));
    const signup = await fetch(`${t.url}/app/api/signup`, {
      method: 'POST',
      headers: { cookie: `tg_csrf=${anonymous}`, 'x-csrf-token': anonymous!, 'content-type': 'application/json' },
      body: JSON.stringify({ email: `long-model-${Date.now()}@example.com`, password: 'correct horse battery' }),
    });
    expect(signup.status).toBe(201);
    const { tg_session: session, tg_csrf: csrf } = cookie(signup);
    const { secret } = await t.newAccount();
    const model = `${'m'.repeat(230)}/${secret}/${'m'.repeat(2_000_000)}`;
    const res = await fetch(`${t.url}/app/api/playground/chat`, {
      method: 'POST',
      headers: { cookie: `tg_session=${session}; tg_csrf=${csrf}`, 'x-csrf-token': csrf!, 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status).toBe(404);
    await new Promise((r) => setTimeout(r, 50));
    const line = lines.at(-1)!;
    expect(line).toMatchObject({ msg: 'request', path: '/app/api/playground/chat', status: 404 });
    expect(line.model).toBe(`${'m'.repeat(230)}/tg-[masked]/${'m'.repeat(256 - 243)}…`);
    expect(JSON.stringify(lines)).not.toContain(secret.slice(3, 20));
  });
});

describe('a URL the router refuses', () => {
  it('(bad percent-encoding) still gets its access line and its count in /metrics', async () => {
    const { secret } = await t.newAccount();
    const before = lines.length;
    const res = await fetch(`${t.url}/v1/%zz/${secret}`);
    expect(res.status).toBe(400);
    await new Promise((r) => setTimeout(r, 50));
    const line = lines.slice(before).find((l) => l.msg === 'request');
    expect(line).toMatchObject({ reqId: res.headers.get('x-request-id'), status: 400, path: '/v1/%zz/tg-[masked]' });
    expect(JSON.stringify(lines)).not.toContain(secret.slice(3));
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toContain('tollgate_http_requests_total{route="unmatched",status="400"} 1');
  });
});

describe("a request Node's HTTP parser refuses", () => {
  it('(headers over the limit: 431) still gets its access line and its count in /metrics', async () => {
    const { secret } = await t.newAccount();
    const before = lines.length;
    const sock = connect(Number(new URL(t.url).port), '127.0.0.1');
    await once(sock, 'connect');
    sock.end(`GET /v1/models/${secret}?q=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${secret}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    let text = '';
    for await (const c of sock) text += (c as Buffer).toString();
    const requestId = /x-request-id: (\S+)/.exec(text)?.[1];
    await new Promise((r) => setTimeout(r, 50));
    const line = lines.slice(before).find((l) => l.msg === 'request');
    expect(line).toMatchObject({ reqId: requestId, method: 'GET', path: '/v1/models/tg-[masked]', status: 431, ip: '127.0.0.1' });
    expect(JSON.stringify(lines)).not.toContain(secret.slice(3));
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toContain('tollgate_http_requests_total{route="unmatched",status="431"} 1');
    expect(line).toMatchObject({ code: 'headers_too_large' });
    expect(metrics).toContain('tollgate_errors_total{code="headers_too_large",rule=""} 1');
  });
});

describe('a connection that never sent a request', () => {
  it("(Node's request timeout on a silent connection: a preconnect, a TCP health check) is no request in the log or /metrics", async () => {
    const server = t.gw.app.server;
    const accepted = once(server, 'connection') as Promise<[import('node:net').Socket]>;
    const sock = connect(Number(new URL(t.url).port), '127.0.0.1');
    await once(sock, 'connect');
    const [serverSide] = await accepted;
    const before = lines.length;
    // What Node does 60-90 s after such a connection opened (lib/_http_server.js onRequestTimeout).
    server.emit('clientError', Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), serverSide);
    let text = '';
    for await (const c of sock) text += (c as Buffer).toString();
    expect(text).toMatch(/^HTTP\/1.1 408/);
    await new Promise((r) => setTimeout(r, 50));
    expect(lines.slice(before).filter((l) => l.msg === 'request')).toEqual([]);
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).not.toContain('status="408"');
  });
});

describe('a request the client left', () => {
  it('still gets its access line, with aborted: true, and its count in /metrics (499 when nothing was sent)', async () => {
    const { secret } = await t.newAccount();
    const before = lines.length;
    // A stream cut off after its first chunks, and a call left before its answer.
    let release!: () => void;
    t.openai.enqueue({ kind: 'sse', events: chatStreamFixture, holdBeforeIndex: 2, release: new Promise<void>((r) => (release = r)) });
    t.openai.enqueue({ kind: 'hang' });
    const ids: string[] = [];
    for (const stream of [true, false]) {
      const ac = new AbortController();
      const res = fetch(`${t.url}/v1/chat/completions`, {
        method: 'POST',
        signal: ac.signal,
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream }),
      });
      if (stream) {
        const r = await res;
        ids.push(r.headers.get('x-request-id')!);
        await r.body!.getReader().read();
      } else {
        for (let i = 0; i < 100 && t.openai.inFlight < 2; i++) await new Promise((r) => setTimeout(r, 20));
      }
      ac.abort();
      await res.catch(() => {});
    }
    release();
    await new Promise((r) => setTimeout(r, 200));
    const seen = lines.slice(before).filter((l) => l.msg === 'request' && l.path === '/v1/chat/completions');
    expect(seen).toHaveLength(2);
    expect(seen[0]).toMatchObject({ reqId: ids[0], status: 200, aborted: true, model: 'gpt-4o-mini' });
    expect(seen[1]).toMatchObject({ status: 499, aborted: true, model: 'gpt-4o-mini' });
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toContain('tollgate_http_requests_total{route="/v1/chat/completions",status="499"} 1');
  });
});

describe('a suspended account', () => {
  it("names the account and key of a suspended account's refused request (the key did authenticate)", async () => {
    const { secret, accountId, keyId } = await t.newAccount();
    await t.admin('PATCH', `/accounts/${accountId}`, { suspended: true });
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status).toBe(403);
    // SPEC §6: an answer to a known key carries its limit headers.
    expect(res.headers.get('x-ratelimit-remaining-tokens')).not.toBeNull();
    const id = res.headers.get('x-request-id');
    await new Promise((r) => setTimeout(r, 50));
    // Without them the operator could not tell which suspended account still calls.
    expect(lines.find((l) => l.msg === 'request' && l.reqId === id)).toMatchObject({ status: 403, account: accountId, key: keyId });
  });
});
