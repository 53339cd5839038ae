// A seeded fuzzer: bad input of every kind, on every endpoint (/v1, /admin/v1, /app/api), against
// a real gateway and the fake upstreams. Whatever is sent, the answer is below 500, every error
// Tollgate writes has SPEC §5's shape with a catalogue code of the right status, and afterwards
// every account's counters equal its ledger and the server still serves. The seed is fixed, so a
// failure replays exactly; FUZZ_SEED and FUZZ_CASES override it to explore further.
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catalogue } from '../../src/errors/catalogue.js';
import type { Behaviour } from '../helpers/fake-server.js';
import { ANTHROPIC_KEY, startFakeAnthropic, type FakeAnthropic } from '../helpers/fake-anthropic.js';
import { startTestGateway, testModels, ADMIN_TOKEN, type TestGateway } from '../helpers/gateway.js';
import { seededRandom } from '../../src/lib/prng.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261125);
const CASES = Number(process.env.FUZZ_CASES ?? 1200);
/** Requests in flight at once: enough to race the Playground's concurrency rule, few enough for 2 cores. */
const PARALLEL = 4;
const BODY_LIMIT = 256 * 1024;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** JSON text written as is (numbers JSON.stringify cannot write: 1e400, -0, 1e-400). */
class Raw {
  constructor(readonly text: string) {}
}

function toJson(v: unknown): string {
  if (v instanceof Raw) return v.text;
  if (Array.isArray(v)) return `[${v.map(toJson).join(',')}]`;
  if (v !== null && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${toJson(x)}`).join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}

let t: TestGateway;
let anthropic: FakeAnthropic;
/** The accounts whose counters are checked against the ledger at the end. */
const accounts: { id: string; secret: string; plan: string }[] = [];
let web: { cookie: string; csrf: string; accountId: string };
let sacrificial: { id: string; keyId: string };

beforeAll(async () => {
  anthropic = await startFakeAnthropic();
  t = await startTestGateway({
    config: (fakes) => ({
      server: { host: '127.0.0.1', port: 0, publicUrl: 'http://gateway.test', bodyLimitBytes: BODY_LIMIT },
      web: { signupsPerHour: 100_000, wrongPasswordDelayMs: 0, signinAttemptsPerMinute: 1_000 },
      billing: { selfTopUp: true },
      // A Claude model too: type anthropic translates the chat body, so its shapes meet code of their own.
      providers: [
        { id: 'openai', type: 'openai', baseUrl: fakes.openai, apiKey: 'sk-upstream-secret' },
        { id: 'fal', type: 'fal', baseUrl: fakes.fal, apiKey: 'fal-upstream-secret' },
        { id: 'nokey', type: 'openai', baseUrl: fakes.openai },
        { id: 'anthropic', type: 'anthropic', baseUrl: anthropic.url, apiKey: ANTHROPIC_KEY },
      ],
      models: [...testModels(), { id: 'claude-haiku', kind: 'chat', provider: 'anthropic', upstream: 'claude-haiku-4-5', vision: true, maxOutputTokens: 1024, price: { input: 1, output: 5 } }],
    }),
  });
  for (const plan of ['free', 'paid', 'open']) {
    const a = await t.newAccount({ plan });
    if (plan === 'paid') expect((await t.admin('POST', `/accounts/${a.accountId}/credits`, { amount: 5_000_000 })).status).toBe(200);
    accounts.push({ id: a.accountId, secret: a.secret, plan });
  }
  const s = await t.newAccount();
  sacrificial = { id: s.accountId, keyId: s.keyId };
  // A web session: the anonymous CSRF cookie, then sign-up.
  const anon = await request(`${t.url}/app/api/session`);
  const csrf0 = (await anon.body.json() as { csrfToken: string }).csrfToken;
  const up = await request(`${t.url}/app/api/signup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie: `tg_csrf=${csrf0}`, 'x-csrf-token': csrf0 },
    body: JSON.stringify({ email: 'fuzz@example.com', password: 'correct horse battery' }),
  });
  const account = (await up.body.json() as { account: { id: string } }).account;
  const set = ([] as string[]).concat(up.headers['set-cookie'] ?? []);
  const cookie = set.map((c) => c.split(';')[0]!).join('; ');
  const csrf = /tg_csrf=([^;]+)/.exec(cookie)![1]!;
  web = { cookie, csrf, accountId: account.id };
});
afterAll(async () => {
  await t?.close();
  await anthropic?.close();
});

