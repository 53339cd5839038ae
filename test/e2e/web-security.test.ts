// The web app's defences an attacker meets first, against the real server: which passwords can be
// set (core/password-policy.ts) and the headers every /app answer carries.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway();
});
afterAll(async () => t?.close());

/** A cookie jar and fetch for one origin, sending the CSRF cookie's value as the header. */
class Browser {
  cookies = new Map<string, string>();
  constructor(private readonly base: () => string = () => t.url) {}

  async json(path: string, init: { method?: string; body?: unknown } = {}) {
    const headers: Record<string, string> = {};
    if (this.cookies.size > 0) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    const csrf = this.cookies.get('tg_csrf') ?? this.cookies.get('__Host-tg_csrf');
    if (csrf) headers['x-csrf-token'] = csrf;
    const res = await fetch(`${this.base()}${path}`, { method: init.method ?? 'GET', headers, redirect: 'manual', ...(init.body !== undefined && { body: JSON.stringify(init.body) }) });
    for (const c of res.headers.getSetCookie()) {
      const [pair, ...attrs] = c.split(';');
      const eq = pair!.indexOf('=');
      const [name, value] = [pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim()];
      if (attrs.some((a) => /^\s*max-age=0$/i.test(a)) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
  }
}

let n = 0;
const freshEmail = () => `sec-${Date.now()}-${++n}@example.test`;

describe('passwords an attacker guesses first cannot be set', () => {
  it('sign-up refuses the most common passwords, runs and repeats, and the email itself: 400 param password, no account made', async () => {
    for (const [password, why] of [
      ['password123', /most common/],
      ['Football2024!', /most common/],
      ['12345678', /consecutive/],
      ['        ', /repeats/],
      ['EMAIL', /email address/],
    ] as const) {
      const b = new Browser();
      await b.json('/app/api/session');
      const email = freshEmail();
      const res = await b.json('/app/api/signup', { method: 'POST', body: { email, password: password === 'EMAIL' ? email : password } });
      expect(res.status, password).toBe(400);
      expect(res.body.error, password).toMatchObject({ code: 'invalid_request', param: 'password' });
      expect(res.body.error.message, password).toMatch(why);
      expect((await t.admin('GET', `/accounts?email=${encodeURIComponent(email)}`)).body.data, password).toEqual([]);
    }
  });

  it('a password change, a reset link and the admin API refuse them too', async () => {
    const b = new Browser();
    await b.json('/app/api/session');
    const email = freshEmail();
    const made = await b.json('/app/api/signup', { method: 'POST', body: { email, password: 'correct horse battery' } });
    expect(made.status).toBe(201);
    const change = await b.json('/app/api/password', { method: 'POST', body: { current: 'correct horse battery', password: 'qwerty123' } });
    expect([change.status, change.body.error.param]).toEqual([400, 'password']);
    const own = await b.json('/app/api/password', { method: 'POST', body: { current: 'correct horse battery', password: email.split('@')[0] } });
    expect([own.status, own.body.error.param]).toEqual([400, 'password']);
    const link = await t.admin('POST', `/accounts/${made.body.account.id}/password-reset`, {});
    const other = new Browser();
    await other.json('/app/api/session');
    const reset = await other.json('/app/api/password/reset', { method: 'POST', body: { token: link.body.url.split('#')[1], password: 'iloveyou1' } });
    expect([reset.status, reset.body.error.param]).toEqual([400, 'password']);
    const byAdmin = await t.admin('PATCH', `/accounts/${made.body.account.id}`, { password: 'aaaaaaaaaa' });
    expect([byAdmin.status, byAdmin.body.error.param]).toEqual([400, 'password']);
    // The account's own email is refused wherever a password is set, not only at sign-up and on a change.
    const resetToEmail = await other.json('/app/api/password/reset', { method: 'POST', body: { token: link.body.url.split('#')[1], password: email } });
    expect([resetToEmail.status, resetToEmail.body.error.param]).toEqual([400, 'password']);
    expect(resetToEmail.body.error.message).toMatch(/email address/);
    const adminToName = await t.admin('PATCH', `/accounts/${made.body.account.id}`, { password: email.split('@')[0] });
    expect([adminToName.status, adminToName.body.error.param]).toEqual([400, 'password']);
    const newEmail = freshEmail();
    const adminToNewEmail = await t.admin('PATCH', `/accounts/${made.body.account.id}`, { email: newEmail, password: newEmail });
    expect([adminToNewEmail.status, adminToNewEmail.body.error.param]).toEqual([400, 'password']);
    const createdWithEmail = freshEmail();
    const adminCreate = await t.admin('POST', '/accounts', { email: createdWithEmail, password: createdWithEmail.toUpperCase() });
    expect([adminCreate.status, adminCreate.body.error.param]).toEqual([400, 'password']);
    expect((await t.admin('GET', `/accounts?email=${encodeURIComponent(createdWithEmail)}`)).body.data).toEqual([]);
    // None of them changed it.
    const again = new Browser();
    await again.json('/app/api/session');
    expect((await again.json('/app/api/signin', { method: 'POST', body: { email, password: 'correct horse battery' } })).status).toBe(200);
  });
});

describe('headers of every web app answer', () => {
  const assetOf = async (base: string) => /\/app\/assets\/[^"]+\.js/.exec(await (await fetch(`${base}/app/signin`)).text())![0];

  it('pages, assets and the API (its errors too) are nosniff; over plain http, no HSTS', async () => {
    const answers = [
      await fetch(`${t.url}/app/signin`),
      await fetch(`${t.url}${await assetOf(t.url)}`),
      await fetch(`${t.url}/app/api/session`),
      await fetch(`${t.url}/app/api/keys`),
    ];
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 401]);
    for (const r of answers) {
      expect(r.headers.get('x-content-type-options'), r.url).toBe('nosniff');
      expect(r.headers.get('strict-transport-security'), r.url).toBeNull();
    }
  });

  it('with an https publicUrl, pages, assets and the API tell the browser to use https only (HSTS)', async () => {
    const s = await startTestGateway({ config: { server: { host: '127.0.0.1', port: 0, publicUrl: 'https://gateway.test' } } });
    try {
      for (const path of ['/app/signin', await assetOf(s.url), '/app/api/session', '/app/api/keys']) {
        const r = await fetch(`${s.url}${path}`);
        expect(r.headers.get('strict-transport-security'), path).toBe('max-age=31536000');
        expect(r.headers.get('x-content-type-options'), path).toBe('nosniff');
      }
    } finally {
      await s.close();
    }
  });
});
