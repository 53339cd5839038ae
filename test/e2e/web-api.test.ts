// The web app's server side (docs/web-api.md): sessions and CSRF by cookie, sign-in limits, pages,
// account isolation, keys that work on /v1, the Playground metered under surface `playground`,
// and billing. Cookies are handled by hand, as a browser would.
import OpenAI from 'openai';
import { scryptSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyPassword } from '../../src/core/passwords.js';
import { decodeSse } from '../../src/lib/sse.js';
import { StorageUnavailableError } from '../../src/storage/ports.js';
import { chatStreamFixture } from '../helpers/fake-openai.js';
import { ADMIN_TOKEN, startTestGateway, testModels, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;
const webDist = mkdtempSync(join(tmpdir(), 'tollgate-web-'));
const INDEX = '<!doctype html><title>Tollgate SPA</title><div id="app"></div>';

beforeAll(async () => {
  mkdirSync(join(webDist, 'assets'));
  writeFileSync(join(webDist, 'index.html'), INDEX);
  writeFileSync(join(webDist, 'assets', 'index-abc123.js'), 'console.log("spa")');
  t = await startTestGateway({
    config: { models: [...testModels(), { id: 'gpt-4o', kind: 'chat', provider: 'openai', pro: true, price: { input: 2.5, output: 10 } }] },
    gateway: { webDistDir: webDist },
  });
});
afterAll(async () => {
  await t?.close();
  rmSync(webDist, { recursive: true, force: true });
});

const DELAY_MS = 400;
let emails = 0;
const freshEmail = () => `user${++emails}-${Date.now()}@example.com`;
const PASSWORD = 'correct horse battery';

/** A browser's cookie jar for one origin, and fetch through it. */
class Browser {
  cookies = new Map<string, string>();
  setCookies: string[] = [];

  /** The gateway this browser talks to (the file's shared one unless given). */
  constructor(private readonly base?: string) {}

  async fetch(path: string, init: { method?: string; body?: unknown; csrf?: string | null; headers?: Record<string, string> } = {}) {
    const headers: Record<string, string> = { ...init.headers };
    if (this.cookies.size > 0) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    const csrf = init.csrf === undefined ? (this.cookies.get('tg_csrf') ?? this.cookies.get('__Host-tg_csrf')) : init.csrf;
    if (csrf !== null && csrf !== undefined) headers['x-csrf-token'] = csrf;
    const res = await fetch(`${this.base ?? t.url}${path}`, {
      method: init.method ?? 'GET',
      headers,
      redirect: 'manual',
      ...(init.body !== undefined && { body: JSON.stringify(init.body) }),
    });
    this.setCookies = res.headers.getSetCookie();
    for (const c of this.setCookies) {
      const [pair, ...attrs] = c.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (attrs.some((a) => /^\s*max-age=0$/i.test(a)) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }

  async json(path: string, init: Parameters<Browser['fetch']>[1] = {}) {
    const res = await this.fetch(path, init);
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
  }

  /** GET /session, which (re)issues the CSRF cookie. */
  async session() {
    return (await this.json('/app/api/session')).body;
  }
}

async function signedUp(email = freshEmail()): Promise<{ b: Browser; account: { id: string; plan: string } ; email: string }> {
  const b = new Browser();
  await b.session();
  const res = await b.json('/app/api/signup', { method: 'POST', body: { email, password: PASSWORD } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return { b, account: res.body.account, email };
}

/** Reads a Playground chat stream to its end; returns the data payloads. */
async function readStream(res: Response): Promise<string[]> {
  const out: string[] = [];
  for await (const e of decodeSse(res.body as unknown as AsyncIterable<Uint8Array>)) out.push(e.data);
  return out;
}

const chat = (model = 'gpt-4o-mini') => ({ model, messages: [{ role: 'user', content: 'hi' }] });

describe('sign-up, session and sign-in', () => {
  it('over https the cookies are __Host- prefixed, and unprefixed ones (a sibling subdomain can set those) are not read', async () => {
    const s = await startTestGateway({ config: { server: { host: '127.0.0.1', port: 0, publicUrl: 'https://gateway.test' } } });
    try {
      const b = new Browser(s.url);
      const anon = await b.session();
      const csrfCookie = b.setCookies.find((c) => c.startsWith('__Host-tg_csrf='))!;
      expect(csrfCookie).toMatch(/; Secure/);
      expect(csrfCookie).toMatch(/Path=\//);
      expect(csrfCookie).not.toMatch(/Domain=/i);
      expect(b.cookies.get('__Host-tg_csrf')).toBe(anon.csrfToken);
      const res = await b.json('/app/api/signup', { method: 'POST', body: { email: freshEmail(), password: PASSWORD } });
      expect(res.status).toBe(201);
      expect(b.setCookies.find((c) => c.startsWith('__Host-tg_session='))).toMatch(/HttpOnly.*; Secure|; Secure.*HttpOnly/);
      expect(await b.session()).toMatchObject({ authenticated: true });
      // The same values under the plain names: what a cookie tossed from a sibling subdomain looks like.
      const token = b.cookies.get('__Host-tg_session')!;
      const tossed = new Browser(s.url);
      tossed.cookies.set('tg_session', token);
      expect(await tossed.session()).toMatchObject({ authenticated: false });
      // An anonymous CSRF token of the attacker's choosing, as a plain cookie: refused.
      const forged = await new Browser(s.url).json('/app/api/signin', { method: 'POST', body: { email: 'a@example.com', password: 'x' }, csrf: 'chosen', headers: { cookie: 'tg_csrf=chosen' } });
      expect(forged.status).toBe(403);
      expect(forged.body.error.code).toBe('csrf_failed');
    } finally {
      await s.close();
    }
  });

  it('with web.sessionSecret left empty, a sign-in survives a restart: the secret made at the first start is kept in the database', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-secret-'));
    const config = { storage: { url: `sqlite:${join(dir, 'tollgate.db')}` }, web: { sessionSecret: '', signupsPerHour: 100 } };
    try {
      const first = await startTestGateway({ config });
      const b = new Browser(first.url);
      await b.session();
      const email = freshEmail();
      expect((await b.json('/app/api/signup', { method: 'POST', body: { email, password: PASSWORD } })).status).toBe(201);
      await first.close();

      const second = await startTestGateway({ config });
      try {
        const again = new Browser(second.url);
        again.cookies = b.cookies;
        const s = (await again.json('/app/api/session')).body;
        expect(s.account?.email).toBe(email);
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('signs up: session cookie httpOnly + SameSite, csrf cookie readable; GET /session authenticated', async () => {
    const b = new Browser();
    const anon = await b.session();
    expect(anon).toEqual({ authenticated: false, csrfToken: expect.any(String), signup: true, keyCreation: true });
    expect(b.cookies.get('tg_csrf')).toBe(anon.csrfToken);
    const csrfCookie = b.setCookies.find((c) => c.startsWith('tg_csrf='))!;
    expect(csrfCookie).toMatch(/SameSite=Strict/);
    expect(csrfCookie).not.toMatch(/HttpOnly/);

    const email = freshEmail();
    const res = await b.json('/app/api/signup', { method: 'POST', body: { email: email.toUpperCase(), password: PASSWORD } });
    expect(res.status).toBe(201);
    expect(res.body.account).toEqual({ id: expect.stringMatching(/^acct_/), email, plan: 'free', balance: 0, paymentMethod: false });
    const sessionCookie = b.setCookies.find((c) => c.startsWith('tg_session='))!;
    expect(sessionCookie).toMatch(/HttpOnly/);
    expect(sessionCookie).toMatch(/SameSite=Lax/);
    expect(sessionCookie).toMatch(/Path=\//);
    expect(sessionCookie).not.toMatch(/Secure/); // publicUrl is http in tests

    const s = await b.session();
    expect(s).toMatchObject({ authenticated: true, account: res.body.account });
    expect(s.csrfToken).toBe(b.cookies.get('tg_csrf'));
    // The stored hash is scrypt, never the password.
    expect(await t.gw.storage.accounts.getPasswordHash(res.body.account.id)).toMatch(/^scrypt\$16384\$8\$5\$/);

    const again = await new Browser().json('/app/api/signup', { method: 'POST', body: { email, password: PASSWORD }, csrf: 'x', headers: { cookie: 'tg_csrf=x' } });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('email_taken');
  });

  it('validates sign-up input', async () => {
    const b = new Browser();
    await b.session();
    const short = await b.json('/app/api/signup', { method: 'POST', body: { email: freshEmail(), password: 'short' } });
    expect(short.status).toBe(400);
    expect(short.body.error).toMatchObject({ code: 'invalid_request', param: 'password' });
    const bad = await b.json('/app/api/signup', { method: 'POST', body: { email: 'nope', password: PASSWORD } });
    expect(bad.body.error).toMatchObject({ code: 'invalid_request', param: 'email' });
    // What the form's <input type="email"> lets through, a host without a dot, the server takes too.
    const intranet = await b.json('/app/api/signup', { method: 'POST', body: { email: `dev${Date.now()}@localhost`, password: PASSWORD } });
    expect(intranet.status).toBe(201);
  });

  it('sign-up and sign-in take small bodies only: anyone can mint the anonymous CSRF token, so 10 MiB was anyone\'s to send', async () => {
    const b = new Browser();
    await b.session();
    for (const path of ['/app/api/signup', '/app/api/signin']) {
      const big = await b.json(path, { method: 'POST', body: { email: freshEmail(), password: 'x'.repeat(20_000) } });
      expect(big.status).toBe(413);
      expect(big.body.error.code).toBe('body_too_large');
      expect(big.body.error.message).toBe('The request body is larger than the 16384-byte limit.');
    }
    // The longest credentials the schema takes still fit: 254-character email, 1,024 four-byte characters.
    const longest = await b.json('/app/api/signin', { method: 'POST', body: { email: `${'a'.repeat(242)}@example.com`, password: '𝄞'.repeat(512) } });
    expect(longest.status).toBe(401);
  });

  it('signs in with the right password and out again', async () => {
    const { email } = await signedUp();
    const b = new Browser();
    await b.session();
    const res = await b.json('/app/api/signin', { method: 'POST', body: { email: email.toUpperCase(), password: PASSWORD } });
    expect(res.status).toBe(200);
    expect(res.body.account.email).toBe(email);
    expect((await b.session()).authenticated).toBe(true);

    // A second device of the same account, and a copy of this session's cookie kept aside.
    const other = new Browser();
    await other.session();
    expect((await other.json('/app/api/signin', { method: 'POST', body: { email, password: PASSWORD } })).status).toBe(200);
    const kept = b.cookies.get('tg_session')!;

    const out = await b.fetch('/app/api/signout', { method: 'POST' });
    expect(out.status).toBe(204);
    expect(b.cookies.has('tg_session')).toBe(false);
    expect((await b.session()).authenticated).toBe(false);
    // Signed out for good: the old token no longer works anywhere, nor do the account's other sessions.
    const replay = await fetch(`${t.url}/app/api/billing`, { headers: { cookie: `tg_session=${kept}` } });
    expect(replay.status).toBe(401);
    expect((await other.session()).authenticated).toBe(false);
    // A new sign-in works again.
    await b.session();
    expect((await b.json('/app/api/signin', { method: 'POST', body: { email, password: PASSWORD } })).status).toBe(200);
    expect((await b.session()).authenticated).toBe(true);
  });

  it('a suspended account is signed out, and only the right password hears why; lifted, its sessions come back', async () => {
    const { b, account, email } = await signedUp();
    expect((await b.session()).authenticated).toBe(true);
    expect((await t.admin('PATCH', `/accounts/${account.id}`, { suspended: true, suspendedReason: 'abuse' })).status).toBe(200);
    // The next call of the signed-in browser: the account is read fresh on every call.
    const keys = await b.json('/app/api/keys');
    expect(keys.status).toBe(401);
    expect(keys.body.error.code).toBe('session_required');
    const kept = b.cookies.get('tg_session')!;
    expect((await b.session()).authenticated).toBe(false);
    const other = new Browser();
    await other.session();
    const wrong = await other.json('/app/api/signin', { method: 'POST', body: { email, password: 'wrong password' } });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('invalid_credentials');
    const right = await other.json('/app/api/signin', { method: 'POST', body: { email, password: PASSWORD } });
    expect(right.status).toBe(403);
    expect(right.body.error.code).toBe('account_suspended');
    expect(JSON.stringify(right.body)).not.toContain('abuse');
    expect(other.cookies.has('tg_session')).toBe(false);

    await t.admin('PATCH', `/accounts/${account.id}`, { suspended: false });
    const back = await fetch(`${t.url}/app/api/billing`, { headers: { cookie: `tg_session=${kept}` } });
    expect(back.status).toBe(200);
    expect((await other.json('/app/api/signin', { method: 'POST', body: { email, password: PASSWORD } })).status).toBe(200);
  });

  it("a page loaded for one account is refused a change (409 session_changed) once the browser's session is another's, and told whose answers it gets", async () => {
    const { b, account: first } = await signedUp();
    const { b: other, account: second } = await signedUp();
    // Whose answer it is, on every signed-in call.
    expect((await b.fetch('/app/api/keys')).headers.get('x-tollgate-account')).toBe(first.id);
    // The second tab's sign-in replaced the browser's cookies; the first page still names first@.
    b.cookies = new Map(other.cookies);
    const refused = await b.json('/app/api/keys', { method: 'POST', body: { name: 'meant for first' }, headers: { 'x-tollgate-account': first.id } });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('session_changed');
    expect(refused.headers.get('x-tollgate-account')).toBe(second.id);
    const keys = await b.json('/app/api/keys');
    expect(keys.body.data.map((k: { name: string }) => k.name)).not.toContain('meant for first');
    // Naming the session's own account (or none: a client that does not say) changes nothing.
    expect((await b.json('/app/api/keys', { method: 'POST', body: { name: 'as second' }, headers: { 'x-tollgate-account': second.id } })).status).toBe(201);
    expect((await b.json('/app/api/keys', { method: 'POST', body: { name: 'unnamed' } })).status).toBe(201);
    // Signed out, no account is named.
    expect((await new Browser().fetch('/app/api/session')).headers.get('x-tollgate-account')).toBeNull();
  });

  it('a sign-in replaces a hash made with weaker scrypt parameters (p=1, before p=5) by one made with the current ones', async () => {
    const { email, account } = await signedUp();
    const salt = Buffer.alloc(16, 3);
    const old = `scrypt$16384$8$1$${salt.toString('base64')}$${scryptSync(PASSWORD, salt, 64, { N: 16384, r: 8, p: 1 }).toString('base64')}`;
    await t.gw.storage.accounts.setPasswordHash(account.id, old);
    const b = new Browser();
    await b.session();
    expect((await b.json('/app/api/signin', { method: 'POST', body: { email, password: PASSWORD } })).status).toBe(200);
    const upgraded = await t.gw.storage.accounts.getPasswordHash(account.id);
    expect(upgraded).toMatch(/^scrypt\$16384\$8\$5\$/);
    expect(await verifyPassword(PASSWORD, upgraded!)).toBe(true);
    // A wrong password changes nothing; a hash already current is left as it is.
    const other = new Browser();
    await other.session();
    expect((await other.json('/app/api/signin', { method: 'POST', body: { email, password: 'wrong password' } })).status).toBe(401);
    expect((await other.json('/app/api/signin', { method: 'POST', body: { email, password: PASSWORD } })).status).toBe(200);
    expect(await t.gw.storage.accounts.getPasswordHash(account.id)).toBe(upgraded);
  });

  it('a wrong password or unknown email answers 401 invalid_credentials, only after the delay', async () => {
    const { email } = await signedUp();
    for (const body of [{ email, password: 'wrong password' }, { email: freshEmail(), password: PASSWORD }]) {
      const b = new Browser();
      await b.session();
      const started = performance.now();
      const res = await b.json('/app/api/signin', { method: 'POST', body });
      expect(performance.now() - started).toBeGreaterThanOrEqual(DELAY_MS);
      expect(res.status).toBe(401);
      expect(res.body.error).toMatchObject({ code: 'invalid_credentials', type: 'authentication_error', message: 'The email or password is not right.' });
      expect(b.cookies.has('tg_session')).toBe(false);
    }
  });

  it('sign-up is limited per client address (web.signupsPerHour)', async () => {
    const s = await startTestGateway({ config: { web: { signupsPerHour: 3 } } });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const b = new Browser(s.url);
        expect((await b.session()).signup).toBe(true);
        statuses.push((await b.json('/app/api/signup', { method: 'POST', body: { email: `s${i}@example.test`, password: PASSWORD } })).status);
      }
      expect(statuses).toEqual([201, 201, 201, 429]);
      const b = new Browser(s.url);
      await b.session();
      const refused = await b.json('/app/api/signup', { method: 'POST', body: { email: 'late@example.test', password: PASSWORD } });
      expect(refused.body.error).toMatchObject({ code: 'too_many_signups', type: 'rate_limit_error' });
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      await s.close();
    }
  });

  it('an admin PATCH refused for its plan or a missing email changes nothing: the password and the sessions stay', async () => {
    // The password was set (and every session ended) before the plan was checked: the operator got
    // a 400 for a typo in the plan, and the account's password had changed all the same.
    const { b, account, email } = await signedUp();
    const signIn = async (password: string) => {
      const c = new Browser();
      await c.session();
      return (await c.json('/app/api/signin', { method: 'POST', body: { email, password } })).status;
    };
    const refused = await t.admin('PATCH', `/accounts/${account.id}`, { password: 'another-password', plan: 'no-such-plan' });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ code: 'invalid_request', param: 'plan' });
    expect((await b.json('/app/api/keys')).status).toBe(200);
    expect(await signIn(PASSWORD)).toBe(200);
    // An account without an email keeps its plan when the password is refused for it.
    const bare = await t.admin('POST', '/accounts', {});
    const noEmail = await t.admin('PATCH', `/accounts/${bare.body.id}`, { plan: 'paid', password: 'long-enough' });
    expect(noEmail.status).toBe(400);
    expect((await t.admin('GET', `/accounts/${bare.body.id}`)).body.plan).toBe('free');
  });

  it('web.signupsPerHour 0 closes sign-up: the session says so and a sign-up is 403 signup_closed, not a 429 to try again', async () => {
    const s = await startTestGateway({ config: { web: { signupsPerHour: 0 } } });
    try {
      const b = new Browser(s.url);
      expect(await b.session()).toMatchObject({ authenticated: false, signup: false, keyCreation: true });
      const refused = await b.json('/app/api/signup', { method: 'POST', body: { email: 'closed@example.test', password: PASSWORD } });
      expect(refused.status).toBe(403);
      expect(refused.body.error).toMatchObject({ code: 'signup_closed', type: 'permission_error' });
      expect(refused.headers.get('retry-after')).toBeNull();
      expect(b.cookies.has('tg_session')).toBe(false);
      // The operator's accounts get in with the password it sets (admin API), and a password it
      // sets again ends the sessions signed in with the old one.
      const made = await s.admin('POST', '/accounts', { email: 'ops-made@example.test', password: 'first-password' });
      expect(made.status).toBe(201);
      const signIn = async (password: string) => {
        const c = new Browser(s.url);
        await c.session();
        return { c, status: (await c.json('/app/api/signin', { method: 'POST', body: { email: 'ops-made@example.test', password } })).status };
      };
      const first = await signIn('first-password');
      expect(first.status).toBe(200);
      expect((await first.c.json('/app/api/keys')).status).toBe(200);
      expect((await s.admin('PATCH', `/accounts/${made.body.id}`, { password: 'second-password' })).status).toBe(200);
      expect((await first.c.json('/app/api/keys')).status).toBe(401);
      expect((await signIn('first-password')).status).toBe(401);
      expect((await signIn('second-password')).status).toBe(200);
      // A password needs an email to sign in with, and the sign-up rule's length.
      for (const [path, method, body] of [
        ['/accounts', 'POST', { password: 'long-enough' }],
        ['/accounts', 'POST', { email: null, password: 'long-enough' }],
        ['/accounts', 'POST', { email: 'short@example.test', password: 'short' }],
        [`/accounts/${(await s.admin('POST', '/accounts', {})).body.id}`, 'PATCH', { password: 'long-enough' }],
      ] as const) {
        const res = await s.admin(method, path, body);
        expect(res.status).toBe(400);
        expect(res.body.error).toMatchObject({ code: 'invalid_request', param: 'password' });
      }
    } finally {
      await s.close();
    }
  });

  it('behind a trusted proxy (server.trustProxy: its address) the limits count the client address it forwards', async () => {
    const s = await startTestGateway({ config: { server: { host: '127.0.0.1', port: 0, publicUrl: 'http://gateway.test', trustProxy: '127.0.0.1' }, web: { signupsPerHour: 1 } } });
    try {
      const signUp = async (i: number, forwardedFor: string) => {
        const b = new Browser(s.url);
        await b.session();
        return (await b.json('/app/api/signup', { method: 'POST', body: { email: `p${i}@example.test`, password: PASSWORD }, headers: { 'x-forwarded-for': forwardedFor } })).status;
      };
      expect([await signUp(1, '203.0.113.1'), await signUp(2, '203.0.113.2'), await signUp(3, '203.0.113.1')]).toEqual([201, 201, 429]);
    } finally {
      await s.close();
    }
  });

  it('an IPv6 client is counted by its /64: rotating addresses inside it does not reset the sign-up and sign-in limits', async () => {
    const s = await startTestGateway({
      config: { server: { host: '127.0.0.1', port: 0, publicUrl: 'http://gateway.test', trustProxy: '127.0.0.1' }, web: { signupsPerHour: 2, signinAttemptsPerMinute: 1 } },
    });
    try {
      const call = async (path: string, email: string, forwardedFor: string) => {
        const b = new Browser(s.url);
        await b.session();
        return (await b.json(path, { method: 'POST', body: { email, password: PASSWORD }, headers: { 'x-forwarded-for': forwardedFor } })).status;
      };
      // One subscriber's /64 (RFC 6177), its privacy addresses changing with every request.
      const signUps = [];
      for (let i = 1; i <= 4; i++) signUps.push(await call('/app/api/signup', `v6-${i}@example.test`, `2001:db8:1:2::${i.toString(16)}`));
      expect(signUps).toEqual([201, 201, 429, 429]);
      // Another /64 has its own share; IPv4 clients behind a dual-stack listener (::ffff:a.b.c.d) are not all one /64.
      expect(await call('/app/api/signup', 'v6-other@example.test', '2001:db8:1:3::1')).toBe(201);
      expect(await call('/app/api/signup', 'v4-a@example.test', '::ffff:198.51.100.1')).toBe(201);
      expect(await call('/app/api/signup', 'v4-b@example.test', '::ffff:198.51.100.2')).toBe(201);
      // Sign-in: 4 attempts a minute per address (4 × 1 per email), spread over four emails and eight addresses.
      const intoMinute = Date.now() % 60_000;
      if (intoMinute > 55_000) await new Promise((r) => setTimeout(r, 60_000 - intoMinute + 50));
      const signIns = [];
      for (let i = 1; i <= 5; i++) signIns.push(await call('/app/api/signin', `spray-${i}@example.test`, `2001:db8:5:6:${i.toString(16)}::${i.toString(16)}`));
      expect(signIns).toEqual([401, 401, 401, 401, 429]);
    } finally {
      await s.close();
    }
  });

  it('the 6th sign-in attempt in a minute for one email is 429 too_many_signin_attempts', async () => {
    // Keep the six attempts inside one UTC minute.
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 50_000) await new Promise((r) => setTimeout(r, 60_000 - intoMinute + 50));
    const { email } = await signedUp();
    const b = new Browser();
    await b.session();
    for (let i = 0; i < 5; i++) {
      const res = await b.json('/app/api/signin', { method: 'POST', body: { email, password: PASSWORD } });
      expect(res.status, `attempt ${i + 1}`).toBe(200);
    }
    const sixth = await b.json('/app/api/signin', { method: 'POST', body: { email, password: PASSWORD } });
    expect(sixth.status).toBe(429);
    expect(sixth.body.error).toMatchObject({ code: 'too_many_signin_attempts', type: 'rate_limit_error' });
    expect(Number(sixth.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(sixth.headers.get('retry-after'))).toBeLessThanOrEqual(60);
  });

  it('a tampered or forged session cookie is 401 session_required', async () => {
    const { b } = await signedUp();
    const token = b.cookies.get('tg_session')!;
    const [payload, mac] = token.split('.') as [string, string];
    const decoded = Buffer.from(payload, 'base64url').toString();
    const forgedPayload = Buffer.from(decoded.replace(/\.(\d+)$/, (_m, e: string) => `.${Number(e) + 1}`)).toString('base64url');
    for (const bad of [`${forgedPayload}.${mac}`, `${payload}.${mac.slice(0, -2)}AA`, 'garbage']) {
      const res = await fetch(`${t.url}/app/api/keys`, { headers: { cookie: `tg_session=${bad}` } });
      expect(res.status, bad).toBe(401);
      expect((await res.json()).error.code).toBe('session_required');
      const page = await fetch(`${t.url}/app/keys`, { headers: { cookie: `tg_session=${bad}` }, redirect: 'manual' });
      expect(page.status).toBe(302);
    }
    const s = await new Browser().json('/app/api/session', { headers: { cookie: `tg_session=${payload}.x` } });
    expect(s.body.authenticated).toBe(false);
  });
});

describe('authentication and CSRF on every call', () => {
  const privateCalls: Array<[string, string]> = [
    ['POST', '/app/api/signout'],
    ['GET', '/app/api/models'],
    ['GET', '/app/api/meter?model=gpt-4o-mini'],
    ['POST', '/app/api/playground/chat'],
    ['POST', '/app/api/playground/image'],
    ['POST', '/app/api/playground/embed'],
    ['GET', '/app/api/keys'],
    ['POST', '/app/api/keys'],
    ['DELETE', '/app/api/keys/key_x'],
    ['GET', '/app/api/usage?days=30'],
    ['GET', '/app/api/billing'],
    ['POST', '/app/api/billing/payment-method'],
    ['POST', '/app/api/billing/topup'],
  ];

  it.each(privateCalls)('%s %s without a session is 401 session_required', async (method, path) => {
    const res = await fetch(`${t.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json', 'x-csrf-token': 'x', cookie: 'tg_csrf=x' },
      ...(method !== 'GET' && { body: '{}' }),
    });
    expect(res.status).toBe(401);
    const body = await res.json();
    expect(body.error).toMatchObject({ code: 'session_required', type: 'authentication_error' });
    expect(body.requestId).toBe(res.headers.get('x-request-id'));
  });

  it('session, signup and signin need no session', async () => {
    expect((await fetch(`${t.url}/app/api/session`)).status).toBe(200);
  });

  it.each([
    ['POST', '/app/api/keys', { name: 'k' }],
    ['DELETE', '/app/api/keys/KEY', undefined],
    ['POST', '/app/api/signout', undefined],
    ['POST', '/app/api/billing/payment-method', undefined],
    ['POST', '/app/api/billing/topup', { amount: 5 }],
    ['POST', '/app/api/playground/chat', chat()],
  ])('%s %s without or with a wrong x-csrf-token is 403 csrf_failed', async (method, rawPath, body) => {
    const { b, account } = await signedUp();
    const key = await t.gw.keys.create(account.id, 'victim');
    const path = rawPath.replace('KEY', key.key.id);
    const bound = b.cookies.get('tg_csrf')!;
    for (const csrf of [null, 'wrong', `${bound.slice(0, -1)}${bound.endsWith('A') ? 'B' : 'A'}`]) {
      const res = await b.json(path, { method, body, csrf });
      expect(res.status, `csrf ${csrf}`).toBe(403);
      expect(res.body.error).toMatchObject({ code: 'csrf_failed', type: 'permission_error' });
    }
    // A planted cookie with a matching header (cookie tossing) is not enough once signed in: the
    // token must be the one bound to the session.
    b.cookies.set('tg_csrf', 'planted');
    const planted = await b.json(path, { method, body, csrf: 'planted' });
    expect(planted.body.error.code).toBe('csrf_failed');
    b.cookies.set('tg_csrf', bound);
    // Nothing happened: still signed in, key not revoked, no payment method, no balance.
    expect((await b.session()).account).toMatchObject({ plan: 'free', balance: 0, paymentMethod: false });
    expect((await t.gw.storage.keys.get(key.key.id))?.revokedAt).toBeNull();
    expect((await t.gw.storage.keys.listByAccount(account.id)).map((k) => k.name)).toEqual(['victim']);
  });

  it('sign-up and sign-in need the double-submit token too', async () => {
    const b = new Browser();
    const noCookie = await b.json('/app/api/signup', { method: 'POST', body: { email: freshEmail(), password: PASSWORD }, csrf: 'abc' });
    expect(noCookie.body.error.code).toBe('csrf_failed');
    await b.session();
    const mismatch = await b.json('/app/api/signin', { method: 'POST', body: { email: freshEmail(), password: PASSWORD }, csrf: 'abc' });
    expect(mismatch.status).toBe(403);
    expect(mismatch.body.error.code).toBe('csrf_failed');
  });
});

describe('pages', () => {
  const privatePages = ['/app', '/app/playground', '/app/keys', '/app/usage', '/app/billing'];

  it.each(privatePages)('%s 302s to /app/signin without a session, serves index.html with one', async (path) => {
    const res = await fetch(`${t.url}${path}`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    // The page asked for is named for after sign-in; the Playground is where sign-in leads anyway.
    expect(res.headers.get('location')).toBe(['/app', '/app/playground'].includes(path) ? '/app/signin' : `/app/signin?next=${encodeURIComponent(path)}`);
    const { b } = await signedUp();
    const page = await b.fetch(path);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toBe(INDEX);
  });

  it("a page's address with a trailing slash goes to the page; another address under /app is the app's own 404 page, the API's stays JSON", async () => {
    const slash = await fetch(`${t.url}/app/keys/?x=1`, { redirect: 'manual' });
    expect(slash.status).toBe(301);
    expect(slash.headers.get('location')).toBe('/app/keys?x=1');
    expect((await fetch(`${t.url}/app/signin/`, { redirect: 'manual' })).headers.get('location')).toBe('/app/signin');
    const missing = await fetch(`${t.url}/app/settings`, { redirect: 'manual' });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await missing.text()).toBe(INDEX);
    expect(missing.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    const api = await fetch(`${t.url}/app/api/nope`);
    expect(api.status).toBe(404);
    expect((await api.json()).error.code).toBe('route_not_found');
  });

  it.each(['/app/signin', '/app/signup'])('%s is served without a session', async (path) => {
    const res = await fetch(`${t.url}${path}`, { redirect: 'manual' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(INDEX);
    // Never framed (clickjacking), only its own scripts and origin; images from anywhere (a model's pictures).
    const csp = res.headers.get('content-security-policy')!;
    for (const d of ["frame-ancestors 'none'", "script-src 'self'", "connect-src 'self'", 'img-src * data: blob:', "object-src 'none'"]) expect(csp).toContain(d);
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('serves assets publicly with long cache headers', async () => {
    const res = await fetch(`${t.url}/app/assets/index-abc123.js`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('console.log("spa")');
    expect(res.headers.get('cache-control')).toMatch(/max-age=31536000/);
    expect(res.headers.get('cache-control')).toMatch(/immutable/);
    expect((await fetch(`${t.url}/app/assets/missing.js`)).status).toBe(404);
  });

  it.each(['/app/assets/', '/app/assets/..%2f..%2fpackage.json', '/app/assets/%00'])(
    '%s (a directory, a climb out of the root, a NUL) is 404 route_not_found, not a 500',
    async (path) => {
      const res = await fetch(`${t.url}${path}`);
      const body = await res.json();
      expect(res.status).toBe(404);
      expect(body.error.code).toBe('route_not_found');
      expect(body.requestId).toBe(res.headers.get('x-request-id'));
    },
  );

  it('says the web app is not built when web/dist/index.html is missing', async () => {
    const { createGateway } = await import('../../src/main.js');
    const { MemoryCounterStore } = await import('../../src/storage/memory/counters.js');
    const { pino } = await import('pino');
    const other = await createGateway({
      config: t.gw.config,
      logger: pino({ level: 'silent' }),
      webDistDir: join(webDist, 'nope'),
      // The file's embedded limiter belongs to the gateway under test (storage/sqlite/lease.ts).
      counters: new MemoryCounterStore(),
    });
    try {
      const res = await other.app.inject({ method: 'GET', url: '/app/signin' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.body).toMatch(/not built/);
      expect(res.body).toMatch(/npm run build/);
    } finally {
      await other.close();
    }
  });
});

describe('keys and usage are per account', () => {
  it('a key created in the web app works on /v1 with the official openai client; the list shows it without the secret', async () => {
    const { b } = await signedUp();
    const created = await b.json('/app/api/keys', { method: 'POST', body: { name: 'laptop' } });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ id: expect.stringMatching(/^key_/), name: 'laptop', prefix: created.body.key.slice(0, 7) + '…', createdAt: expect.any(String), lastUsedAt: null, revokedAt: null, limit: null, expiresAt: null, models: null, key: expect.stringMatching(/^tg-/) });
    const reply = await t.client(created.body.key).chat.completions.create(chat() as never);
    expect((reply as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content).toMatch(/fake upstream/);

    const listed = await b.json('/app/api/keys');
    expect(listed.body.data).toEqual([{ id: created.body.id, name: 'laptop', prefix: created.body.prefix, createdAt: created.body.createdAt, lastUsedAt: expect.anything(), revokedAt: null, limit: null, expiresAt: null, models: null }]);
    expect(JSON.stringify(listed.body)).not.toContain(created.body.key);

    const revoked = await b.json(`/app/api/keys/${created.body.id}`, { method: 'DELETE' });
    expect(revoked.status).toBe(200);
    expect(revoked.body.revokedAt).not.toBeNull();
    const err = await t.client(created.body.key).chat.completions.create(chat() as never).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 401 });
  });

  it("an account gives its key an expiry and models at creation and with PATCH; a bad one is 400 naming the field", async () => {
    const { b } = await signedUp();
    const expiresAt = new Date(Date.now() + 86_400_000).toISOString();
    const created = await b.json('/app/api/keys', { method: 'POST', body: { name: 'ci', expiresAt, models: ['text-embedding-3-small'] } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ expiresAt, models: ['text-embedding-3-small'], key: expect.stringMatching(/^tg-/) });
    const err = await t.client(created.body.key).chat.completions.create(chat() as never).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 403, code: 'model_not_allowed_for_key' });
    expect((await b.json('/app/api/keys')).body.data[0]).toMatchObject({ expiresAt, models: ['text-embedding-3-small'] });

    const opened = await b.json(`/app/api/keys/${created.body.id}`, { method: 'PATCH', body: { models: null, expiresAt: null } });
    expect(opened.body).toMatchObject({ expiresAt: null, models: null, limit: null });
    await t.client(created.body.key).chat.completions.create(chat() as never);

    const past = await b.json(`/app/api/keys/${created.body.id}`, { method: 'PATCH', body: { expiresAt: '2020-01-01T00:00:00Z' } });
    expect(past.body.error).toMatchObject({ code: 'invalid_request', param: 'expiresAt' });
    const unknown = await b.json('/app/api/keys', { method: 'POST', body: { name: 'x', models: ['nope'] } });
    expect(unknown.body.error).toMatchObject({ code: 'invalid_request', param: 'models[0]' });
    expect((await b.json(`/app/api/keys/${created.body.id}`, { method: 'PATCH', body: {} })).status).toBe(400);
  });

  it("an account sets its key's own credit limit: at creation, with PATCH, seen with its use; another account's key is not found", async () => {
    const { b } = await signedUp();
    // The free tier caps output at 512 tokens: a worst case of 617 credits; the fake's answer costs 12.
    const created = await b.json('/app/api/keys', { method: 'POST', body: { name: 'script', limit: { credits: 620, window: 'day' } } });
    expect(created.status).toBe(201);
    expect(created.body.limit).toEqual({ credits: 620, window: 'day' });
    const client = t.client(created.body.key);
    await client.chat.completions.create(chat() as never);
    const err = await client.chat.completions.create(chat() as never).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 403, code: 'key_limit_exceeded' });
    expect((await b.json('/app/api/keys')).body.data[0]).toMatchObject({ limit: { credits: 620, window: 'day' }, limitUsed: 12 });

    const raised = await b.json(`/app/api/keys/${created.body.id}`, { method: 'PATCH', body: { limit: { credits: 1000, window: 'month' } } });
    expect(raised.status).toBe(200);
    expect(raised.body).toMatchObject({ limit: { credits: 1000, window: 'month' }, limitUsed: 0 });
    await client.chat.completions.create(chat() as never);
    expect((await b.json(`/app/api/keys/${created.body.id}`, { method: 'PATCH', body: { limit: null } })).body).toMatchObject({ limit: null });
    expect((await b.json('/app/api/keys')).body.data[0].limitUsed).toBeUndefined();

    const { b: stranger } = await signedUp();
    const theirs = await stranger.json(`/app/api/keys/${created.body.id}`, { method: 'PATCH', body: { limit: { credits: 1, window: 'day' } } });
    expect(theirs.status).toBe(404);
    expect(theirs.body.error.code).toBe('key_not_found');
    const bad = await b.json(`/app/api/keys/${created.body.id}`, { method: 'PATCH', body: { limit: { credits: -1, window: 'day' } } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.param).toBe('limit.credits');
  });

  it('a key name holding U+0000 is refused, naming the field (PostgreSQL cannot store one: it was a 500 there)', async () => {
    const { b } = await signedUp();
    const res = await b.json('/app/api/keys', { method: 'POST', body: { name: 'laptop\u0000' } });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'invalid_request', param: 'name' });
    expect((await b.json('/app/api/keys')).body.data).toEqual([]);
  });

  it('an account creates at most web.keysPerDay keys a UTC day in the web app (one made 300,000: each list of them held the event loop 3.6 s)', async () => {
    const s = await startTestGateway({ config: { web: { signupsPerHour: 100, keysPerDay: 3 } } });
    try {
      const signUp = async (i: number) => {
        const b = new Browser(s.url);
        await b.session();
        const res = await b.json('/app/api/signup', { method: 'POST', body: { email: `keys${i}@example.test`, password: PASSWORD } });
        expect(res.status).toBe(201);
        await b.session();
        return { b, accountId: res.body.account.id as string };
      };
      const { b, accountId } = await signUp(1);
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await b.json('/app/api/keys', { method: 'POST', body: { name: `k${i}` } })).status);
      expect(statuses).toEqual([201, 201, 201, 429]);
      // A revoked key does not give its place back: create-and-revoke is what grew the list.
      const first = (await b.json('/app/api/keys')).body.data[0];
      expect((await b.json(`/app/api/keys/${first.id}`, { method: 'DELETE' })).status).toBe(200);
      const refused = await b.json('/app/api/keys', { method: 'POST', body: { name: 'late' } });
      expect(refused.status).toBe(429);
      expect(refused.body.error).toMatchObject({ code: 'too_many_keys', type: 'rate_limit_error' });
      expect(refused.body.error.message).toContain('3 API keys');
      const retryAfter = Number(refused.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(86_400);
      expect((await b.json('/app/api/keys')).body.data).toHaveLength(3);
      // Per account; the operator's admin API is not limited.
      const other = await signUp(2);
      expect((await other.b.json('/app/api/keys', { method: 'POST', body: { name: 'x' } })).status).toBe(201);
      expect((await s.admin('POST', `/accounts/${accountId}/keys`, { name: 'ops' })).status).toBe(201);
    } finally {
      await s.close();
    }
  });

  it("an account changes its keys' limits at most web.keyLimitChangesPerDay times a UTC day: each change empties every instance's key cache", async () => {
    // A limit is read from the key cache, so a change moves the store's credentials version and
    // every instance drops its whole cache, for every customer. Unbounded, one signed-in account
    // alternating two limits kept the key cache of every instance empty.
    const s = await startTestGateway({ config: { web: { signupsPerHour: 100, keyLimitChangesPerDay: 3 } } });
    try {
      const b = new Browser(s.url);
      await b.session();
      const res = await b.json('/app/api/signup', { method: 'POST', body: { email: 'limits@example.test', password: PASSWORD } });
      expect(res.status).toBe(201);
      await b.session();
      const key = (await b.json('/app/api/keys', { method: 'POST', body: { name: 'script' } })).body;
      const patch = (limit: unknown) => b.json(`/app/api/keys/${key.id}`, { method: 'PATCH', body: { limit } });
      const before = await s.gw.storage.credentialsVersion();
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) statuses.push((await patch({ credits: 100 + i, window: 'day' })).status);
      // The same limit again changes nothing and counts nothing.
      statuses.push((await patch({ credits: 102, window: 'day' })).status);
      const refused = await patch({ credits: 500, window: 'day' });
      expect([...statuses, refused.status]).toEqual([200, 200, 200, 200, 429]);
      expect(refused.body.error).toMatchObject({ code: 'too_many_key_limit_changes', type: 'rate_limit_error' });
      expect(refused.body.error.message).toContain('3 times');
      const retryAfter = Number(refused.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(86_400);
      expect(await s.gw.storage.credentialsVersion()).toBe(before + 3);
      expect((await b.json('/app/api/keys')).body.data[0].limit).toEqual({ credits: 102, window: 'day' });
      // The operator is not limited.
      expect((await s.admin('PATCH', `/keys/${key.id}`, { limit: null })).status).toBe(200);
    } finally {
      await s.close();
    }
  });

  it('web.keysPerDay 0 leaves keys to the operator: the session says so, a creation is 403 key_creation_closed, revoking still works', async () => {
    const s = await startTestGateway({ config: { web: { signupsPerHour: 100, keysPerDay: 0 } } });
    try {
      const b = new Browser(s.url);
      await b.session();
      const res = await b.json('/app/api/signup', { method: 'POST', body: { email: 'nokeys@example.test', password: PASSWORD } });
      expect(res.status).toBe(201);
      expect(await b.session()).toMatchObject({ authenticated: true, signup: true, keyCreation: false });
      const refused = await b.json('/app/api/keys', { method: 'POST', body: { name: 'mine' } });
      expect(refused.status).toBe(403);
      expect(refused.body.error).toMatchObject({ code: 'key_creation_closed', type: 'permission_error' });
      expect(refused.headers.get('retry-after')).toBeNull();
      const made = await s.admin('POST', `/accounts/${res.body.account.id}/keys`, { name: 'ops' });
      expect(made.status).toBe(201);
      expect((await b.json(`/app/api/keys/${made.body.id}`, { method: 'DELETE' })).status).toBe(200);
    } finally {
      await s.close();
    }
  });

  it('a key creation that fails (a storage outage) does not spend the account\'s daily quota', async () => {
    // The quota was taken before the key was written: during an outage each retry answered 503 and
    // still counted, and web.keysPerDay of them locked the account out of new keys until midnight.
    const s = await startTestGateway({ config: { web: { signupsPerHour: 100, keysPerDay: 2 } } });
    try {
      const b = new Browser(s.url);
      await b.session();
      expect((await b.json('/app/api/signup', { method: 'POST', body: { email: 'outage@example.test', password: PASSWORD } })).status).toBe(201);
      await b.session();
      const keyStore = s.gw.storage.keys;
      const create = keyStore.create.bind(keyStore);
      keyStore.create = async () => {
        throw new StorageUnavailableError('the database did not answer');
      };
      for (let i = 0; i < 3; i++) expect((await b.json('/app/api/keys', { method: 'POST', body: { name: 'k' } })).status).toBe(503);
      keyStore.create = create;
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) statuses.push((await b.json('/app/api/keys', { method: 'POST', body: { name: `k${i}` } })).status);
      expect(statuses).toEqual([201, 201, 429]);
    } finally {
      await s.close();
    }
  });

  it("revoking a key already revoked writes nothing: every instance's key cache stays (each such call emptied all of them)", async () => {
    const { b } = await signedUp();
    const key = (await b.json('/app/api/keys', { method: 'POST', body: { name: 'k' } })).body;
    expect((await b.json(`/app/api/keys/${key.id}`, { method: 'DELETE' })).status).toBe(200);
    const version = await t.gw.storage.credentialsVersion();
    const again = await b.json(`/app/api/keys/${key.id}`, { method: 'DELETE' });
    expect(again.status).toBe(200);
    expect(again.body.revokedAt).not.toBeNull();
    expect(await t.gw.storage.credentialsVersion()).toBe(version);
  });

  it("account A cannot list or revoke account B's keys, nor see B's usage", async () => {
    const a = await signedUp();
    const bAcc = await signedUp();
    const bKey = (await bAcc.b.json('/app/api/keys', { method: 'POST', body: { name: 'b-key' } })).body;
    await t.client(bKey.key).embeddings.create({ model: 'text-embedding-3-small', input: 'b' });

    expect((await a.b.json('/app/api/keys')).body.data).toEqual([]);
    const revoke = await a.b.json(`/app/api/keys/${bKey.id}`, { method: 'DELETE' });
    expect(revoke.status).toBe(404);
    expect(revoke.body.error.code).toBe('key_not_found');
    expect((await t.gw.storage.keys.get(bKey.id))?.revokedAt).toBeNull();

    const usageA = await a.b.json('/app/api/usage?days=30');
    expect(usageA.body).toEqual({ day: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/), days: [], records: [], next: null });
    expect(await (await a.b.fetch('/app/api/usage/export')).text()).toBe('createdAt,requestId,model,surface,keyName,keyId,promptTokens,outputTokens,credits,status,httpStatus\r\n');
    const usageB = await bAcc.b.json('/app/api/usage');
    expect(usageB.body.records).toHaveLength(1);
    expect(usageB.body.records[0]).toMatchObject({ accountId: bAcc.account.id, model: 'text-embedding-3-small', surface: 'api', keyId: bKey.id, keyName: 'b-key' });
    // Which provider served it is the operator's routing (the admin API shows it), not the account's to see.
    expect(usageB.body.records[0]).not.toHaveProperty('provider');
    expect((await t.admin('GET', `/usage?account=${bAcc.account.id}`)).body.data[0]).toMatchObject({ provider: 'openai' });
    expect(usageB.body.days).toEqual([
      { day: usageB.body.day, model: 'text-embedding-3-small', surface: 'api', requests: 1, credits: expect.any(Number), promptTokens: expect.any(Number), outputTokens: 0 },
    ]);
  });
});

describe('usage records', () => {
  it('pages the recent requests past the first 100 and exports every one of the period as CSV', async () => {
    const { b, account } = await signedUp();
    const key = (await b.json('/app/api/keys', { method: 'POST', body: { name: '=cmd|tricky, "name"' } })).body;
    // 130 records, 40 of them written by the API with the key, all in the same millisecond.
    const now = new Date().toISOString();
    await Promise.all(
      Array.from({ length: 130 }, (_, i) =>
        t.gw.storage.ledger.append({
          requestId: `rq-${account.id}-${i}`, accountId: account.id, keyId: i < 40 ? key.id : null, model: 'gpt-4o-mini',
          surface: i < 40 ? 'api' : 'playground', promptTokens: 3, outputTokens: 4, credits: 5, status: 'ok', httpStatus: 200, createdAt: now, provider: 'openai',
        }),
      ),
    );
    const first = (await b.json('/app/api/usage')).body;
    expect(first.records).toHaveLength(100);
    expect(typeof first.next).toBe('string');
    const rest = await b.json(`/app/api/usage/records?before=${first.next}`);
    expect(rest.status).toBe(200);
    expect(rest.body.next).toBeNull();
    const ids = [...first.records, ...rest.body.records].map((r: { requestId: string }) => r.requestId);
    expect(ids).toHaveLength(130);
    expect(new Set(ids).size).toBe(130);
    expect(rest.body.records.every((r: object) => !('provider' in r))).toBe(true);
    const two = (await b.json('/app/api/usage/records?limit=2')).body;
    expect(two.records.map((r: { requestId: string }) => r.requestId)).toEqual(ids.slice(0, 2));
    for (const bad of ['before=nope', 'limit=0', 'limit=1001', 'other=1']) {
      expect((await b.json(`/app/api/usage/records?${bad}`)).status, bad).toBe(400);
    }

    const res = await b.fetch('/app/api/usage/export?days=7');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('content-disposition')).toMatch(/^attachment; filename="tollgate-usage-\d{4}-\d{2}-\d{2}-to-\d{4}-\d{2}-\d{2}\.csv"$/);
    const lines = (await res.text()).split('\r\n');
    expect(lines[0]).toBe('createdAt,requestId,model,surface,keyName,keyId,promptTokens,outputTokens,credits,status,httpStatus');
    expect(lines.at(-1)).toBe('');
    expect(lines).toHaveLength(132);
    // The key's name quoted, and kept from running as a spreadsheet formula; no provider column.
    expect(lines).toContain(`${now},rq-${account.id}-0,gpt-4o-mini,api,"'=cmd|tricky, ""name""",${key.id},3,4,5,ok,200`);
    expect(lines).toContain(`${now},rq-${account.id}-129,gpt-4o-mini,playground,,,3,4,5,ok,200`);
    // Another account's export holds none of these; without a session there is none.
    expect(await (await (await signedUp()).b.fetch('/app/api/usage/export')).text()).not.toContain(account.id);
    expect((await fetch(`${t.url}/app/api/usage/export`)).status).toBe(401);
    expect((await b.fetch('/app/api/usage/export?days=367')).status).toBe(400);
  });

  it('answers an export whose ledger cannot be read with an error, not a 200 cut short after the header line', async () => {
    const { b } = await signedUp();
    const { StorageUnavailableError } = await import('../../src/storage/ports.js');
    const ledger = t.gw.storage.ledger;
    const { page } = ledger;
    ledger.page = async () => {
      throw new StorageUnavailableError('database unavailable: connection refused');
    };
    try {
      const res = await b.fetch('/app/api/usage/export?days=7');
      expect(res.status).toBe(503);
      expect((await res.json()).error.code).toBe('storage_unavailable');
    } finally {
      ledger.page = page;
    }
  });
});

describe('Playground', () => {
  it('streams chat as SSE under surface playground; the 11th request to one model is 429; /meter follows', async () => {
    const { b, account } = await signedUp();
    const m0 = await b.json('/app/api/meter?model=gpt-4o-mini');
    expect(m0.body).toEqual({
      day: new Date().toISOString().slice(0, 10),
      plan: 'free',
      balance: 0,
      credits: { limit: 50_000, used: 0, remaining: 50_000, reset: expect.any(String) },
      requests: { limit: 10, used: 0, remaining: 10, reset: expect.any(String) },
      limits: [
        { measure: 'credits', limit: 50_000, window: 'day', perModel: false, pro: true, regular: true, kinds: null, ids: null, api: true },
        { measure: 'requests', limit: 10, window: 'day', perModel: true, pro: false, regular: true, kinds: null, ids: null, api: false },
        { measure: 'concurrent', limit: 1, window: null, perModel: false, pro: true, regular: true, kinds: null, ids: null, api: false },
      ],
      paymentMethodLifts: true,
    });

    const res = await b.fetch('/app/api/playground/chat', { method: 'POST', body: chat() });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = await readStream(res);
    expect(events.at(-1)).toBe('[DONE]');
    const usageChunk = JSON.parse(events.at(-2)!);
    expect(usageChunk.usage).toBeDefined();
    expect(usageChunk.meta.usage.credits_used).toBeGreaterThan(0);
    const text = events.slice(0, -1).map((e) => JSON.parse(e).choices?.[0]?.delta?.content ?? '').join('');
    expect(text.length).toBeGreaterThan(0);
    // Upstream was asked to stream with usage.
    expect(t.openai.requests.at(-1)!.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });

    const ledger = (await t.admin('GET', `/usage?account=${account.id}`)).body.data;
    expect(ledger).toHaveLength(1);
    expect(ledger[0]).toMatchObject({ surface: 'playground', keyId: null, model: 'gpt-4o-mini', status: 'ok', credits: usageChunk.meta.usage.credits_used });

    const m1 = (await b.json('/app/api/meter?model=gpt-4o-mini')).body;
    expect(m1.requests).toMatchObject({ used: 1, remaining: 9 });
    expect(m1.credits.used).toBe(usageChunk.meta.usage.credits_used);
    expect(m1.credits.remaining).toBe(50_000 - usageChunk.meta.usage.credits_used);

    for (let i = 2; i <= 10; i++) {
      const r = await b.fetch('/app/api/playground/chat', { method: 'POST', body: chat() });
      expect(r.status, `request ${i}`).toBe(200);
      await readStream(r);
    }
    const eleventh = await b.json('/app/api/playground/chat', { method: 'POST', body: chat() });
    expect(eleventh.status).toBe(429);
    expect(eleventh.headers.get('content-type')).toMatch(/^application\/json/);
    expect(eleventh.body.error).toMatchObject({ code: 'requests_per_day_exceeded', rule: 'playground_requests' });
    expect(eleventh.headers.get('retry-after')).toMatch(/^\d+$/);

    const m2 = (await b.json('/app/api/meter?model=gpt-4o-mini')).body;
    expect(m2.requests).toMatchObject({ used: 10, remaining: 0 });
    // Another model still has its own ten; a Pro model has no request count.
    expect((await b.json('/app/api/meter?model=text-embedding-3-small')).body.requests).toMatchObject({ used: 0, remaining: 10 });
    expect((await b.json('/app/api/meter?model=gpt-4o')).body.requests).toBeNull();
    expect((await b.json('/app/api/meter?model=nope')).body.error.code).toBe('model_not_found');
  });

  it('a second Playground request while one streams is 429 concurrency_limit', async () => {
    const { b } = await signedUp();
    let release!: () => void;
    t.openai.enqueue({ kind: 'sse', events: chatStreamFixture, holdBeforeIndex: 2, release: new Promise<void>((r) => (release = r)) });
    const first = await b.fetch('/app/api/playground/chat', { method: 'POST', body: chat() });
    expect(first.status).toBe(200);
    const second = await b.json('/app/api/playground/embed', { method: 'POST', body: { model: 'text-embedding-3-small', input: 'x' } });
    expect(second.status).toBe(429);
    expect(second.body.error.code).toBe('concurrency_limit');
    expect(second.headers.get('retry-after')).toBe('1');
    release();
    expect((await readStream(first)).at(-1)).toBe('[DONE]');
    expect((await b.json('/app/api/playground/embed', { method: 'POST', body: { model: 'text-embedding-3-small', input: 'x' } })).status).toBe(200);
  });

  it('image and embed answer the OpenAI shape with meta.usage.credits_used', async () => {
    const { b, account } = await signedUp();
    const img = await b.json('/app/api/playground/image', { method: 'POST', body: { model: 'flux/schnell', prompt: 'a cat' } });
    expect(img.status, JSON.stringify(img.body)).toBe(200);
    expect(img.body.data).toHaveLength(1);
    expect(img.body.meta.usage.credits_used).toBe(6000);
    const emb = await b.json('/app/api/playground/embed', { method: 'POST', body: { model: 'text-embedding-3-small', input: 'hello' } });
    expect(emb.body.object).toBe('list');
    expect(emb.body.meta.usage.credits_used).toBeGreaterThan(0);
    const rows = (await t.admin('GET', `/usage?account=${account.id}`)).body.data;
    expect(rows.map((r: { surface: string }) => r.surface)).toEqual(['playground', 'playground']);
    // Playground bodies are limited to the documented fields.
    const extra = await b.json('/app/api/playground/embed', { method: 'POST', body: { model: 'text-embedding-3-small', input: 'x', dimensions: 4 } });
    // …and name the one not taken in param (SPEC §5), as a wrong type is named.
    expect(extra.body.error).toMatchObject({ code: 'invalid_request', param: 'dimensions' });
  });

  it('lists models with available', async () => {
    const { b } = await signedUp();
    const models = (await b.json('/app/api/models')).body.data;
    expect(models.find((m: { id: string }) => m.id === 'gpt-4o')).toMatchObject({ pro: true, available: true, type: 'chat' });
    expect(models.find((m: { id: string }) => m.id === 'unkeyed-chat')).toMatchObject({ available: false, unavailable: 'provider' });
    // The free tier's image rules are the API's (SPEC §3): dall-e-2 at 32,000 credits is served
    // here. flux/dev/image-to-image, at 60,000, is past the day's 50,000 on every surface.
    expect(models.find((m: { id: string }) => m.id === 'dall-e-2')).toMatchObject({ available: true });
    expect(models.find((m: { id: string }) => m.id === 'dall-e-2')).not.toHaveProperty('unavailable');
    expect(models.find((m: { id: string }) => m.id === 'flux/dev/image-to-image')).toMatchObject({ available: false, unavailable: 'plan' });
  });
});

describe('password', () => {
  // Its own gateway: these count sign-in attempts, which the shared one's other tests make from the
  // same address within the same minute.
  let g: TestGateway;
  beforeAll(async () => {
    g = await startTestGateway({ config: { web: { signupsPerHour: 100_000 } } });
  });
  afterAll(async () => g?.close());
  const signedUpHere = async (email: string) => {
    const b = new Browser(g.url);
    await b.session();
    expect((await b.json('/app/api/signup', { method: 'POST', body: { email, password: PASSWORD } })).status).toBe(201);
    return b;
  };

  it("a reset link from the operator sets the owner's password once, ends every session and signs this browser in", async () => {
    const email = freshEmail();
    const b = await signedUpHere(email);
    const account = (await b.json('/app/api/session')).body.account as { id: string };
    const made = await g.admin('POST', `/accounts/${account.id}/password-reset`);
    expect(made.status).toBe(201);
    expect(made.body).toEqual({ url: expect.stringMatching(/^http:\/\/gateway\.test\/app\/reset#[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/), expiresAt: expect.any(String) });
    expect(Date.parse(made.body.expiresAt) - Date.now()).toBeGreaterThan(23 * 3_600_000);
    const token = (made.body.url as string).split('#')[1]!;

    const c = new Browser(g.url);
    await c.session();
    // Too short a password is refused before the link is spent.
    expect((await c.json('/app/api/password/reset', { method: 'POST', body: { token, password: 'short' } })).body.error).toMatchObject({ param: 'password' });
    const done = await c.json('/app/api/password/reset', { method: 'POST', body: { token, password: 'a new password' } });
    expect(done.status).toBe(200);
    expect(done.body.account).toMatchObject({ id: account.id, email });
    // This browser is signed in; the one signed in before is out; the new password signs in, the old one not.
    expect((await c.json('/app/api/keys')).status).toBe(200);
    expect((await b.json('/app/api/keys')).status).toBe(401);
    const d = new Browser(g.url);
    await d.session();
    expect((await d.json('/app/api/signin', { method: 'POST', body: { email, password: PASSWORD } })).status).toBe(401);
    expect((await d.json('/app/api/signin', { method: 'POST', body: { email, password: 'a new password' } })).status).toBe(200);
    // Once: the link is spent, and a link made before a password change does not work after it.
    const e = new Browser(g.url);
    await e.session();
    const spent = await e.json('/app/api/password/reset', { method: 'POST', body: { token, password: 'another password' } });
    expect(spent.status).toBe(400);
    expect(spent.body.error).toMatchObject({ code: 'invalid_request', param: 'token', message: expect.stringContaining('it was used, it expired, or the password changed') });
    const older = ((await g.admin('POST', `/accounts/${account.id}/password-reset`)).body.url as string).split('#')[1]!;
    expect((await g.admin('PATCH', `/accounts/${account.id}`, { password: 'set by the operator' })).status).toBe(200);
    expect((await e.json('/app/api/password/reset', { method: 'POST', body: { token: older, password: 'another password' } })).body.error.param).toBe('token');
    for (const bad of ['', 'x', `${token}x`, 'x'.repeat(600)]) {
      expect((await e.json('/app/api/password/reset', { method: 'POST', body: { token: bad, password: 'another password' } })).status, bad).toBe(400);
    }
    // Without the CSRF cookie's token, refused like every other form.
    expect((await fetch(`${g.url}/app/api/password/reset`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token, password: 'x'.repeat(9) }) })).status).toBe(403);

    // No link for an account without an email, a suspended one, or none.
    const keyOnly = await g.admin('POST', '/accounts', {});
    expect((await g.admin('POST', `/accounts/${keyOnly.body.id}/password-reset`)).body.error).toMatchObject({ code: 'invalid_request', message: expect.stringContaining('no email to sign in with (a closed account has none): give it one first (admin API: PATCH {email}; CLI: accounts update ACCOUNT --email E)') });
    await g.admin('PATCH', `/accounts/${account.id}`, { suspended: true });
    expect((await g.admin('POST', `/accounts/${account.id}/password-reset`)).body.error.message).toContain('suspended');
    expect((await g.admin('POST', '/accounts/acct_nope/password-reset')).body.error.code).toBe('account_not_found');
    expect((await fetch(`${g.url}/admin/v1/accounts/${account.id}/password-reset`, { method: 'POST' })).status).toBe(401);
  });

  /** The token of a reset link the operator makes for `accountId`. */
  const resetToken = async (accountId: string) => ((await g.admin('POST', `/accounts/${accountId}/password-reset`)).body.url as string).split('#')[1]!;
  /** A fresh browser spends `token` and is refused: 400 `param: token`, and it stays signed out. */
  const expectLinkRefused = async (token: string) => {
    const b = new Browser(g.url);
    await b.session();
    const res = await b.json('/app/api/password/reset', { method: 'POST', body: { token, password: 'a new password' } });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'invalid_request', param: 'token' });
    expect((await b.json('/app/api/session')).body.authenticated).toBe(false);
  };

  /** Runs `act` while the limiter refuses every add (as an unreachable Redis does: ending sessions needs one). */
  async function whileLimiterRefusesAdds<T>(act: () => Promise<T>): Promise<T> {
    const { CounterStoreUnavailableError } = await import('../../src/storage/counters.js');
    const counters = g.gw.counters;
    const { add } = counters;
    counters.add = async () => {
      throw new CounterStoreUnavailableError('limiter unavailable: connection refused');
    };
    try {
      return await act();
    } finally {
      counters.add = add;
    }
  }

  it('a reset link used while the limiter is down changes nothing (503): the password, the sessions and the link stay as they were', async () => {
    const email = freshEmail();
    const b = await signedUpHere(email);
    const account = (await b.json('/app/api/session')).body.account as { id: string };
    const token = await resetToken(account.id);
    const c = new Browser(g.url);
    await c.session();
    const res = await whileLimiterRefusesAdds(() => c.json('/app/api/password/reset', { method: 'POST', body: { token, password: 'a new password' } }));
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('limiter_unavailable');
    // The old password still signs in, the session signed in before still works, and the link
    // still does its work once the limiter is back.
    expect((await b.json('/app/api/keys')).status).toBe(200);
    const d = new Browser(g.url);
    await d.session();
    expect((await d.json('/app/api/signin', { method: 'POST', body: { email, password: PASSWORD } })).status).toBe(200);
    expect((await c.json('/app/api/password/reset', { method: 'POST', body: { token, password: 'a new password' } })).status).toBe(200);
    expect((await b.json('/app/api/keys')).status).toBe(401);
    expect((await d.json('/app/api/keys')).status).toBe(401);
  });

  it('an admin PATCH of a password while the limiter is down sets nothing (503): the old password and the sessions stay, a retry completes it', async () => {
    const email = freshEmail();
    const b = await signedUpHere(email);
    const account = (await b.json('/app/api/session')).body.account as { id: string };
    const res = await whileLimiterRefusesAdds(() => g.admin('PATCH', `/accounts/${account.id}`, { password: 'set by the operator' }));
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('limiter_unavailable');
    expect((await b.json('/app/api/keys')).status).toBe(200);
    const d = new Browser(g.url);
    await d.session();
    expect((await d.json('/app/api/signin', { method: 'POST', body: { email, password: PASSWORD } })).status).toBe(200);
    expect((await g.admin('PATCH', `/accounts/${account.id}`, { password: 'set by the operator' })).status).toBe(200);
    expect((await b.json('/app/api/keys')).status).toBe(401);
    const e = new Browser(g.url);
    await e.session();
    expect((await e.json('/app/api/signin', { method: 'POST', body: { email, password: 'set by the operator' } })).status).toBe(200);
  });

  it('an admin PATCH of a password ends a session begun with the old password while it was being set', async () => {
    const email = freshEmail();
    const b = await signedUpHere(email);
    const account = (await b.json('/app/api/session')).body.account as { id: string };
    // Whoever has the old password signs in between the sessions' end and the new password.
    const d = new Browser(g.url);
    await d.session();
    const accounts = g.gw.accounts;
    const { setPasswordHash } = accounts;
    accounts.setPasswordHash = async (...a) => {
      expect((await d.json('/app/api/signin', { method: 'POST', body: { email, password: PASSWORD } })).status).toBe(200);
      return setPasswordHash.apply(accounts, a);
    };
    try {
      expect((await g.admin('PATCH', `/accounts/${account.id}`, { password: 'set by the operator' })).status).toBe(200);
    } finally {
      accounts.setPasswordHash = setPasswordHash;
    }
    expect((await b.json('/app/api/keys')).status).toBe(401);
    expect((await d.json('/app/api/keys')).status).toBe(401);
  });

  it("a reset link made before the account's email changed does not work: it was for the old address's owner", async () => {
    const made = await g.admin('POST', '/accounts', { email: freshEmail(), password: 'the old owner knew this' });
    const token = await resetToken(made.body.id);
    expect((await g.admin('PATCH', `/accounts/${made.body.id}`, { email: freshEmail() })).status).toBe(200);
    await expectLinkRefused(token);
  });

  it('a reset link made before the account was closed does not hand it back, though the operator lifts the suspension', async () => {
    // An account the operator made without a password: its link is bound to "no password", which
    // closing leaves as it was.
    const made = await g.admin('POST', '/accounts', { email: freshEmail() });
    const token = await resetToken(made.body.id);
    expect((await g.admin('DELETE', `/accounts/${made.body.id}`)).status).toBe(200);
    expect((await g.admin('PATCH', `/accounts/${made.body.id}`, { suspended: false })).body.suspendedAt).toBeNull();
    await expectLinkRefused(token);
  });

  it('an admin DELETE closes an account: its email, password, keys and sessions end, its usage stays, the address is free again', async () => {
    const email = freshEmail();
    const b = await signedUpHere(email);
    const account = (await b.json('/app/api/session')).body.account as { id: string };
    const key = (await b.json('/app/api/keys', { method: 'POST', body: { name: 'app' } })).body;
    const client = new OpenAI({ baseURL: `${g.url}/v1`, apiKey: key.key, maxRetries: 0 });
    await client.embeddings.create({ model: 'text-embedding-3-small', input: 'before closing' });

    const closed = await g.admin('DELETE', `/accounts/${account.id}`);
    expect(closed.status).toBe(200);
    expect(closed.body).toMatchObject({ id: account.id, email: null, suspendedReason: 'account closed', suspendedAt: expect.any(String) });
    // The key: revoked, on this instance at once.
    const refused = await fetch(`${g.url}/v1/usage`, { headers: { authorization: `Bearer ${key.key}` } });
    expect(refused.status).toBe(401);
    expect((await g.admin('GET', `/accounts/${account.id}/keys`)).body.data.every((k: { revokedAt: string | null }) => k.revokedAt !== null)).toBe(true);
    // The session: over; the password: gone; the address: anyone's to sign up with again.
    expect((await b.json('/app/api/keys')).status).toBe(401);
    const c = new Browser(g.url);
    await c.session();
    expect((await c.json('/app/api/signin', { method: 'POST', body: { email, password: PASSWORD } })).status).toBe(401);
    const again = await signedUpHere(email);
    expect((await again.json('/app/api/session')).body.account.id).not.toBe(account.id);
    // The records a bill needs stay, under the account id.
    expect((await g.admin('GET', `/usage?account=${account.id}`)).body.data).toHaveLength(1);
    // Closing twice is closing once; an unknown account is 404.
    expect((await g.admin('DELETE', `/accounts/${account.id}`)).body).toMatchObject({ email: null, suspendedReason: 'account closed' });
    expect((await g.admin('DELETE', '/accounts/acct_nobody')).body.error.code).toBe('account_not_found');
    // Lifting the suspension gives back none of it: no session resumes.
    await g.admin('PATCH', `/accounts/${account.id}`, { suspended: false });
    expect((await b.json('/app/api/keys')).status).toBe(401);
  });

  it("an admin PATCH changes an account's sign-in email: the new one signs in, the old one no longer does, one taken is 409", async () => {
    const email = freshEmail();
    const b = await signedUpHere(email);
    const account = (await b.json('/app/api/session')).body.account as { id: string };
    const signIn = async (address: string) => {
      const c = new Browser(g.url);
      await c.session();
      return (await c.json('/app/api/signin', { method: 'POST', body: { email: address, password: PASSWORD } })).status;
    };
    const otherEmail = freshEmail();
    await signedUpHere(otherEmail);
    const taken = await g.admin('PATCH', `/accounts/${account.id}`, { email: otherEmail.toUpperCase() });
    expect(taken.status).toBe(409);
    expect(taken.body.error.code).toBe('email_taken');
    expect((await g.admin('GET', `/accounts/${account.id}`)).body.email).toBe(email);
    expect((await g.admin('PATCH', `/accounts/${account.id}`, { email: 'not an email' })).body.error).toMatchObject({ code: 'invalid_request', param: 'email' });

    const moved = `Moved-${email}`;
    const changed = await g.admin('PATCH', `/accounts/${account.id}`, { email: moved });
    expect(changed.status).toBe(200);
    expect(changed.body.email).toBe(moved.toLowerCase());
    expect(await signIn(moved)).toBe(200);
    expect(await signIn(email)).toBe(401);
    // The session signed in before stays, and shows the new address.
    expect((await b.json('/app/api/session')).body.account.email).toBe(moved.toLowerCase());
    // An account made without an email gets one and a password in one PATCH, and signs in.
    const bare = (await g.admin('POST', '/accounts', {})).body;
    const given = `given-${email}`;
    expect((await g.admin('PATCH', `/accounts/${bare.id}`, { email: given, password: PASSWORD })).status).toBe(200);
    expect(await signIn(given)).toBe(200);
  });

  it('changes it given the current one; every other session ends, this one goes on; the new one signs in', async () => {
    const email = freshEmail();
    const b = await signedUpHere(email);
    const other = new Browser(g.url);
    await other.session();
    expect((await other.json('/app/api/signin', { method: 'POST', body: { email, password: PASSWORD } })).status).toBe(200);
    const wrong = await b.json('/app/api/password', { method: 'POST', body: { current: 'not it', password: 'a new password' } });
    expect(wrong.status).toBe(400);
    expect(wrong.body.error).toMatchObject({ code: 'invalid_request', param: 'current', message: expect.stringContaining('the current password is not right') });
    expect((await b.json('/app/api/password', { method: 'POST', body: { current: PASSWORD, password: 'short' } })).body.error).toMatchObject({ param: 'password' });
    // Without the CSRF token: refused, nothing changed.
    expect((await b.json('/app/api/password', { method: 'POST', body: { current: PASSWORD, password: 'a new password' }, csrf: null })).status).toBe(403);
    const changed = await b.json('/app/api/password', { method: 'POST', body: { current: PASSWORD, password: 'a new password' } });
    expect(changed.status).toBe(200);
    expect(changed.body.csrfToken).toEqual(expect.any(String));
    // This browser goes on (its new cookie); the other device is signed out.
    expect((await b.json('/app/api/keys')).status).toBe(200);
    expect((await other.json('/app/api/keys')).status).toBe(401);
    const again = new Browser(g.url);
    await again.session();
    expect((await again.json('/app/api/signin', { method: 'POST', body: { email, password: PASSWORD } })).status).toBe(401);
    expect((await again.json('/app/api/signin', { method: 'POST', body: { email, password: 'a new password' } })).status).toBe(200);
  });

  it('counts wrong current passwords as sign-in attempts: guessing here is no faster than at sign-in', async () => {
    const b = await signedUpHere(freshEmail());
    const statuses: number[] = [];
    for (let i = 0; i < 30 && !statuses.includes(429); i++) {
      statuses.push((await b.json('/app/api/password', { method: 'POST', body: { current: `guess ${i}`, password: 'a new password' } })).status);
    }
    expect(statuses).toContain(429);
    expect(statuses.filter((s) => s === 400).length).toBeLessThan(30);
  });
});

describe('billing', () => {
  it('by default the manual provider lets no user credit themselves: the operator tops up', async () => {
    const { b, account } = await signedUp();
    // Before: the page learns the change is made at once (no hosted checkout) and lifts the plan.
    expect((await b.json('/app/api/billing')).body).toMatchObject({ plan: 'free', paymentMethodLifts: true, hostedCheckout: false });
    await b.json('/app/api/billing/payment-method', { method: 'POST' });
    expect((await b.json('/app/api/billing')).body).toEqual({ plan: 'paid', balance: 0, paymentMethod: true, paymentMethodLifts: false, provider: 'manual', hostedCheckout: false, selfTopUp: false, topUps: [], topUpsNext: null });
    const top = await b.json('/app/api/billing/topup', { method: 'POST', body: { amount: 1e12 } });
    expect(top.status).toBe(403);
    expect(top.body.error).toMatchObject({ code: 'top_up_not_offered', type: 'permission_error' });
    expect((await t.admin('POST', `/accounts/${account.id}/credits`, { amount: 500 })).body.balance).toBe(500);
    const billing = (await b.json('/app/api/billing')).body;
    expect(billing.balance).toBe(500);
    expect(billing.topUps).toEqual([{ id: expect.stringMatching(/^top_/), credits: 500, source: 'admin', createdAt: expect.any(String) }]);
  });

  it("pages the balance's history past the 20 the page lists, without the operator's references", async () => {
    const { b, account } = await signedUp();
    await b.json('/app/api/billing/payment-method', { method: 'POST' });
    for (let i = 1; i <= 23; i++) {
      const res = await fetch(`${t.url}/admin/v1/accounts/${account.id}/credits`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', 'idempotency-key': `po-${i}` },
        body: JSON.stringify({ amount: i }),
      });
      expect(res.status).toBe(200);
    }
    const first = (await b.json('/app/api/billing')).body;
    expect(first.topUps).toHaveLength(20);
    expect(first.topUpsNext).toBe(first.topUps.at(-1).id);
    const rest = await b.json(`/app/api/billing/top-ups?before=${first.topUpsNext}`);
    expect(rest.status).toBe(200);
    expect(rest.body.topUpsNext).toBeNull();
    const credits = [...first.topUps, ...rest.body.topUps].map((u: { credits: number }) => u.credits);
    expect(credits.sort((x, y) => x - y)).toEqual(Array.from({ length: 23 }, (_, i) => i + 1));
    expect(JSON.stringify(rest.body)).not.toContain('po-');
    // Another account's top-up is no cursor into this one's history.
    const other = await signedUp();
    expect((await other.b.json(`/app/api/billing/top-ups?before=${first.topUpsNext}`)).body).toEqual({ topUps: [], topUpsNext: null });
    expect((await b.json('/app/api/billing/top-ups?limit=101')).status).toBe(400);
  });

  it('with billing.selfTopUp: adding a payment method moves free → paid; a top-up shows in the balance', async () => {
    const s = await startTestGateway({ config: { billing: { provider: 'manual', selfTopUp: true } } });
    try {
      await selfTopUp(s);
    } finally {
      await s.close();
    }
  });

  async function selfTopUp(s: TestGateway) {
    const b = new Browser(s.url);
    await b.session();
    expect((await b.json('/app/api/signup', { method: 'POST', body: { email: 'top@example.test', password: PASSWORD } })).status).toBe(201);
    expect((await b.json('/app/api/billing')).body).toEqual({ plan: 'free', balance: 0, paymentMethod: false, paymentMethodLifts: true, provider: 'manual', hostedCheckout: false, selfTopUp: true, topUps: [], topUpsNext: null });
    const pm = await b.json('/app/api/billing/payment-method', { method: 'POST' });
    expect(pm.status).toBe(200);
    expect(pm.body.account).toMatchObject({ plan: 'paid', paymentMethod: true });
    const top = await b.json('/app/api/billing/topup', { method: 'POST', body: { amount: 250_000 } });
    expect(top.body).toEqual({ balance: 250_000 });
    expect((await b.json('/app/api/billing')).body).toEqual({
      plan: 'paid',
      balance: 250_000,
      paymentMethod: true,
      paymentMethodLifts: false,
      provider: 'manual',
      hostedCheckout: false,
      selfTopUp: true,
      topUps: [{ id: expect.any(String), credits: 250_000, source: 'billing', createdAt: expect.any(String) }],
      topUpsNext: null,
    });
    expect((await b.json('/app/api/meter?model=gpt-4o-mini')).body).toMatchObject({ plan: 'paid', balance: 250_000, credits: null, requests: null, limits: [], paymentMethodLifts: false });
    const bad = await b.json('/app/api/billing/topup', { method: 'POST', body: { amount: -5 } });
    expect(bad.body.error).toMatchObject({ code: 'invalid_request', param: 'amount' });
  }
});