type Auth = 'key' | 'admin' | 'session' | 'none';

interface Target {
  method: string;
  path: string;
  auth: Auth;
  /** A valid body, mutated by the fuzzer; absent: the call takes none. */
  body?: () => Record<string, unknown>;
  /** Query strings worth trying (valid and not). */
  queries?: string[];
  /** The plan of the account its grid shots use (gridShots); default: each plan in turn. */
  plan?: string;
}

const chat = () => ({ model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: [{ type: 'text', text: 'hi' }] }], max_tokens: 8, temperature: 0.5 });

const targets: Target[] = [
  { method: 'POST', path: '/v1/chat/completions', auth: 'key', body: chat },
  { method: 'POST', path: '/v1/chat/completions', auth: 'key', body: () => ({ ...chat(), stream: true, stream_options: { include_usage: true } }) },
  { method: 'POST', path: '/v1/chat/completions', auth: 'key', body: () => ({ ...chat(), tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: {} } } }], response_format: { type: 'json_object' } }) },
  {
    method: 'POST', path: '/v1/chat/completions', auth: 'key',
    // The grid's earlier shots spend the free account's day budget: a refusal for it would hide the translation.
    plan: 'open',
    body: () => ({
      model: 'claude-haiku',
      messages: [
        { role: 'system', content: [{ type: 'text', text: 'be brief', cache_control: { type: 'ephemeral' } }] },
        { role: 'user', content: [{ type: 'text', text: 'hi' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }] },
        { role: 'assistant', content: 'ok', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'done' },
      ],
      tools: [{ type: 'function', function: { name: 'f', description: 'f', parameters: { type: 'object', properties: { a: { type: 'number' } } } } }],
      tool_choice: { type: 'function', function: { name: 'f' } },
      stop: ['END'],
      max_tokens: 8,
      temperature: 0.5,
    }),
  },
  { method: 'POST', path: '/v1/embeddings', auth: 'key', body: () => ({ model: 'text-embedding-3-small', input: ['hello', 'world'], encoding_format: 'float' }) },
  { method: 'POST', path: '/v1/embeddings', auth: 'key', body: () => ({ model: 'text-embedding-3-small', input: [[1, 2, 3]], dimensions: 8 }) },
  { method: 'POST', path: '/v1/images/generations', auth: 'key', body: () => ({ model: 'dall-e-2', prompt: 'a cat', n: 1, size: '256x256', response_format: 'url' }) },
  { method: 'POST', path: '/v1/images/generations', auth: 'key', body: () => ({ model: 'flux/schnell', prompt: 'a cat', num_images: 1, image_size: { width: 512, height: 512 } }) },
  { method: 'POST', path: '/v1/images/generations', auth: 'key', body: () => ({ model: 'flux/dev/image-to-image', prompt: 'a cat', image_url: 'https://example.com/a.png', image_size: 'square' }) },
  { method: 'GET', path: '/v1/models', auth: 'key' },
  { method: 'GET', path: '/v1/models', auth: 'none' },
  { method: 'GET', path: '/v1/models/flux/schnell', auth: 'key' },
  { method: 'GET', path: '/v1/usage', auth: 'key' },
  { method: 'POST', path: '/admin/v1/accounts', auth: 'admin', body: () => ({ email: 'a@example.com', plan: 'free' }) },
  { method: 'GET', path: '/admin/v1/accounts/:acct', auth: 'admin' },
  { method: 'PATCH', path: '/admin/v1/accounts/:acct', auth: 'admin', body: () => ({ plan: 'free', paymentMethod: false }) },
  { method: 'POST', path: '/admin/v1/accounts/:acct/credits', auth: 'admin', body: () => ({ amount: 10 }) },
  { method: 'POST', path: '/admin/v1/accounts/:acct/keys', auth: 'admin', body: () => ({ name: 'k' }) },
  { method: 'GET', path: '/admin/v1/accounts/:acct/keys', auth: 'admin' },
  { method: 'DELETE', path: '/admin/v1/keys/:key', auth: 'admin' },
  {
    method: 'GET', path: '/admin/v1/usage', auth: 'admin',
    queries: ['account=:acct', 'from=2026-01-01&to=2026-12-31', 'group=day', 'limit=5', 'limit=0', 'limit=1e3', 'limit=-1', 'limit=abc', 'from=2026-13-45', 'from=0000-01-01', 'group=week', 'x=1', 'account=&account=', 'from[]=1', 'limit=99999999999999999999', 'from=2026-01-01T00:00:00%2B99:00', '%zz=1', 'account=%00'],
  },
  { method: 'GET', path: '/app/api/session', auth: 'session' },
  { method: 'POST', path: '/app/api/signup', auth: 'none', body: () => ({ email: 'new@example.com', password: 'correct horse battery' }) },
  { method: 'POST', path: '/app/api/signin', auth: 'none', body: () => ({ email: 'fuzz@example.com', password: 'wrong password!' }) },
  { method: 'GET', path: '/app/api/models', auth: 'session' },
  { method: 'GET', path: '/app/api/meter', auth: 'session', queries: ['model=gpt-4o-mini', 'model=', 'model=flux%2Fschnell', 'model=nope', 'model=a&model=b', 'x=1', 'model[]=x'] },
  { method: 'POST', path: '/app/api/playground/chat', auth: 'session', body: () => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 }) },
  { method: 'POST', path: '/app/api/playground/image', auth: 'session', body: () => ({ model: 'flux/schnell', prompt: 'a cat', size: '512x512', n: 1 }) },
  { method: 'POST', path: '/app/api/playground/embed', auth: 'session', body: () => ({ model: 'text-embedding-3-small', input: 'hello' }) },
  { method: 'GET', path: '/app/api/keys', auth: 'session' },
  { method: 'POST', path: '/app/api/keys', auth: 'session', body: () => ({ name: 'fuzz key' }) },
  { method: 'DELETE', path: '/app/api/keys/:key', auth: 'session' },
  { method: 'GET', path: '/app/api/usage', auth: 'session', queries: ['days=1', 'days=366', 'days=0', 'days=367', 'days=1.5', 'days=-1', 'days=', 'days=1e2', 'days=0x10', 'days=abc', 'days=1&days=2'] },
  { method: 'GET', path: '/app/api/billing', auth: 'session' },
  { method: 'POST', path: '/app/api/billing/topup', auth: 'session', body: () => ({ amount: 1 }) },
  { method: 'POST', path: '/app/api/billing/webhook', auth: 'none', body: () => ({ type: 'checkout.session.completed' }) },
  { method: 'GET', path: '/app/assets/:asset', auth: 'none' },
  { method: 'GET', path: '/app/keys', auth: 'session' },
  { method: 'GET', path: '/app/signin', auth: 'none' },
  { method: 'GET', path: '/', auth: 'none' },
  { method: 'GET', path: '/healthz', auth: 'none' },
  { method: 'GET', path: '/readyz', auth: 'none' },
  { method: 'GET', path: '/metrics', auth: 'none' },
];

