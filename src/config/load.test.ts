import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './load.js';

const providerTypes = ['openai', 'fal'];

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

/** The problems loadConfig lists for a config of `input` (no file), with `env`. */
const inputProblems = (input: NonNullable<Parameters<typeof loadConfig>[0]['input']>, env: Record<string, string> = {}) =>
  problemsOf(() => loadConfig({ env, providerTypes, input }));

describe('loadConfig', () => {
  it('starts from the built-in default with no file', () => {
    const c = loadConfig({ env: {}, providerTypes });
    expect(c.server.port).toBe(8080);
    expect(c.storage.url).toBe('sqlite:./data/tollgate.db');
    expect(c.credits.perUsd).toBe(2_000_000);
    expect(c.models.map((m) => m.id)).toContain('flux/schnell');
    expect(c.models.map((m) => m.id)).toContain('dall-e-3');
    // Unset keys leave providers unconfigured rather than failing the start.
    expect(c.providers.find((p) => p.id === 'openai')?.apiKey).toBe('');
    expect(c.admin.token).toBe('');
  });

  it("prices the built-in OpenAI chat models' cached prompt tokens at OpenAI's cached-input list price", () => {
    // Without it, a default install charged a prompt OpenAI served from its cache at the full
    // input price: up to 2x what OpenAI billed for gpt-4o(-mini), 4x for the gpt-4.1 family.
    const c = loadConfig({ env: {}, providerTypes });
    const cached = Object.fromEntries(c.models.flatMap((m) => (m.kind === 'chat' && m.provider === 'openai' ? [[m.id, m.price.cachedInput]] : [])));
    expect(cached).toEqual({ 'gpt-4o-mini': 0.075, 'gpt-4o': 1.25, 'gpt-4.1-mini': 0.1, 'gpt-4.1-nano': 0.025, 'gpt-4.1': 0.5 });
  });

  it('reads the built-in config\'s metrics token from TOLLGATE_METRICS_TOKEN; without it /metrics is open', () => {
    expect(loadConfig({ env: { TOLLGATE_METRICS_TOKEN: 'metrics-secret' }, providerTypes }).server.metricsToken).toBe('metrics-secret');
    expect(loadConfig({ env: {}, providerTypes }).server.metricsToken).toBe('');
  });

  it('refuses an admin or metrics token with whitespace in it, which no Authorization header can carry', () => {
    expect(inputProblems({ admin: { token: '${TOKEN}' }, server: { metricsToken: 'two words' } }, { TOKEN: 'abcdefabcdefabcdefabcdefabcdefab\r' })).toEqual([
      'server.metricsToken: holds whitespace (a space, tab, CR or newline), which an Authorization: Bearer header cannot carry: no caller could ever present it',
      'admin.token: holds whitespace (a space, tab, CR or newline), which an Authorization: Bearer header cannot carry: no caller could ever present it',
    ]);
    expect(loadConfig({ env: {}, providerTypes, input: { admin: { token: 'abc-DEF_123.~+/=' } } }).admin.token).toBe('abc-DEF_123.~+/=');
  });

  it('substitutes ${ENV} and ${ENV:-default}', () => {
    const c = loadConfig({
      env: { OPENAI_API_KEY: 'sk-test', TOLLGATE_ADMIN_TOKEN: 'adm' },
      providerTypes,
    });
    expect(c.providers.find((p) => p.id === 'openai')?.apiKey).toBe('sk-test');
    expect(c.admin.token).toBe('adm');
  });

  it('reads YAML from TOLLGATE_CONFIG and applies overrides', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tg-config-'));
    const file = join(dir, 'tollgate.yaml');
    writeFileSync(
      file,
      [
        'server: { port: 9000, publicUrl: "https://ai.example.com" }',
        'admin: { token: "${ADMIN}" }',
        'providers:',
        '  - { id: local, type: openai, baseUrl: "http://127.0.0.1:1234/v1", apiKey: x }',
        'models:',
        '  - { id: llama, kind: chat, provider: local, price: { input: 0.1, output: 0.2 } }',
      ].join('\n'),
    );
    const c = loadConfig({ env: { TOLLGATE_CONFIG: file, ADMIN: 'secret' }, providerTypes, overrides: { port: 0 } });
    expect(c.server.port).toBe(0);
    expect(c.server.publicUrl).toBe('https://ai.example.com');
    expect(c.admin.token).toBe('secret');
    expect(c.models).toHaveLength(1);
    expect(c.models[0]).toMatchObject({ id: 'llama', pro: false, vision: false, maxOutputTokens: 16_384 });
  });

  it('links to the port it serves on when publicUrl is not set', () => {
    // `tollgate serve --port 9000` on the built-in default sent every 401's "Keys page" link, and
    // every other link of an error, to http://localhost:8080.
    expect(loadConfig({ env: {}, providerTypes, overrides: { port: 9000 } }).server.publicUrl).toBe('http://localhost:9000');
    expect(loadConfig({ env: {}, providerTypes, input: { server: { port: 9001 } } }).server.publicUrl).toBe('http://localhost:9001');
    expect(loadConfig({ env: {}, providerTypes }).server.publicUrl).toBe('http://localhost:8080');
    // Any free port: which one is known only once listening, so the default stays.
    expect(loadConfig({ env: {}, providerTypes, overrides: { port: 0 } }).server.publicUrl).toBe('http://localhost:8080');
    const set = { server: { port: 9002, publicUrl: 'https://ai.example.com' } };
    expect(loadConfig({ env: {}, providerTypes, input: set }).server.publicUrl).toBe('https://ai.example.com');
  });

  it('is frozen', () => {
    const c = loadConfig({ env: {}, providerTypes });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.server)).toBe(true);
    expect(Object.isFrozen(c.models[0])).toBe(true);
  });

  it('lists every problem by path', () => {
    const problems = inputProblems({
      server: { port: 'eighty', colour: 'blue' },
      admin: { token: '${MISSING_TOKEN}' },
      providers: [
        { id: 'p', type: 'bogus', baseUrl: 'http://x' },
        { id: 'p', type: 'openai', baseUrl: 'not a url' },
        { id: 'q', type: 'openai', baseUrl: 'https://user:pass@llm.example/v1' },
      ],
      models: [{ id: 'm', kind: 'chat', provider: 'p', price: { input: -1, output: 1 } }],
    });
    const text = problems.join('\n');
    expect(text).toMatch(/providers\[2\]\.baseUrl: credentials in the URL are not sent/);
    const urls = inputProblems({ storage: { url: 'postgres://u:s3cret@127.0.0.1:99999/db' }, limiter: { url: 'redis://127.0.0.1:99999' } }).join('\n');
    expect(urls).toMatch(/storage\.url: not a valid URL/);
    expect(urls).toMatch(/limiter\.url: not a valid URL/);
    expect(urls).not.toContain('s3cret');
    expect(text).toMatch(/admin\.token: environment variable MISSING_TOKEN is not set/);
    expect(text).toMatch(/server\.port/);
    expect(text).toMatch(/server.*colour/);
    expect(text).toMatch(/providers\[1\]\.baseUrl/);
    expect(text).toMatch(/models\[0\]\.price\.input/);
  });

  it('keeps publicUrl without a trailing slash, since links append their paths to it', () => {
    for (const [given, kept] of [
      ['https://ai.example/', 'https://ai.example'],
      ['https://ai.example/tollgate//', 'https://ai.example/tollgate'],
      ['http://localhost:9000', 'http://localhost:9000'],
    ]) {
      expect(loadConfig({ env: {}, providerTypes, input: { server: { publicUrl: given } } }).server.publicUrl).toBe(kept);
    }
    expect(loadConfig({ env: {}, providerTypes, input: {} }).server.publicUrl).toBe('http://localhost:8080');
  });

  it('lets a caller that reads no secret load a config whose secrets come from an unset environment', () => {
    // The CLI's account commands, run from an operator's shell without the service's environment file.
    const input = {
      storage: { url: 'sqlite:${DB_PATH}' },
      server: { metricsToken: '${METRICS}' },
      admin: { token: '${ADMIN}' },
      web: { sessionSecret: '${SESSION}' },
      providers: [{ id: 'p', type: 'openai', baseUrl: 'https://llm.example/v1', apiKey: '${KEY}', headers: { 'x-org': '${ORG}' } }],
      models: [{ id: 'm', kind: 'chat', provider: 'p', price: { input: 1, output: 1 } }],
      billing: { stripe: { secretKey: '${STRIPE}', webhookSecret: '${WHSEC}' } },
    };
    const c = loadConfig({ env: { DB_PATH: '/srv/t.db' }, providerTypes, input, secretsUnused: true });
    expect([c.admin.token, c.web.sessionSecret, c.server.metricsToken, c.providers[0]!.apiKey, c.providers[0]!.headers['x-org'], c.billing.stripe.secretKey]).toEqual(['', '', '', '', '', '']);
    expect(c.storage.url).toBe('sqlite:/srv/t.db');
    // Everything else still refuses: the database is what those commands use.
    expect(problemsOf(() => loadConfig({ env: {}, providerTypes, input, secretsUnused: true })).filter((p) => p.includes('environment variable'))).toEqual([
      'storage.url: environment variable DB_PATH is not set',
    ]);
    // And the server still refuses them all.
    expect(problemsOf(() => loadConfig({ env: { DB_PATH: '/srv/t.db' }, providerTypes, input }))).toHaveLength(7);
  });

  it('keeps the key cache short enough for a revocation to land everywhere within one second (SPEC §9)', () => {
    // The cache TTL plus the credentials-version read that follows it: 1000 ms left no room for the read.
    expect(inputProblems({ keys: { cacheTtlMs: 1000 } }).join('\n')).toMatch(/keys\.cacheTtlMs/);
    expect(loadConfig({ env: {}, providerTypes, input: { keys: { cacheTtlMs: 900 } } }).keys.cacheTtlMs).toBe(900);
  });

  it("accepts every storage URL form pg connects with, a Unix socket's included", () => {
    // pg reads an empty host after the credentials (`user:pass@/db?host=/socket/dir`) as the socket
    // the `host` parameter names; the URL check must not refuse what the client would connect to.
    for (const url of [
      'postgres://tollgate:s3cret@/tollgate?host=/var/run/postgresql',
      'postgres://tollgate@/tollgate?host=/var/run/postgresql',
      'postgres:///tollgate?host=/var/run/postgresql',
      'postgresql://%2Fvar%2Frun%2Fpostgresql/tollgate',
    ]) {
      const c = loadConfig({ env: {}, providerTypes, input: { storage: { url }, limiter: { url: 'redis://127.0.0.1:6379' }, admin: { token: 'x' } } });
      expect(c.storage.url).toBe(url);
    }
  });

  it('an image model priced per size without `sizes` takes the sizes it is priced at (SPEC §10 dall-e-3)', () => {
    const c = loadConfig({
      env: {},
      providerTypes,
      input: {
        providers: [{ id: 'openai', type: 'openai', baseUrl: 'http://x' }],
        models: [
          { id: 'dall-e-3', kind: 'image', provider: 'openai', price: { perImage: { '1024x1024': 0.04, '1024x1792': 0.08, '1792x1024': 0.08, '1024x1024/hd': 0.08 } } },
          { id: 'flux/schnell', kind: 'image', provider: 'openai', price: { perImage: 0.003 } },
        ],
      },
    });
    const sizes = c.models.map((m) => (m.kind === 'image' ? m.sizes : null));
    // One flat price: any size, as before.
    expect(sizes).toEqual([['1024x1024', '1024x1792', '1792x1024'], []]);
  });

  it('cross-checks references', () => {
    const problems = inputProblems({
      providers: [
        { id: 'p', type: 'bogus', baseUrl: 'http://x' },
        { id: 'p', type: 'openai', baseUrl: 'http://y' },
      ],
      models: [
        { id: 'm', kind: 'chat', provider: 'nope', price: { input: 1, output: 1 } },
        { id: 'm', kind: 'image', provider: 'p', sizes: ['256x256'], defaultSize: '512x512', price: { perImage: { '256x256': 1 } } },
      ],
      defaultPlan: 'gold',
      upstream: { answerTimeoutMs: 700_000 },
    });
    const text = problems.join('\n');
    expect(text).toMatch(/providers\[0\]\.type: unknown provider type 'bogus'/);
    expect(text).toMatch(/providers\[1\]\.id: duplicate/);
    expect(text).toMatch(/models\[0\]\.provider: no provider with id 'nope'/);
    expect(text).toMatch(/models\[1\]\.id: duplicate/);
    expect(text).toMatch(/models\[1\]\.defaultSize/);
    expect(text).toMatch(/defaultPlan: no plan named 'gold'/);
    expect(text).toMatch(/upstream\.answerTimeoutMs: 700000 is above totalTimeoutMs \(600000\)/);
  });

  it('refuses a token price below $0.001 per 1M tokens: a price per token where the unit is per 1M tokens', () => {
    const problems = inputProblems({
      providers: [{ id: 'p', type: 'openai', baseUrl: 'http://x' }],
      models: [
        { id: 'c', kind: 'chat', provider: 'p', price: { input: 0.00000015, output: 0.6, cachedInput: 0 } },
        { id: 'e', kind: 'embedding', provider: 'p', price: { input: 0.00000002 } },
        { id: 'free', kind: 'chat', provider: 'p', price: { input: 0, output: 0 } },
        { id: 'cheap', kind: 'embedding', provider: 'p', price: { input: 0.005 } },
        // An image price has no per-token form to slip into; this one is a cent's tenth.
        { id: 'i', kind: 'image', provider: 'p', sizes: ['256x256'], defaultSize: '256x256', price: { perImage: { '256x256': 0.0001 } } },
      ],
    });
    expect(problems).toEqual([
      'models[0].price.input: 1.5e-7 USD per 1M tokens is below 0.001: prices are USD per million tokens (0.15 for $0.15 per 1M tokens), not per token',
      'models[1].price.input: 2e-8 USD per 1M tokens is below 0.001: prices are USD per million tokens (0.15 for $0.15 per 1M tokens), not per token',
    ]);
    // A low credit rate of the operator's own is no slip: $0.003 an image at 100 credits per USD.
    const lowRate = { credits: { perUsd: 100 }, providers: [{ id: 'p', type: 'fal', baseUrl: 'http://x' }], models: [{ id: 'f', kind: 'image', provider: 'p', price: { perImage: 0.003 } }] };
    expect(() => loadConfig({ env: {}, providerTypes, input: lowRate })).not.toThrow();
  });

  it('names the built-in catalog when a file lists providers without those its models need', () => {
    // The common first file: the built-in openai provider pointed at another server, no `models`.
    // Each built-in fal model was one problem at an index of a list the file does not have.
    const problems = inputProblems({ providers: [{ id: 'openai', type: 'openai', baseUrl: 'http://127.0.0.1:11434/v1', apiKey: 'x' }] });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^models: absent, so the built-in catalog is served; its models flux\/schnell, .*recraft-v3 need a provider 'fal', which providers does not list/);
    expect(problems[0]).toMatch(/list the models to serve/);
  });

  it('refuses rule ids the limiter uses for its own keys', () => {
    const problems = inputProblems({
      plans: {
        free: { preset: 'free-tier' },
        paid: { preset: 'pay-as-you-go', rules: [{ id: 'balance', measure: 'concurrent', limit: 2 }] },
        team: { rules: [{ id: 'resexp', measure: 'requests', limit: 60, window: 'minute' }, { id: 'receipts_ok', measure: 'concurrent', limit: 1 }] },
      },
    });
    const text = problems.join('\n');
    expect(text).toMatch(/plans\.paid\.rules\[0\]\.id: this rule id is reserved/);
    expect(text).toMatch(/plans\.team\.rules\[0\]\.id: this rule id is reserved/);
    expect(text).not.toMatch(/rules\[1\]/);
  });

  it("lists a plan rule's problems beside the schema's, not only once the rest is mended", () => {
    const problems = inputProblems({
      limitter: { url: 'embedded' },
      plans: { free: { preset: 'free-tier' }, paid: { preset: 'pay-as-you-go' }, team: { rules: [{ id: 'rpm', measure: 'requests', limit: 60, window: 'daily' }] } },
    });
    expect(problems.join('\n')).toMatch(/Unrecognized key: "limitter"/);
    expect(problems.join('\n')).toMatch(/plans\.team\.rules\[0\]\.window/);
  });

  it('lists every problem of a plan rule by path, not one "Invalid input" per rule', () => {
    const problems = inputProblems({
      models: [{ id: 'm', kind: 'chat', provider: 'openai', price: { input: 1, output: 1 } }],
      plans: {
        free: { preset: 'free-tier', rules: [{ id: 'team_rpm', measure: 'requests', limit: 5, window: 'day' }, { id: 'team_rpm', measure: 'requests', limit: 7, window: 'hour' }] },
        team: {
          rules: [
            { id: 'weekly', measure: 'credits', limit: 5, window: 'week', models: { kinds: ['video'] } },
            { id: 'typo', measure: 'credits', limit: 5, window: 'day', models: { ids: ['m', 'gpt-4o-mini-typo'] } },
            { id: 'cost', shape: 'max_request_cost', limit: 100, onExceed: 'clamp' },
            { id: 'images', shape: 'image_input', onExceed: 'clamp' },
            { id: 'none_out', shape: 'max_output_tokens', limit: 0, onExceed: 'clamp' },
            { id: 'none_in', shape: 'images_per_request', limit: 0, onExceed: 'clamp' },
            { id: 'tiny', shape: 'image_sizes', maxSize: '0x512' },
          ],
        },
      },
    });
    expect(problems).toEqual([
      "plans.free.rules[1].id: duplicate rule id 'team_rpm' (also rules[0])",
      expect.stringMatching(/^plans\.team\.rules\[0\]\.window: Invalid option/),
      expect.stringMatching(/^plans\.team\.rules\[0\]\.models\.kinds\[0\]: Invalid option/),
      'plans.team.rules[2].onExceed: the max_request_cost shape cannot be clamped, only rejected',
      'plans.team.rules[3].onExceed: the image_input shape cannot be clamped, only rejected',
      'plans.team.rules[4].limit: the max_output_tokens shape needs a limit of at least 1',
      'plans.team.rules[5].limit: the images_per_request shape needs a limit of at least 1',
      'plans.team.rules[6].maxSize: a size WxH, e.g. 512x512',
      "plans.team.rules[1].models.ids[1]: no model with id 'gpt-4o-mini-typo'",
    ]);
  });

  it('refuses one rule id counting credits in one plan and requests in another: they would be one counter', () => {
    // An account moved from `a` to `b` after 10 requests (120 credits) was refused its first
    // request on `b`: "You have used all 100 requests per day", the 120 credits counted as requests.
    const problems = inputProblems({
      plans: {
        free: { preset: 'free-tier' },
        a: { rules: [{ id: 'daily', measure: 'credits', limit: 50_000, window: 'day' }] },
        b: { rules: [{ id: 'rpm', measure: 'requests', limit: 60, window: 'minute' }, { id: 'daily', measure: 'requests', limit: 100, window: 'day' }] },
        c: { rules: [{ id: 'api_token', measure: 'requests', limit: 100, window: 'day' }] },
      },
    });
    expect(problems).toEqual([
      "plans.b.rules[1].measure: rule 'daily' counts requests here but credits in plan 'a', with the same scope and window, so both would be one counter (an account changing plan keeps a rule's use by id): give one of them another id",
      "plans.c.rules[0].measure: rule 'api_token' counts requests here but credits in plan 'free', with the same scope and window, so both would be one counter (an account changing plan keeps a rule's use by id): give one of them another id",
    ]);
    // The same id with the same measure is one budget shared on purpose; another window or scope is another counter.
    expect(() =>
      loadConfig({
        env: {},
        providerTypes,
        input: {
          plans: {
            free: { preset: 'free-tier' },
            team: { rules: [{ id: 'api_token', measure: 'credits', limit: 2_000_000, window: 'day' }, { id: 'quota', measure: 'credits', limit: 5, window: 'month' }] },
            pro: { rules: [{ id: 'quota', measure: 'requests', limit: 5, window: 'day' }, { id: 'api_token', measure: 'requests', limit: 9, window: 'day', scope: 'key' }] },
          },
        },
      }),
    ).not.toThrow();
  });

  it('checks server.trustProxy at start: addresses and CIDRs, or true/false (also as ${ENV} text)', () => {
    const load = (trustProxy: unknown) =>
      loadConfig({ env: {}, providerTypes, input: { server: { trustProxy } as never } }).server.trustProxy;
    expect(load('10.0.0.0/8, 127.0.0.1,::1,fd00::/8,loopback')).toBe('10.0.0.0/8, 127.0.0.1,::1,fd00::/8,loopback');
    expect(load('true')).toBe(true);
    expect(load('false')).toBe(false);
    for (const bad of ['yes', '10.0.0.0/33', '2', '10.0.0.0/8/1', '', 'fd00::/129']) {
      expect(problemsOf(() => load(bad)).join('\n'), bad).toMatch(/server\.trustProxy/);
    }
  });

  it('refuses URLs the gateway cannot call or link to: http(s) only', () => {
    // `localhost:11434/v1` (the scheme forgotten) parses as a URL of scheme `localhost:`; it passed,
    // and every request to the provider's models answered 500 internal_error.
    const problems = inputProblems({
      server: { publicUrl: 'mailto:ops@example.com' },
      providers: [
        { id: 'ollama', type: 'openai', baseUrl: 'localhost:11434/v1', apiKey: 'x' },
        { id: 'files', type: 'openai', baseUrl: 'ftp://example.com/v1', apiKey: 'x' },
      ],
      models: [],
      billing: { stripe: { apiBase: 'javascript:alert(1)' } },
    });
    expect(problems).toEqual([
      expect.stringMatching(/^server\.publicUrl: /),
      expect.stringMatching(/^providers\[0\]\.baseUrl: .*https?:\/\//),
      expect.stringMatching(/^providers\[1\]\.baseUrl: /),
      expect.stringMatching(/^billing\.stripe\.apiBase: /),
    ]);
    const ok = loadConfig({ env: {}, providerTypes, input: { providers: [{ id: 'local', type: 'openai', baseUrl: 'http://127.0.0.1:11434/v1', apiKey: 'x' }], models: [] } });
    expect(ok.providers[0]?.baseUrl).toBe('http://127.0.0.1:11434/v1');
  });

  it('refuses a storage url that names no database, as serve would', () => {
    // `sqlite:` passed config check; serve then failed with a stack trace.
    expect(inputProblems({ storage: { url: 'sqlite:' } })).toEqual([expect.stringMatching(/^storage\.url: /)]);
    expect(inputProblems({ storage: { url: 'sqlite:${DB:-}' } }, { DB: '' })).toEqual([expect.stringMatching(/^storage\.url: /)]);
    expect(loadConfig({ env: {}, providerTypes, input: { storage: { url: 'sqlite::memory:' } } }).storage.url).toBe('sqlite::memory:');
  });

  it('needs Stripe’s keys when billing.provider is stripe', () => {
    const text = inputProblems({ billing: { provider: 'stripe' } }).join('\n');
    expect(text).toMatch(/billing\.stripe\.secretKey: required/);
    expect(text).toMatch(/billing\.stripe\.webhookSecret: required/);
    const ok = loadConfig({ env: { SK: 'sk_test_1', WH: 'whsec_1' }, providerTypes, input: { billing: { provider: 'stripe', stripe: { secretKey: '${SK}', webhookSecret: '${WH}' } } } });
    expect(ok.billing.stripe).toMatchObject({ secretKey: 'sk_test_1', webhookSecret: 'whsec_1', currency: 'usd' });
  });

  it('reports unreadable files and bad YAML', () => {
    expect(problemsOf(() => loadConfig({ path: '/nonexistent/t.yaml', env: {}, providerTypes }))[0]).toMatch(/cannot read/);
    const dir = mkdtempSync(join(tmpdir(), 'tg-config-'));
    writeFileSync(join(dir, 'bad.yaml'), 'server: [unclosed');
    expect(problemsOf(() => loadConfig({ path: join(dir, 'bad.yaml'), env: {}, providerTypes }))[0]).toMatch(/not valid YAML/);
  });

  it('a YAML error names the line and column without quoting the file: that line may hold a literal key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tg-config-'));
    writeFileSync(join(dir, 'bad.yaml'), 'server: { port: 8080 }\nproviders:\n  - { id: openai, type: openai, apiKey: "sk-literal-0123456789"\nmodels: [\n');
    const [problem] = problemsOf(() => loadConfig({ path: join(dir, 'bad.yaml'), env: {}, providerTypes }));
    expect(problem).toMatch(/^not valid YAML: .* at line \d+, column \d+$/);
    expect(problem).not.toContain('sk-literal');
  });
});