const NUMBERS: unknown[] = [
  0, -1, 1, 2, 10, 11, 128, 129, 512, 513, 1.5, -0.5, 2 ** 31, 2 ** 53, 2 ** 53 + 2, 1e308, -1e308, Number.MAX_SAFE_INTEGER, 1e-7,
  new Raw('1e400'), new Raw('-1e400'), new Raw('-0'), new Raw('1e-400'), new Raw('9007199254740993'), new Raw('100000000000000000000000000000'), new Raw('1.0'), new Raw('1E2'),
];
const STRINGS: unknown[] = [
  '', ' ', 'NaN', 'Infinity', '-1', '1', 'true', 'null', '0x10', '1e3', 'x'.repeat(70_000), '\u0000', 'a\u0000b', new Raw('"\\ud800"'),
  new Raw('"\\udfff\\ud800"'), new Raw('"a\\u0000b"'), '💩'.repeat(100), '\u202e\u200b\ufeff', '<|endoftext|>', '__proto__', 'constructor',
  '../../etc/passwd', '%00', 'gpt-4o-mini', 'flux/schnell', 'dall-e-2', 'text-embedding-3-small', 'unkeyed-chat', 'flux/dev/image-to-image',
  '1024x1024', '256x256', '0x0', '99999x99999', '512x512 ', 'square', 'url', 'b64_json', 'user', 'image_url', 'GPT-4O-MINI',
];
const OTHERS: unknown[] = [
  null, true, false, [], [null], [1, 'a', null], [[[[]]]], [{}], {}, { a: {} }, { type: 5 }, { type: 'text', text: 5 }, { type: 'text', text: null },
  { type: 'image_url', image_url: { url: 'x' } }, { type: 'input_audio', input_audio: { data: 'x'.repeat(5000) } }, { role: 'user' }, { role: 'user', content: null },
  { role: 'tool', content: [] }, { role: 'assistant', content: null, tool_calls: [{ id: 1 }] }, { width: 1e9, height: -1 }, { width: 512, height: 512.5 }, { toString: 'x' },
];
const NASTY: unknown[] = [...NUMBERS, ...STRINGS, ...OTHERS];

/** A value to put where `v` was: often one of its own type (past a type check, into the value checks), else anything. */
function nastyFor(r: () => number, v: unknown): unknown {
  if (r() < 0.5) {
    if (typeof v === 'string') return pick(r, STRINGS);
    if (typeof v === 'number') return pick(r, NUMBERS);
  }
  return pick(r, NASTY);
}

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

/** Replaces one value at a random depth of a (copied) body. */
function mutateAt(r: () => number, v: unknown, depth = 0): unknown {
  const descend = r() < 0.6;
  if (Array.isArray(v) && v.length > 0) {
    const out = [...v];
    const i = Math.floor(r() * out.length);
    out[i] = descend ? mutateAt(r, out[i], depth + 1) : nastyFor(r, out[i]);
    if (r() < 0.1) out.push(pick(r, NASTY));
    return out;
  }
  if (v !== null && typeof v === 'object' && !(v instanceof Raw)) {
    const out: Record<string, unknown> = { ...(v as Record<string, unknown>) };
    const keys = Object.keys(out);
    const roll = r();
    if (roll < 0.1 && keys.length > 0) delete out[pick(r, keys)];
    else if (roll < 0.2) out[pick(r, ['extra', 'n', 'stream', 'user', 'seed', 'quality', 'n_predict', 'image_url', 'x'.repeat(300), ''])] = pick(r, NASTY);
    else if (keys.length > 0) {
      const k = pick(r, keys);
      out[k] = descend ? mutateAt(r, out[k], depth + 1) : nastyFor(r, out[k]);
    }
    return out;
  }
  return nastyFor(r, v);
}

/** A body: mostly a mutated JSON object, sometimes text no parser takes as written. */
function bodyText(r: () => number, base: Record<string, unknown>): string | Buffer {
  const roll = r();
  if (roll < 0.75) {
    let b: unknown = base;
    const n = r() < 0.5 ? 1 : 2 + Math.floor(r() * 2);
    for (let i = 0; i < n; i++) b = mutateAt(r, b);
    return toJson(b);
  }
  const text = toJson(base);
  const raw = [
    () => text.slice(0, Math.floor(r() * text.length)), // truncated
    () => `${text.slice(0, -1)},${toJson(Object.keys(base)[0] ?? 'k')}:${toJson(pick(r, NASTY))}}`, // duplicate key
    () => `\ufeff${text}`, // a byte-order mark
    () => `${text}\n\n`,
    () => `${text}garbage`,
    () => `${text}${text}`,
    () => `[${text}]`,
    () => toJson(pick(r, NASTY)), // a scalar, an array, or a nested object
    () => '',
    () => ' ',
    () => 'null',
    () => `{"a":${'['.repeat(300)}${']'.repeat(300)}}`,
    () => `${'['.repeat(250)}${']'.repeat(250)}`,
    () => text.replace(/"[^"]*"/, '"\u0000"'), // a raw NUL inside a string (not allowed unescaped)
    () => text.replace(/:/, ':\u0001'),
    () => Buffer.concat([Buffer.from(text.slice(0, -2)), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from(text.slice(-2))]), // bad UTF-8
    () => `{"__proto__":{"admin":true},${text.slice(1)}`,
    () => `{"constructor":{"prototype":{"x":1}},${text.slice(1)}`,
    () => text.replace(/"(\w+)":/, '"$1\\u0000":'),
    () => `{${Array.from({ length: 2000 }, (_, i) => `"k${i}":${i}`).join(',')},${text.slice(1)}`,
    () => toJson({ ...base, pad: 'x'.repeat(BODY_LIMIT) }), // over the limit
  ];
  return pick(r, raw)();
}

const CONTENT_TYPES = [
  'application/json', 'application/json; charset=utf-8', 'application/json;charset=UTF-8', 'APPLICATION/JSON', 'application/json; charset=latin1',
  'application/json; charset="utf-8"', 'text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x',
  'application/vnd.api+json', 'application/jsonx', 'application/json, text/plain', ';', 'application/', 'json',
];
const AUTH_VARIANTS = (key: string): Record<string, string>[] => [
  { authorization: `Bearer ${key}` }, { authorization: `bearer ${key}` }, { authorization: `BEARER ${key}` }, { authorization: `Bearer  ${key}` },
  { authorization: `Bearer ${key} ` }, { authorization: `Bearer\t${key}` }, { authorization: key }, { authorization: `Bearer ${key} extra` },
  { authorization: `Token ${key}` }, { authorization: 'Bearer' }, { authorization: 'Bearer ' }, { authorization: '' }, { 'x-api-key': key },
  { Authorization: `Bearer ${key}` }, { AUTHORIZATION: `Bearer ${key}` }, { authorization: `Bearer ${key.toUpperCase()}` }, { authorization: `Bearer ${key}x` },
  { authorization: `Bearer ${key.slice(0, -1)}` }, { authorization: `Basic ${Buffer.from(`:${key}`).toString('base64')}` },
];

/** What a broken upstream may do: answered by Tollgate with a 5xx of its own or the upstream's error, and nothing charged. */
const FAULTS: Behaviour[] = [
  { kind: 'json', status: 500, body: { error: { message: 'upstream boom', type: 'server_error' } } },
  { kind: 'json', status: 429, body: { error: { message: 'slow down' } }, headers: { 'retry-after': '1' } },
  { kind: 'json', status: 200, body: { unexpected: true } },
  { kind: 'json', status: 200, body: { error: { message: 'error with a 200', code: 503 } } },
  { kind: 'text', status: 502, body: '<html>bad gateway</html>' },
  { kind: 'text', status: 200, body: 'not json' },
  { kind: 'destroy' },
  { kind: 'sse', events: ['{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"par"},"finish_reason":null}]}'] },
  { kind: 'sse', events: ['not json', '[DONE]'] },
];
/** Codes Tollgate answers a broken upstream with. */
const UPSTREAM_CODES = new Set(['upstream_unavailable', 'upstream_timeout', 'invalid_upstream_response', 'upstream_auth_failed', 'upstream_redirect']);
let faults = 0;

interface Shot {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  label: string;
  /** A broken upstream answer queued just before this request is sent (another request in flight may meet it). */
  fault?: { upstream: 'openai' | 'fal'; behaviour: Behaviour };
  /** Sent chunked, cut at these byte offsets (a multi-byte character may be split). */
  cuts?: number[];
  /** The client leaves once the answer's head has come. */
  leave?: boolean;
  /** The one field a grid shot made wrong, as `param` writes it (`messages[1].content`). */
  field?: string;
}

function fill(path: string, r: () => number): string {
  return path
    .replace(':acct', pick(r, [sacrificial.id, sacrificial.id, 'acct_nope', '', 'x'.repeat(99), '%20', '..', '%2e%2e', '💩', '%F0%9F%92%A9', '0']))
    .replace(':key', pick(r, ['key_nope', '', 'x'.repeat(99), '%00', 'null', '-1', '%C0%AF']))
    .replace(':asset', pick(r, ['index.js', 'nope.js', '%00', '..%2f..%2fpackage.json', '%2e%2e/%2e%2e/package.json', '../../package.json', 'x'.repeat(300), '', '.', '%C0%AE%C0%AE/x', 'a/b/c', '%E0%A4%A']));
}

/** The classic wrong values, each tried at every field of every body (gridShots). */
const CLASSIC: unknown[] = [null, '', 0, -1, 1.5, new Raw('1e400'), true, [], {}, '\u0000', new Raw('"\\ud800"'), 'x'.repeat(20_000)];

/** Every path of a JSON value (objects and arrays), depth first. */
function paths(v: unknown, at: (string | number)[] = []): (string | number)[][] {
  if (Array.isArray(v)) return v.flatMap((x, i) => [[...at, i], ...paths(x, [...at, i])]);
  if (v !== null && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => [[...at, k], ...paths(x, [...at, k])]);
  return [];
}

function replaced(v: unknown, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path;
  const copy: any = Array.isArray(v) ? [...v] : { ...(v as object) };
  copy[head!] = replaced(copy[head!], rest, value);
  return copy;
}

/** Each classic wrong value at each field of each body, sent the right way: no field is left out by chance. */
function gridShots(): Shot[] {
  const shots: Shot[] = [];
  for (const tg of targets) {
    if (!tg.body || tg.path.includes(':')) continue;
    const acct = accounts.find((a) => a.plan === tg.plan) ?? accounts[shots.length % accounts.length]!;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (tg.auth === 'key') headers.authorization = `Bearer ${acct.secret}`;
    if (tg.auth === 'admin') headers.authorization = `Bearer ${ADMIN_TOKEN}`;
    if (tg.auth === 'session' || tg.path.startsWith('/app/api/sign')) Object.assign(headers, { cookie: web.cookie, 'x-csrf-token': web.csrf });
    const base = tg.body();
    for (const p of paths(base)) {
      const field = p.reduce<string>((acc, seg) => (typeof seg === 'number' ? `${acc}[${seg}]` : acc ? `${acc}.${seg}` : seg), '');
      for (const value of CLASSIC) shots.push({ method: tg.method, path: tg.path, headers, body: toJson(replaced(base, p, value)), label: `${tg.method} ${tg.path} ${field}`, field });
    }
  }
  return shots;
}

/**
 * One request. Half of them send a mutated body the right way (key, JSON, method), so the body
 * reaches the validation past the transport's; the other half send a valid or broken body the
 * wrong way (credentials, content type and encoding, method, path).
 */
function makeShot(r: () => number): Shot {
  const tg = pick(r, targets);
  const acct = pick(r, accounts);
  const wrongWay = r() < 0.5;
  /** A transport variation: only on the wrong-way half, with probability p. */
  const odd = (p: number) => wrongWay && r() < p;
  let path = fill(tg.path, r);
  const headers: Record<string, string> = {};
  const secret = tg.auth === 'admin' ? ADMIN_TOKEN : acct.secret;
  if (tg.auth === 'key' || tg.auth === 'admin') Object.assign(headers, odd(0.4) ? pick(r, AUTH_VARIANTS(secret)) : { authorization: `Bearer ${secret}` });
  if (tg.auth === 'session' || tg.path.startsWith('/app/api/sign')) {
    headers.cookie = odd(0.3) ? pick(r, ['tg_session=forged.token; tg_csrf=x', `${web.cookie}; tg_session=x`, `tg_session=${'a'.repeat(4000)}`, '']) : web.cookie;
    if (!odd(0.1)) headers['x-csrf-token'] = odd(0.2) ? pick(r, ['', 'x', web.csrf.toUpperCase(), `${web.csrf} `]) : web.csrf;
  }
  let body: string | Buffer | undefined;
  let method = tg.method;
  if (tg.body) {
    body = wrongWay ? (r() < 0.5 ? toJson(tg.body()) : bodyText(r, tg.body())) : bodyText(r, tg.body());
    headers['content-type'] = 'application/json';
    if (odd(0.3)) {
      const ct = pick(r, [...CONTENT_TYPES, undefined]);
      if (ct === undefined) delete headers['content-type'];
      else headers['content-type'] = ct;
    }
    if (odd(0.08)) {
      body = gzipSync(body);
      headers['content-encoding'] = 'gzip';
    } else if (odd(0.05)) headers['content-encoding'] = pick(r, ['deflate', 'br', 'identity', 'IDENTITY', 'x-nonsense']);
  }
  if (odd(0.12)) method = pick(r, ['HEAD', 'OPTIONS', 'PUT', 'PATCH', 'DELETE', 'GET', 'POST', 'TRACE']);
  if (method === 'HEAD' || method === 'TRACE' || (method === 'GET' && !tg.body)) body = undefined;
  if (tg.queries && r() < 0.7) path += `?${pick(r, tg.queries).replace(':acct', sacrificial.id)}`;
  else if (wrongWay) {
    const p = r();
    if (p < 0.1) path += '/';
    else if (p < 0.2) path += pick(r, ['?', '?a=1&a=2', '?stream=true', '?model=x', '?%zz', '#frag', '?x=' + 'q'.repeat(3000)]);
    else if (p < 0.26) path = path.replace(/\/([a-z]+)$/, (_, seg: string) => `/%${seg.charCodeAt(0).toString(16)}${seg.slice(1)}`);
    else if (p < 0.3) path = path.replace('/v1/', pick(r, ['//v1/', '/v1//', '/V1/', '/v1/./', '/v1/x/../', '/v1%2F']));
  }
  if (odd(0.1)) headers['x-request-id'] = pick(r, ['not-a-uuid', '00000000-0000-0000-0000-000000000000', 'x'.repeat(500)]);
  if (odd(0.06)) headers.accept = pick(r, ['text/event-stream', 'application/xml', '*/*;q=0', '']);
  const fault = r() < 0.04 ? { upstream: pick(r, ['openai', 'fal'] as const), behaviour: pick(r, FAULTS) } : undefined;
  const cuts = body !== undefined && odd(0.2) ? Array.from({ length: 1 + Math.floor(r() * 4) }, () => Math.floor(r() * Buffer.byteLength(body!))).sort((a, b) => a - b) : undefined;
  const leave = r() < 0.04;
  return { method, path, headers, ...(body !== undefined && { body }), label: `${method} ${path}`, ...(fault && { fault }), ...(cuts && { cuts }), ...(leave && { leave }) };
}

interface Finding {
  label: string;
  status: number;
  why: string;
  body: string;
  sent?: string;
}

/** Checks one answer: below 500, and SPEC §5's shape on any error Tollgate wrote. */
function check(shot: Shot, status: number, headers: Record<string, string | string[] | undefined>, text: string): string | null {
  const rid = headers['x-request-id'];
  if (typeof rid !== 'string' || !UUID.test(rid)) return `x-request-id missing or not a UUID: ${String(rid)}`;
  if (status < 400 || shot.method === 'HEAD') return null;
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    return 'an error that is not JSON';
  }
  const e = json?.error;
  if (!e || typeof e !== 'object') return 'no error object';
  // An upstream's own error passes through with its status, normalised to OpenAI's shape (SPEC §5).
  const upstreams = faults > 0 && json.statusCode === undefined && typeof e.message === 'string' && e.message.length > 0;
  // The catalog's `unkeyed-chat` has no provider key: the operator's doing, documented as a 503.
  const operators = e.code === 'provider_not_configured';
  if (status >= 500 && !operators && !(faults > 0 && (UPSTREAM_CODES.has(e.code) || upstreams))) return 'a 5xx for client input';
  if (upstreams) return null;
  const spec = (catalogue as Record<string, { status: number; type: string }>)[e.code];
  if (!spec) return `code not in the catalogue: ${String(e.code)}`;
  if (spec.status !== status) return `code ${e.code} is ${spec.status} in the catalogue, answered ${status}`;
  if (e.type !== spec.type) return `type ${e.type} is not ${spec.type}`;
  if (json.statusCode !== String(status)) return `statusCode ${json.statusCode}`;
  if (json.requestId !== rid) return 'requestId differs from x-request-id';
  if (typeof json.timestamp !== 'string' || new Date(json.timestamp).toISOString() !== json.timestamp) return 'timestamp not ISO';
  if (typeof json.message !== 'string' || json.message !== e.message || json.message.length < 10) return 'message missing or differs';
  if (typeof json.path !== 'string' || !json.path.startsWith('/')) return `path ${json.path}`;
  if (!(e.param === null || typeof e.param === 'string')) return `param ${String(e.param)}`;
  if (text.length > 8_000) return `an error body of ${text.length} characters`;
  // A body wrong in one field only names that field (or the part of it, or what holds it) in param.
  if (shot.field !== undefined && e.code === 'invalid_request' && !(typeof e.param === 'string' && (shot.field.startsWith(e.param) || e.param.startsWith(shot.field)))) {
    return `param ${String(e.param)} for a wrong ${shot.field}`;
  }
  if (status === 429 && headers['retry-after'] === undefined) return '429 without Retry-After';
  return null;
}

async function fire(shot: Shot): Promise<Finding | null> {
  if (shot.fault) {
    faults++;
    (shot.fault.upstream === 'openai' ? t.openai : t.fal).enqueue(shot.fault.behaviour);
  }
  const controller = new AbortController();
  try {
    let body: string | Buffer | Readable | undefined = shot.body;
    if (shot.body !== undefined && shot.cuts) {
      const bytes = Buffer.from(shot.body);
      const cuts = shot.cuts;
      body = Readable.from((async function* () {
        let from = 0;
        for (const at of [...cuts, bytes.length]) {
          yield bytes.subarray(from, at);
          from = at;
          await new Promise((resolve) => setImmediate(resolve));
        }
      })());
    }
    const res = await request(`${t.url}${shot.path}`, {
      method: shot.method as 'GET',
      headers: shot.headers,
      ...(body !== undefined && { body }),
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
      signal: controller.signal,
    });
    if (shot.leave) {
      controller.abort();
      await res.body.text().catch(() => {});
      return null;
    }
    const text = await res.body.text();
    const why = check(shot, res.statusCode, res.headers, text);
    return why ? { label: shot.label, status: res.statusCode, why, body: text.slice(0, 400), sent: String(shot.body ?? '').slice(0, 300) } : null;
  } catch (err) {
    // The server may close a connection it refused at the HTTP level; that is an answer, not a crash.
    const code = (err as { code?: string }).code;
    if (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || controller.signal.aborted) return null;
    return { label: shot.label, status: 0, why: `request failed: ${String(err)}`, body: '' };
  }
}

interface Row { model: string; surface: string; status: string; credits: number; promptTokens: number; outputTokens: number }
/** A request whose reservation was released (an upstream failure): recorded with nothing counted, and no request of a requests rule. */
const released = (x: Row) => x.status !== 'ok' && x.credits === 0 && x.promptTokens === 0 && x.outputTokens === 0;

/** Where an account's counters (credits, concurrency, Playground requests, balance) differ from its ledger. */
async function mismatches(): Promise<string[]> {
  const out: string[] = [];
  for (const a of [...accounts, { id: web.accountId, plan: 'free (web)' }]) {
    const { body } = await t.admin('GET', `/accounts/${a.id}`);
    const rows = (await t.admin('GET', `/usage?account=${a.id}&limit=10000`)).body.data as Row[];
    const ledger = rows.reduce((sum, x) => sum + x.credits, 0);
    const differs = (what: string, counter: number, expected: number) => counter !== expected && out.push(`${a.plan} ${what}: counter ${counter}, ledger ${expected}`);
    for (const rule of body.usage.rules as { id: string; measure: string; used: number; scope: string; surfaces?: string[]; by_model?: { model: string; used: number }[] }[]) {
      if (rule.measure === 'credits' && rule.scope === 'account') differs(rule.id, rule.used, ledger);
      if (rule.measure === 'concurrent') differs(rule.id, rule.used, 0);
      if (rule.measure === 'requests' && rule.scope === 'account+model' && rule.surfaces?.length === 1) {
        for (const m of rule.by_model ?? []) differs(`${rule.id} ${m.model}`, m.used, rows.filter((x) => x.model === m.model && x.surface === rule.surfaces![0] && !released(x)).length);
      }
    }
    if (a.plan === 'paid') differs('balance', body.balance, 5_000_000 - ledger);
  }
  return out;
}

describe('fuzz', () => {
  it(`each classic wrong value at every field, then ${CASES} seeded requests: < 500, SPEC §5 errors; counters equal the ledger after`, async () => {
    const r = seededRandom(SEED);
    const shots = [...gridShots(), ...Array.from({ length: CASES }, () => makeShot(r))];
    const findings: Finding[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: PARALLEL }, async () => {
        while (next < shots.length) {
          const f = await fire(shots[next++]!);
          if (f) findings.push(f);
        }
      }),
    );
    expect(findings, JSON.stringify(findings.slice(0, 10), null, 1)).toEqual([]);

    // The server still serves (once the faults still queued at the fake upstream are used up).
    let status = 0;
    for (let tries = 0; status !== 200 && tries <= faults; tries++) {
      const ok = await request(`${t.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${accounts[2]!.secret}`, 'content-type': 'application/json' },
        body: JSON.stringify(chat()),
      });
      status = ok.statusCode;
      await ok.body.text();
    }
    expect(status).toBe(200);

    // Every account's counters equal its ledger: no reservation left, none lost. A stream whose
    // client left settles once its usage is drained (drainUsageMs), so this is polled.
    await expect.poll(mismatches, { timeout: 6_000, interval: 250 }).toEqual([]);
  }, 60_000);
});
