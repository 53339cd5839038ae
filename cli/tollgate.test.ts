// The built `tollgate` binary, as an operator runs it: config check, accounts, keys, usage,
// models, and `serve` answering the official openai client.
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { chatStreamFixture, startFakeOpenAI, type FakeOpenAI } from '../test/helpers/fake-openai.js';
import { openSqliteStorage } from '../src/storage/sqlite/index.js';

// Each `tollgate` run is a fresh node process loading the whole app (~0.5 s on this machine, several
// times that beside other suites): tests of a dozen runs came within seconds of the default 30 s.
vi.setConfig({ testTimeout: 90_000 });

const run = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;
const bin = join(root, 'dist/cli/tollgate.js');

let dir: string;
let configFile: string;
let upstream: FakeOpenAI;

async function tollgate(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    // A large buffer: a usage report of 10,000 days is about 2 MB of JSON.
    const { stdout, stderr } = await run('node', [bin, ...args], { env: { ...process.env, TOLLGATE_ADMIN_TOKEN: 'adm' }, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** `tollgate` with `input` piped to its stdin. */
function tollgateWithInput(input: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile('node', [bin, ...args], { env: { ...process.env, TOLLGATE_ADMIN_TOKEN: 'adm' } }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(input);
  });
}

beforeAll(async () => {
  // The binary under test is the build output, built once for the suite by test/global-setup.ts.
  upstream = await startFakeOpenAI();
  dir = mkdtempSync(join(tmpdir(), 'tollgate-cli-'));
  configFile = join(dir, 'tollgate.yaml');
  writeFileSync(
    configFile,
    [
      'server: { port: 0 }',
      `storage: { url: "sqlite:${join(dir, 'db/tollgate.db')}" }`,
      'admin: { token: "${TOLLGATE_ADMIN_TOKEN}" }',
      'logging: { level: info }',
      'providers:',
      `  - { id: openai, type: openai, baseUrl: "${upstream.url}", apiKey: "sk-fake" }`,
      'models:',
      '  - { id: gpt-4o-mini, kind: chat, provider: openai, price: { input: 0.15, output: 0.60 } }',
    ].join('\n'),
  );
}, 60_000);
afterAll(async () => upstream?.close());

/** `tollgate serve` on the suite's config, on a free port: its URL, and a stop that resolves to its exit code. */
async function serve(): Promise<{ url: string; stop: () => Promise<unknown> }> {
  const server = spawn('node', [bin, 'serve', '--config', configFile, '--port', '0'], { env: { ...process.env, TOLLGATE_ADMIN_TOKEN: 'adm' } });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /"url":"(http:\/\/[^"]+)"/.exec(out);
      if (m) resolve(m[1]!);
    });
    server.once('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)));
  });
  return {
    url,
    stop: () => {
      server.kill('SIGTERM');
      return new Promise((r) => server.once('exit', r));
    },
  };
}

describe('tollgate CLI', () => {
  it('config check accepts a good file and lists every problem of a bad one', async () => {
    const ok = await tollgate('config', 'check', configFile);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/ok \(1 providers, 1 models/);

    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'server: { port: -1 }\nproviders:\n  - { id: x, type: nope, baseUrl: "http://x" }\nmodels: []\nsurprise: true\n');
    const res = await tollgate('config', 'check', bad);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/server\.port/);
    expect(res.stderr).toMatch(/surprise/);
  });

  it('config check reads the file every other command would: F, else --config, else $TOLLGATE_CONFIG', async () => {
    // "Every command takes --config F (default: $TOLLGATE_CONFIG)": config check alone answered
    // 'missing FILE' to both, and checked F while ignoring a different --config beside it.
    const bad = join(dir, 'bad-port.yaml');
    writeFileSync(bad, 'server: { port: -1 }\n');
    const viaOption = await tollgate('config', 'check', '--config', configFile);
    expect(viaOption.code).toBe(0);
    expect(viaOption.stdout).toBe(`${configFile}: ok (1 providers, 1 models, plans: free, paid)\n`);
    const viaEnv = await run('node', [bin, 'config', 'check'], { env: { ...process.env, TOLLGATE_ADMIN_TOKEN: 'adm', TOLLGATE_CONFIG: bad } }).then(
      (r) => ({ code: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    expect(viaEnv.code).toBe(1);
    expect(viaEnv.stderr).toMatch(new RegExp(`invalid config \\(${bad}\\):\n  - server\\.port`));
    const both = await tollgate('config', 'check', bad, '--config', configFile);
    expect(both.code).toBe(2);
    expect(both.stderr.split('\n')[0]).toBe(`error: two files: check ${bad} or ${configFile}, not both`);
  });

  it("runs the database commands from a shell without the server's secrets; serve and config check still need them", async () => {
    const env = { ...process.env };
    delete env.TOLLGATE_ADMIN_TOKEN;
    const bare = async (...args: string[]) =>
      run('node', [bin, ...args], { env }).then(
        (r) => ({ code: 0, ...r }),
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
    const made = await bare('accounts', 'create', '--config', configFile, '--json');
    expect(made.stderr).not.toMatch(/environment variable/);
    expect(made.code).toBe(0);
    const { id } = JSON.parse(made.stdout) as { id: string };
    expect((await bare('accounts', 'show', id, '--config', configFile)).code).toBe(0);
    const check = await bare('config', 'check', configFile);
    expect(check.code).toBe(1);
    expect(check.stderr).toMatch(/admin\.token: environment variable TOLLGATE_ADMIN_TOKEN is not set/);
    const serve = await bare('serve', '--config', configFile, '--port', '0');
    expect(serve.code).toBe(1);
    expect(serve.stderr).toMatch(/admin\.token: environment variable TOLLGATE_ADMIN_TOKEN is not set/);
  });

  it('backs the database up to a new file that opens as the same data, and never over a file', async () => {
    const made = await tollgate('accounts', 'create', '--email', 'backup@example.com', '--config', configFile, '--json');
    const { id } = JSON.parse(made.stdout) as { id: string };
    const target = join(dir, 'backups', 'one.db');
    const none = await tollgate('backup', target, '--config', configFile);
    expect(none.code).toBe(1);
    expect(none.stderr).toBe(`${target} cannot be made: there is no directory ${join(dir, 'backups')}\n`);
    mkdirSync(join(dir, 'backups'));
    const res = await tollgate('backup', target, '--config', configFile, '--json');
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ path: target, bytes: expect.any(Number) });
    const copy = openSqliteStorage(`sqlite:${target}`);
    expect((await copy.accounts.get(id))?.email).toBe('backup@example.com');
    await copy.close();
    const again = await tollgate('backup', target, '--config', configFile);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists: give a new file/);
    const usage = await tollgate('backup', '--config', configFile);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/missing FILE/);
  });

  it('makes a password reset link signed with the server\'s session secret: the one set, or else the one kept in the database', async () => {
    const made = await tollgate('accounts', 'create', '--email', 'reset@example.com', '--config', configFile, '--json');
    const { id } = JSON.parse(made.stdout) as { id: string };
    const { Sessions } = await import('../src/core/sessions.js');
    // Left empty, the server signs with the secret kept in the database (main.ts): so does the link.
    const kept = await tollgate('accounts', 'reset-link', id, '--config', configFile, '--json');
    expect(kept.stderr).toBe('');
    expect(kept.code).toBe(0);
    const keptUrl = (JSON.parse(kept.stdout) as { url: string }).url;
    const storage = openSqliteStorage(`sqlite:${join(dir, 'db/tollgate.db')}`);
    const stored = await storage.sharedSecret('web.sessionSecret', () => 'not made here');
    await storage.close();
    expect(stored).not.toBe('not made here');
    expect(new Sessions(stored, 3_600_000, { now: () => Date.now() }).readReset(keptUrl.split('#')[1]!)?.accountId).toBe(id);
    const withSecret = join(dir, 'with-secret.yaml');
    writeFileSync(withSecret, `${readFileSync(configFile, 'utf8')}\nweb: { sessionSecret: "\${TOLLGATE_SESSION_SECRET}" }\n`);
    const unset = await tollgate('accounts', 'reset-link', id, '--config', withSecret);
    expect(unset.code).toBe(1);
    expect(unset.stderr).toMatch(/web\.sessionSecret: environment variable TOLLGATE_SESSION_SECRET is not set/);
    const secret = 'a session secret of thirty-two chars';
    const res = await run('node', [bin, 'accounts', 'reset-link', id, '--config', withSecret, '--json'], { env: { ...process.env, TOLLGATE_ADMIN_TOKEN: 'adm', TOLLGATE_SESSION_SECRET: secret } });
    const link = JSON.parse(res.stdout) as { url: string; expiresAt: string };
    expect(link.url).toMatch(/\/app\/reset#[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    // The server's own check of it: the token is genuine under that secret, for this account.
    expect(new Sessions(secret, 3_600_000, { now: () => Date.now() }).readReset(link.url.split('#')[1]!)?.accountId).toBe(id);
  });

  it('creates an account and a key, serves them, and reports usage', async () => {
    const account = await tollgate('accounts', 'create', '--plan', 'free', '--email', 'cli@example.com', '--json', '--config', configFile);
    expect(account.code).toBe(0);
    const { id } = JSON.parse(account.stdout);
    expect(id).toMatch(/^acct_/);

    const key = await tollgate('keys', 'create', id, '--credits', '1000', '--json', '--config', configFile);
    expect(key.code).toBe(0);
    const secret = JSON.parse(key.stdout).key as string;
    expect(secret).toMatch(/^tg-/);

    const server = await serve();
    try {
      const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: secret, maxRetries: 0 });
      const answer = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
      expect(answer.choices[0]?.message.content).toBe('Hello from the fake upstream.');
    } finally {
      expect(await server.stop()).toBe(0);
    }

    const usage = await tollgate('usage', id, '--json', '--config', configFile);
    expect(JSON.parse(usage.stdout)).toMatchObject([{ model: 'gpt-4o-mini', requests: 1, credits: 12 }]);
    const text = await tollgate('usage', id, '--config', configFile);
    expect(text.stdout).toMatch(/gpt-4o-mini\s+api\s+1 req\s+12 credits/);
    expect(text.stdout).toMatch(/^total\s+1 req\s+12 credits$/m);
    // For a person: the email, the payment method, today's usage by model (the JSON has it all).
    const shown = (await tollgate('accounts', 'show', id, '--config', configFile)).stdout.split('\n');
    expect(shown[1]).toMatch(/^email cli@example\.com {2}payment method no {2}created \d{4}-/);
    expect(shown).toContainEqual(expect.stringMatching(/^ {2}gpt-4o-mini\s+1 req\s+12 credits$/));
    // The key's own limit with what the server spent of it, as the admin API lists it.
    const keys = await tollgate('keys', 'list', id, '--json', '--config', configFile);
    expect(JSON.parse(keys.stdout)).toEqual([expect.objectContaining({ limit: { credits: 1000, window: 'day' }, limitUsed: 12 })]);
    const listed = (await tollgate('keys', 'list', id, '--config', configFile)).stdout;
    expect(listed).toContain('limit 1000 per UTC day, 12 used');
    expect(listed).toMatch(/ {2}last used \d{4}-\d{2}-\d{2}T/);

    const revoked = await tollgate('keys', 'revoke', JSON.parse(key.stdout).id, '--config', configFile);
    expect(revoked.stdout).toMatch(/revoked key_/);

    // Closed: the email and keys go, the usage stays.
    const other = JSON.parse((await tollgate('keys', 'create', id, '--json', '--config', configFile)).stdout);
    const closed = await tollgate('accounts', 'close', id, '--json', '--config', configFile);
    expect(JSON.parse(closed.stdout)).toMatchObject({ id, email: null, suspendedReason: 'account closed' });
    const keysAfter = JSON.parse((await tollgate('keys', 'list', id, '--json', '--config', configFile)).stdout) as { id: string; revokedAt: string | null }[];
    expect(keysAfter.find((k) => k.id === other.id)?.revokedAt).not.toBeNull();
    expect(JSON.parse((await tollgate('usage', id, '--json', '--config', configFile)).stdout)).toMatchObject([{ model: 'gpt-4o-mini', requests: 1 }]);
  });

  it('tops up, changes plans and lists keys beside a running server, which sees each change', async () => {
    const id = JSON.parse((await tollgate('accounts', 'create', '--plan', 'paid', '--json', '--config', configFile)).stdout).id as string;
    const key = JSON.parse((await tollgate('keys', 'create', id, '--name', 'ci', '--json', '--config', configFile)).stdout);
    const server = await serve();
    try {
      const ask = (maxTokens: number | null = 16) =>
        fetch(`${server.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'gpt-4o-mini', ...(maxTokens !== null && { max_tokens: maxTokens }), messages: [{ role: 'user', content: 'hi' }] }),
        });
      // A balance the server's own admin API tops up, spent until refused: the server now holds it
      // in its memory (a counter only looked at and refused would have been let go).
      const own = await fetch(`${server.url}/admin/v1/accounts/${id}/credits`, {
        method: 'POST',
        headers: { authorization: 'Bearer adm', 'content-type': 'application/json' },
        body: JSON.stringify({ amount: 100 }),
      });
      expect(own.status).toBe(200);
      let refused: Response | undefined;
      for (let i = 0; i < 20 && refused === undefined; i++) {
        const res = await ask();
        if (res.status !== 200) refused = res;
      }
      expect(refused?.status).toBe(403);
      expect((await refused?.json()).error.code).toBe('insufficient_balance');
      const left = JSON.parse((await tollgate('accounts', 'show', id, '--json', '--config', configFile)).stdout).balance as number;

      const topUp = await tollgate('accounts', 'credits', id, '200000', '--json', '--config', configFile);
      expect(topUp.code).toBe(0);
      expect(JSON.parse(topUp.stdout)).toMatchObject({ id, balance: left + 200_000 });
      // Written beside the server: it learns of the top-up on its lease heartbeat (every 2 s).
      // Without that it kept refusing on the balance it had loaded, until restarted.
      let served: Response | undefined;
      for (const deadline = Date.now() + 8_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
        served = await ask();
        if (served.status === 200) break;
      }
      expect(served?.status).toBe(200);
      expect(served?.headers.get('x-tollgate-clamped')).toBeNull();
      const charged = Number(served?.headers.get('x-tollgate-credits-used'));
      expect(charged).toBeGreaterThan(0);
      const shown = await tollgate('accounts', 'show', id, '--json', '--config', configFile);
      expect(JSON.parse(shown.stdout).balance).toBe(left + 200_000 - charged);

      const moved = await tollgate('accounts', 'update', id, '--plan', 'free', '--json', '--config', configFile);
      expect(JSON.parse(moved.stdout)).toMatchObject({ id, plan: 'free' });
      let clamped: string | null = null;
      for (const deadline = Date.now() + 8_000; clamped === null && Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
        clamped = (await ask(null)).headers.get('x-tollgate-clamped');
      }
      expect(clamped).toBe('max_tokens=512');
      const marked = await tollgate('accounts', 'update', id, '--payment-method', '--config', configFile);
      expect(marked.stdout).toMatch(/plan paid {2}payment method yes/);
      const renamed = await tollgate('accounts', 'update', id, '--email', `Renamed-${id}@Example.com`, '--json', '--config', configFile);
      expect(JSON.parse(renamed.stdout)).toMatchObject({ id, email: `renamed-${id}@example.com`.toLowerCase() });
      const onPaid = JSON.parse((await tollgate('accounts', 'list', '--plan', 'paid', '--limit', '1000', '--json', '--config', configFile)).stdout);
      expect(onPaid.data.map((a: { id: string }) => a.id)).toContain(id);
      expect(onPaid.data.every((a: { plan: string }) => a.plan === 'paid')).toBe(true);

      const listed = await tollgate('keys', 'list', id, '--json', '--config', configFile);
      expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ id: key.id, name: 'ci', revokedAt: null })]);
      expect(listed.stdout).not.toContain(key.key);
      expect((await tollgate('keys', 'list', id, '--config', configFile)).stdout).toMatch(new RegExp(`^${key.id}  tg-`));
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });

  it('suspends an account beside a running server, which refuses its key, lists it, and lifts the suspension', async () => {
    const email = `sus-${Date.now()}@example.com`;
    const id = JSON.parse((await tollgate('accounts', 'create', '--email', email, '--json', '--config', configFile)).stdout).id as string;
    const key = JSON.parse((await tollgate('keys', 'create', id, '--json', '--config', configFile)).stdout);
    const server = await serve();
    try {
      const status = async () => (await fetch(`${server.url}/v1/usage`, { headers: { authorization: `Bearer ${key.key}` } })).status;
      expect(await status()).toBe(200);
      const suspended = await tollgate('accounts', 'suspend', id, '--reason', 'chargeback', '--config', configFile);
      expect(suspended.code).toBe(0);
      expect(suspended.stdout).toMatch(new RegExp(`^${id}  suspended at \\S+: chargeback`));
      // Written beside the server: its key cache drops the account when the credentials version moves.
      let seen = 200;
      for (const deadline = Date.now() + 3_000; seen === 200 && Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) seen = await status();
      expect(seen).toBe(403);

      const listed = JSON.parse((await tollgate('accounts', 'list', '--suspended', '--json', '--config', configFile)).stdout);
      // (Among the file's other suspended accounts: the one closed by an earlier test.)
      expect(listed.data).toContainEqual(expect.objectContaining({ id, email, suspendedReason: 'chargeback' }));
      expect(listed.data.every((a: { suspendedAt: string | null }) => a.suspendedAt !== null)).toBe(true);
      const byEmail = await tollgate('accounts', 'list', '--email', email.toUpperCase(), '--config', configFile);
      expect(byEmail.stdout).toMatch(new RegExp(`^${id}  \\S+  free  ${email}  suspended `));
      const all = JSON.parse((await tollgate('accounts', 'list', '--limit', '1', '--json', '--config', configFile)).stdout);
      expect(all).toMatchObject({ hasMore: true, data: [{ id }] });
      // The text says so too, with the next page's option, as accounts top-ups does: a page of
      // exactly --limit lines looked like every account there is.
      const page = await tollgate('accounts', 'list', '--limit', '1', '--config', configFile);
      expect(page.stdout).toMatch(new RegExp(`^${id}  .*\nmore: --before ${id}\n$`));
      const next = JSON.parse((await tollgate('accounts', 'list', '--before', id, '--json', '--config', configFile)).stdout);
      expect(next.data.map((a: { id: string }) => a.id)).not.toContain(id);

      expect((await tollgate('accounts', 'unsuspend', id, '--json', '--config', configFile)).stdout).toMatch(/"suspendedAt": null/);
      for (const deadline = Date.now() + 3_000; seen !== 200 && Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) seen = await status();
      expect(seen).toBe(200);
      // Mistakes are usage errors (exit 2).
      expect((await tollgate('accounts', 'unsuspend', id, '--reason', 'x', '--config', configFile)).code).toBe(2);
      expect((await tollgate('accounts', 'list', '--limit', '0', '--config', configFile)).code).toBe(2);
      expect((await tollgate('accounts', 'list', '--limit', '1001', '--config', configFile)).code).toBe(2);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });

  it('tops up once per --idempotency-key: a repeat says so and adds nothing, another amount under it exits 1', async () => {
    const id = JSON.parse((await tollgate('accounts', 'create', '--plan', 'paid', '--json', '--config', configFile)).stdout).id as string;
    const first = await tollgate('accounts', 'credits', id, '300', '--idempotency-key', 'ticket-77', '--json', '--config', configFile);
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ id, balance: 300, replayed: false });
    const again = await tollgate('accounts', 'credits', id, '300', '--idempotency-key', 'ticket-77', '--config', configFile);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/balance 300 \(the \+300 under this key were made before\)/);
    const other = await tollgate('accounts', 'credits', id, '400', '--idempotency-key', 'ticket-77', '--config', configFile);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/300 credits, not 400/);
    const bad = await tollgate('accounts', 'credits', id, '400', '--idempotency-key', '', '--config', configFile);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--idempotency-key: 1 to 255 printable ASCII characters/);
    expect(JSON.parse((await tollgate('accounts', 'show', id, '--json', '--config', configFile)).stdout).balance).toBe(300);
    // The balance's history: the top-up once, from the CLI, under its key.
    const history = JSON.parse((await tollgate('accounts', 'top-ups', id, '--json', '--config', configFile)).stdout);
    expect(history.data).toEqual([expect.objectContaining({ credits: 300, source: 'cli', reference: 'ticket-77' })]);
    expect((await tollgate('accounts', 'top-ups', id, '--config', configFile)).stdout).toMatch(/^top_\S+ {2}\S+ {2}\+300 {2}cli {2}ticket-77\n$/);
    expect((await tollgate('accounts', 'top-ups', id, '--limit', '0', '--config', configFile)).code).toBe(2);
  });

  it('debits a balance (a correction), never below zero; the history shows it signed', async () => {
    const id = JSON.parse((await tollgate('accounts', 'create', '--plan', 'paid', '--json', '--config', configFile)).stdout).id as string;
    expect((await tollgate('accounts', 'credits', id, '5000', '--config', configFile)).code).toBe(0);
    const debit = await tollgate('accounts', 'debit', id, '1200', '--config', configFile);
    expect(debit.code).toBe(0);
    expect(debit.stdout).toMatch(/balance 3800 \(-1200\)/);
    const tooMuch = await tollgate('accounts', 'debit', id, '3801', '--config', configFile);
    expect(tooMuch.code).toBe(1);
    expect(tooMuch.stderr).toMatch(/has 3800 credits to spare .*a correction of -3801 would take it below zero/);
    const keyed = await tollgate('accounts', 'debit', id, '800', '--idempotency-key', 'refund-9', '--config', configFile);
    expect(keyed.stdout).toMatch(/balance 3000 \(-800\)/);
    expect((await tollgate('accounts', 'debit', id, '800', '--idempotency-key', 'refund-9', '--config', configFile)).stdout).toMatch(/balance 3000 \(the -800 under this key were made before\)/);
    // The same key for a top-up of that size is another amount: refused.
    const flipped = await tollgate('accounts', 'credits', id, '800', '--idempotency-key', 'refund-9', '--config', configFile);
    expect(flipped.code).toBe(1);
    expect(flipped.stderr).toMatch(/top-up of -800 credits, not 800/);
    expect((await tollgate('accounts', 'debit', id, '-5', '--config', configFile)).code).toBe(2);
    expect((await tollgate('accounts', 'top-ups', id, '--config', configFile)).stdout).toMatch(/ -800 {2}cli {2}refund-9\n.* -1200 {2}cli\n.* \+5000 {2}cli\n$/s);
    expect(JSON.parse((await tollgate('accounts', 'show', id, '--json', '--config', configFile)).stdout).balance).toBe(3000);
  });

  it('an --idempotency-key top-up is counted by one process: two at once add once; beside a running server it is refused', async () => {
    const id = JSON.parse((await tollgate('accounts', 'create', '--plan', 'paid', '--json', '--config', configFile)).stdout).id as string;
    // Each command holds the file's lease while it counts: the second waits for the first.
    const both = await Promise.all([1, 2].map(() => tollgate('accounts', 'credits', id, '300', '--idempotency-key', 'pair', '--json', '--config', configFile)));
    expect(both.map((r) => r.code)).toEqual([0, 0]);
    expect(both.map((r) => JSON.parse(r.stdout).replayed).sort()).toEqual([false, true]);
    expect(JSON.parse((await tollgate('accounts', 'show', id, '--json', '--config', configFile)).stdout).balance).toBe(300);

    const server = await serve();
    try {
      // Before: added from the file, which the server's memory learns only on its next heartbeat,
      // so the same key sent to the server's admin API at once added again (balance 1300).
      const cli = await tollgate('accounts', 'credits', id, '500', '--idempotency-key', 'wire-9', '--config', configFile);
      expect(cli.code).toBe(1);
      expect(cli.stderr).toMatch(/serving from .*: send this top-up through its admin API/);
      const api = await fetch(`${server.url}/admin/v1/accounts/${id}/credits`, {
        method: 'POST',
        headers: { authorization: 'Bearer adm', 'content-type': 'application/json', 'idempotency-key': 'wire-9' },
        body: JSON.stringify({ amount: 500 }),
      });
      expect(api.status).toBe(200);
      expect((await api.json()).balance).toBe(800);
      await new Promise((r) => setTimeout(r, 2_500)); // a heartbeat: nothing more arrives
      expect((await (await fetch(`${server.url}/admin/v1/accounts/${id}`, { headers: { authorization: 'Bearer adm' } })).json()).balance).toBe(800);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  }, 60_000);

  it('a debit beside a running server is refused: the server holds the balance and what its requests in flight hold', async () => {
    const id = JSON.parse((await tollgate('accounts', 'create', '--plan', 'paid', '--json', '--config', configFile)).stdout).id as string;
    const key = JSON.parse((await tollgate('keys', 'create', id, '--json', '--config', configFile)).stdout).key as string;
    expect((await tollgate('accounts', 'credits', id, '6000', '--config', configFile)).code).toBe(0);
    const server = await serve();
    let release = () => {};
    try {
      // A request that may cost up to 4,800 credits (4,000 output tokens at 1.2), held mid-stream,
      // then answered as long as it could be.
      const events = chatStreamFixture.map((e) => e.replace('"completion_tokens":7,"total_tokens":19', '"completion_tokens":4000,"total_tokens":4012'));
      upstream.enqueue({ kind: 'sse', events, holdBeforeIndex: 2, release: new Promise<void>((r) => (release = r)) });
      const answer = fetch(`${server.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 4000, stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] }),
      });
      while (upstream.inFlight === 0) await new Promise((r) => setTimeout(r, 20));
      // The file says 6,000; the server has 6,000 less the 4,800 held. Taken from the file, the
      // debit reached the server's memory on its heartbeat, and the balance ended at about −800.
      const debit = await tollgate('accounts', 'debit', id, '2000', '--config', configFile);
      expect(debit.code).toBe(1);
      expect(debit.stderr).toMatch(/serving from .*: send this correction through its admin API/);
      await new Promise((r) => setTimeout(r, 2_500)); // a heartbeat
      release();
      await (await answer).text();
      const balance = (await (await fetch(`${server.url}/admin/v1/accounts/${id}`, { headers: { authorization: 'Bearer adm' } })).json()).balance as number;
      expect(balance).toBeGreaterThanOrEqual(0);
      expect(balance).toBeGreaterThan(1000);
    } finally {
      release();
      expect(await server.stop()).toBe(0);
    }
  }, 60_000);

  it('refuses a top-up that is not a whole positive number of credits, and an update that changes nothing', async () => {
    // A negative number reads as an option: still a usage error.
    expect((await tollgate('accounts', 'credits', 'acct_x', '-5', '--config', configFile)).code).toBe(2);
    for (const amount of ['0', '1.5', '1e6', '10000000000000001', 'lots']) {
      const res = await tollgate('accounts', 'credits', 'acct_x', amount, '--config', configFile);
      expect(res.code, amount).toBe(2);
      expect(res.stderr).toMatch(/AMOUNT must be a whole number of credits/);
    }
    const nothing = await tollgate('accounts', 'update', 'acct_x', '--config', configFile);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toMatch(/needs --plan P, --payment-method or --email E/);
    const badEmail = await tollgate('accounts', 'update', 'acct_x', '--email', 'nope', '--config', configFile);
    expect(badEmail.code).toBe(2);
    expect(badEmail.stderr).toMatch(/--email: not an email address: 'nope'/);
    const unknown = await tollgate('accounts', 'credits', 'acct_nope', '5', '--config', configFile);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/acct_nope/);
  });

  it('npm start shuts the server down when the process manager signals npm', async () => {
    // npm forwards SIGTERM to the script's shell; without `exec` the shell died and left the
    // server running, orphaned, holding the port and the database file's lease.
    const npm = spawn('npm', ['start', '--silent', '--', '--config', configFile, '--port', '0'], { cwd: root, env: { ...process.env, TOLLGATE_ADMIN_TOKEN: 'adm' } });
    let out = '';
    npm.stdout.on('data', (d: Buffer) => (out += d.toString()));
    let serverPid: number | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        npm.stdout.on('data', () => {
          const m = /"pid":(\d+)[^\n]*"msg":"tollgate listening"/.exec(out);
          if (m) {
            serverPid = Number(m[1]);
            resolve();
          }
        });
        npm.once('exit', (code) => reject(new Error(`npm start exited ${code}: ${out}`)));
      });
      npm.kill('SIGTERM');
      expect(await new Promise((r) => npm.once('exit', r))).toBe(0);
      expect(out).toMatch(/"msg":"shutting down"/);
    } finally {
      // An orphaned server would outlive the test: stop it by its own pid.
      if (serverPid !== undefined) {
        try {
          process.kill(serverPid, 'SIGKILL');
        } catch {
          // Already gone, as it should be.
        }
      }
    }
  });

  it('usage reports every day of an account, however many (not the newest 1,000 or 10,000 rows)', async () => {
    const account = JSON.parse((await tollgate('accounts', 'create', '--json', '--config', configFile)).stdout).id as string;
    // 10,002 days of one record each, more (day, model, surface) rows than one ledger query returns,
    // and a second model on 1990-01-03, whose two rows the first 10,000 rows cut apart.
    const storage = openSqliteStorage(`sqlite:${join(dir, 'db/tollgate.db')}`);
    try {
      const first = Date.parse('1990-01-01T12:00:00.000Z');
      const record = (i: number, model: string) => ({
        requestId: `r${i}${model}`, accountId: account, keyId: null, model, surface: 'api' as const, promptTokens: 1,
        outputTokens: 1, credits: 1, status: 'ok' as const, httpStatus: 200, createdAt: new Date(first + i * 86_400_000).toISOString(), provider: 'openai',
      });
      await Promise.all([
        ...Array.from({ length: 10_002 }, (_, i) => storage.ledger.append(record(i, 'gpt-4o-mini'))),
        storage.ledger.append(record(2, 'text-embedding-3-small')),
      ]);
    } finally {
      await storage.close();
    }
    const rows = JSON.parse((await tollgate('usage', account, '--json', '--config', configFile)).stdout) as { day: string; model: string; credits: number }[];
    expect(rows).toHaveLength(10_003);
    expect(new Set(rows.map((r) => `${r.day} ${r.model}`)).size).toBe(10_003);
    expect(rows.at(-1)?.day).toBe('1990-01-01');
    expect(rows.reduce((sum, r) => sum + r.credits, 0)).toBe(10_003);
    const text = await tollgate('usage', account, '--config', configFile);
    expect(text.stdout.trim().split('\n')).toHaveLength(10_004);
    expect(text.stdout.trim().split('\n').at(-1)).toMatch(/^total\s+10003 req\s+10003 credits$/);

    // Every record, more than one page of the store's answer (10,000), newest first, once each.
    const records = JSON.parse((await tollgate('usage', account, '--records', '--json', '--config', configFile)).stdout) as { requestId: string; createdAt: string }[];
    expect(records).toHaveLength(10_003);
    expect(new Set(records.map((r) => r.requestId)).size).toBe(10_003);
    expect(records.map((r) => r.createdAt)).toEqual(records.map((r) => r.createdAt).sort().reverse());
    const csv = (await tollgate('usage', account, '--records', '--csv', '--from', '1990-01-02', '--to', '1990-01-04', '--config', configFile)).stdout;
    expect(csv.split('\r\n')).toEqual([
      'createdAt,requestId,accountId,keyId,model,surface,promptTokens,outputTokens,credits,status,httpStatus,provider',
      `1990-01-03T12:00:00.000Z,r2text-embedding-3-small,${account},,text-embedding-3-small,api,1,1,1,ok,200,openai`,
      `1990-01-03T12:00:00.000Z,r2gpt-4o-mini,${account},,gpt-4o-mini,api,1,1,1,ok,200,openai`,
      `1990-01-02T12:00:00.000Z,r1gpt-4o-mini,${account},,gpt-4o-mini,api,1,1,1,ok,200,openai`,
      '',
    ]);
    const daily = (await tollgate('usage', account, '--csv', '--from', '1990-01-03', '--to', '1990-01-04', '--config', configFile)).stdout;
    expect(daily).toBe(
      'day,accountId,model,surface,requests,promptTokens,outputTokens,credits\r\n' +
        `1990-01-03,${account},gpt-4o-mini,api,1,1,1,1\r\n1990-01-03,${account},text-embedding-3-small,api,1,1,1,1\r\n`,
    );
    expect(JSON.parse((await tollgate('usage', account, '--records', '--json', '--from', '2999-01-01', '--config', configFile)).stdout)).toEqual([]);
    expect((await tollgate('usage', account, '--records', '--from', '2999-01-01', '--config', configFile)).stdout).toBe(`no requests recorded for ${account} in the range\n`);
  });

  it("accounts show counts today's usage only, not records dated after today (as the admin API's account view)", async () => {
    const account = JSON.parse((await tollgate('accounts', 'create', '--json', '--config', configFile)).stdout).id as string;
    const storage = openSqliteStorage(`sqlite:${join(dir, 'db/tollgate.db')}`);
    const now = Date.now();
    try {
      // A record of today, and one at the next UTC midnight: another instance whose clock is a
      // moment ahead of this host's wrote it, or a request admitted after this command read the time.
      const record = (id: string, at: number, credits: number) => ({
        requestId: id, accountId: account, keyId: null, model: 'gpt-4o-mini', surface: 'api' as const, promptTokens: 1,
        outputTokens: 1, credits, status: 'ok' as const, httpStatus: 200, createdAt: new Date(at).toISOString(), provider: 'openai',
      });
      const tomorrow = Date.parse(new Date(now + 86_400_000).toISOString().slice(0, 10));
      await Promise.all([storage.ledger.append(record('today', now, 5)), storage.ledger.append(record('tomorrow', tomorrow, 7))]);
    } finally {
      await storage.close();
    }
    const shown = JSON.parse((await tollgate('accounts', 'show', account, '--json', '--config', configFile)).stdout);
    expect(shown.usage).toMatchObject({ day: new Date(now).toISOString().slice(0, 10), credits: 5, requests: 1 });
  });

  it('lists models with prices in credits', async () => {
    const res = await tollgate('models', '--json', '--config', configFile);
    expect(JSON.parse(res.stdout)).toEqual([
      { id: 'gpt-4o-mini', type: 'chat', provider: 'openai', pro: false, price: { input_per_1m_tokens: 300_000, output_per_1m_tokens: 1_200_000 } },
    ]);
    // For a person: credits with separators, not JSON.
    expect((await tollgate('models', '--config', configFile)).stdout).toMatch(/^gpt-4o-mini +chat +openai +in 300,000 · out 1,200,000 per 1M tokens\n$/);
  });

  it('explains usage mistakes with exit 2 and unknown accounts with exit 1', async () => {
    const none = await tollgate();
    expect(none.code).toBe(2);
    expect(none.stdout).toMatch(/Usage: tollgate/);
    const typo = await tollgate('acounts', 'create');
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/unknown command/);
    const missing = await tollgate('keys', 'create', 'acct_nope', '--config', configFile);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/No account 'acct_nope'/);
    // Dates and emails are checked as the admin API checks them: a usage message, not a stack trace.
    for (const bad of ['garbage', '2026-02-30', '2026-11-25T10:00:00', '0000-12-31']) {
      const r = await tollgate('usage', 'acct_any', '--from', bad, '--config', configFile);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--from: /);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    const backwards = await tollgate('usage', 'acct_any', '--from', '2026-12-06', '--to', '2026-12-01', '--config', configFile);
    expect(backwards.code).toBe(2);
    expect(backwards.stderr).toMatch(/--to \(2026-12-01\) must come after --from \(2026-12-06\): --to is exclusive/);
    // Another command's option is refused, not ignored (`accounts list --plan team` listed every
    // account, free ones too, before --plan was one of its options), and the help shown is the command's own.
    const foreign = await tollgate('accounts', 'list', '--name', 'team', '--config', configFile);
    expect(foreign.code).toBe(2);
    expect(foreign.stdout).toBe('');
    expect(foreign.stderr).toMatch(/^error: --name is not an option of 'accounts list'\n\nUsage: tollgate accounts list \[--email E\]/);
    expect(foreign.stderr).toContain('the next page: --before <last id>');
    expect(foreign.stderr).not.toContain('keys create');
    for (const [argv, option] of [[['keys', 'list', 'acct_x', '--plan', 'y'], '--plan'], [['models', '--port', '1'], '--port'], [['usage', 'acct_x', '--limit', '5'], '--limit'], [['config', 'check', configFile, '--json'], '--json']] as const) {
      const r = await tollgate(...argv, '--config', configFile);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.stderr).toContain(`error: ${option} is not an option of`);
    }
    const both = await tollgate('usage', 'acct_any', '--csv', '--json', '--config', configFile);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--csv and --json: choose one/);
    const email = await tollgate('accounts', 'create', '--email', 'not-an-email', '--config', configFile);
    expect(email.code).toBe(2);
    expect(email.stderr).toMatch(/--email: not an email address/);
    // A word too many, and a port that is not a number (Number('') is 0: a random port).
    const extra = await tollgate('keys', 'revoke', 'key_a', 'key_b', '--config', configFile);
    expect(extra.code).toBe(2);
    expect(extra.stderr).toMatch(/unexpected argument 'key_b'/);
    for (const port of ['', '8080x', '-1', '1e3']) {
      const r = await tollgate('serve', '--config', configFile, `--port=${port}`);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--port must be 0-65535/);
    }
  });

  it('creates an account with a web password read from stdin (never from argv), which signs in to the web app', async () => {
    const made = await tollgateWithInput('cli password 1\n', 'accounts', 'create', '--email', 'cli-web@example.com', '--password-stdin', '--json', '--config', configFile);
    expect(made.code).toBe(0);
    expect(JSON.parse(made.stdout)).toMatchObject({ email: 'cli-web@example.com' });
    const short = await tollgateWithInput('short\n', 'accounts', 'create', '--email', 'short@example.com', '--password-stdin', '--config', configFile);
    expect(short.code).toBe(2);
    expect(short.stderr).toMatch(/--password-stdin: the password needs at least 8 characters/);
    const common = await tollgateWithInput('Password123\n', 'accounts', 'create', '--email', 'common@example.com', '--password-stdin', '--config', configFile);
    expect(common.code).toBe(2);
    expect(common.stderr).toMatch(/--password-stdin: the password is too easy to guess: it is one of the most common passwords/);
    // The account's own email, or the name before its @, as the admin API and sign-up refuse it.
    const own = await tollgateWithInput('own-address\n', 'accounts', 'create', '--email', 'own-address@example.com', '--password-stdin', '--config', configFile);
    expect(own.code).toBe(2);
    expect(own.stderr).toMatch(/--password-stdin: the password is too easy to guess: it is the email address it signs in with/);
    const noEmail = await tollgateWithInput('long enough\n', 'accounts', 'create', '--password-stdin', '--config', configFile);
    expect(noEmail.code).toBe(2);
    expect(noEmail.stderr).toMatch(/--password-stdin needs --email/);
    // A line ended CRLF (a file written on Windows): the password is the line without its \r.
    expect((await tollgateWithInput('cli password 3\r\n', 'accounts', 'create', '--email', 'cli-crlf@example.com', '--password-stdin', '--config', configFile)).code).toBe(0);
    const server = await serve();
    try {
      const session = await fetch(`${server.url}/app/api/session`);
      const csrf = /tg_csrf=([^;]+)/.exec(session.headers.get('set-cookie') ?? '')![1]!;
      const signIn = (password: string, email = 'cli-web@example.com') =>
        fetch(`${server.url}/app/api/signin`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', cookie: `tg_csrf=${csrf}`, 'x-csrf-token': csrf },
          body: JSON.stringify({ email, password }),
        });
      expect((await signIn('cli password 1')).status).toBe(200);
      expect((await signIn('cli password 2')).status).toBe(401);
      expect((await signIn('cli password 3', 'cli-crlf@example.com')).status).toBe(200);
    } finally {
      await server.stop();
    }
  }, 60_000);

  it('refuses a database file it cannot open with exit 1 and a one-line reason naming it', async () => {
    // A directory where the file should be (as root, the one way to make SQLite refuse a path;
    // a read-only file as another user fails the same way).
    const file = join(dir, 'not-a-file.yaml');
    writeFileSync(file, `storage: { url: "sqlite:${dir}" }\n`);
    for (const args of [['serve', '--port', '0'], ['accounts', 'create']]) {
      const res = await tollgate(...args, '--config', file);
      expect(res.code).toBe(1);
      expect(res.stderr.trim().split('\n')).toEqual([`cannot open the SQLite database ${dir}: unable to open database file`]);
    }
  });

  it('refuses a database a newer Tollgate wrote with exit 1 and one line, not a stack trace', async () => {
    // What an operator meets after rolling back a build, or when one old instance restarts
    // after a new one migrated the shared database (docs/operations.md: "says so in one line").
    const file = join(dir, 'too-new.yaml');
    const db = join(dir, 'too-new/tollgate.db');
    writeFileSync(file, `storage: { url: "sqlite:${db}" }\n`);
    await openSqliteStorage(`sqlite:${db}`).close();
    const raw = new Database(db);
    const { v } = raw.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number };
    raw.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(v + 1, 'from the future', new Date().toISOString());
    raw.close();
    for (const args of [['serve', '--port', '0'], ['accounts', 'list']]) {
      const res = await tollgate(...args, '--config', file);
      expect(res.code).toBe(1);
      expect(res.stderr.trim().split('\n')).toEqual([
        `database schema version ${v + 1} is newer than this Tollgate knows (${v}); upgrade Tollgate, or point storage.url at another database`,
      ]);
    }
  });

  it("sets a key's own credit limit at creation and with keys limit, and removes it; a bad one is a usage error", async () => {
    const { id } = JSON.parse((await tollgate('accounts', 'create', '--json', '--config', configFile)).stdout);
    const created = JSON.parse((await tollgate('keys', 'create', id, '--credits', '5000', '--window', 'month', '--json', '--config', configFile)).stdout);
    expect(created.limit).toEqual({ credits: 5000, window: 'month' });
    const set = await tollgate('keys', 'limit', created.key, '250', '--config', configFile);
    expect(set.code).toBe(0);
    expect(set.stdout.trim()).toBe(`${created.id}: at most 250 credits per UTC day`);
    expect((await tollgate('keys', 'list', id, '--config', configFile)).stdout).toContain('limit 250 per UTC day');
    const removed = await tollgate('keys', 'limit', created.id, 'none', '--json', '--config', configFile);
    expect(JSON.parse(removed.stdout).limit).toBeNull();
    for (const args of [['keys', 'limit', created.id, '0'], ['keys', 'limit', created.id, '10', '--window', 'week'], ['keys', 'limit', created.id, 'none', '--window', 'day'], ['keys', 'create', id, '--window', 'day'], ['keys', 'limit', created.id]]) {
      const res = await tollgate(...args, '--config', configFile);
      expect(res.code, args.join(' ')).toBe(2);
    }
  });

  it('makes a key with an expiry and models, changes them with keys update, and refuses bad ones as usage errors', async () => {
    const { id } = JSON.parse((await tollgate('accounts', 'create', '--json', '--config', configFile)).stdout);
    const created = JSON.parse((await tollgate('keys', 'create', id, '--expires', '30d', '--models', 'gpt-4o-mini, gpt-4o-mini', '--json', '--config', configFile)).stdout);
    expect(created.models).toEqual(['gpt-4o-mini']);
    const days = (Date.parse(created.expiresAt) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThanOrEqual(30);
    const listed = (await tollgate('keys', 'list', id, '--config', configFile)).stdout;
    expect(listed).toContain(`expires ${created.expiresAt}  models gpt-4o-mini`);

    const dated = await tollgate('keys', 'update', created.id, '--expires', '2099-01-04', '--models', 'all', '--config', configFile);
    expect(dated.code).toBe(0);
    expect(dated.stdout.trim()).toBe(`${created.id}:  expires 2099-01-04T00:00:00.000Z`);
    const never = JSON.parse((await tollgate('keys', 'update', created.key, '--expires', 'never', '--json', '--config', configFile)).stdout);
    expect(never).toMatchObject({ expiresAt: null, models: null });

    const unknown = await tollgate('keys', 'create', id, '--models', 'gpt-9', '--config', configFile);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("no model 'gpt-9'");
    const past = await tollgate('keys', 'update', created.id, '--expires', '2020-01-01', '--config', configFile);
    expect(past.code).toBe(1);
    expect(past.stderr).toContain('must be in the future');
    for (const args of [['keys', 'update', created.id], ['keys', 'update', created.id, '--expires', 'tomorrow'], ['keys', 'create', id, '--expires', 'never'], ['keys', 'update', created.id, '--models', ',']]) {
      const res = await tollgate(...args, '--config', configFile);
      expect(res.code, args.join(' ')).toBe(2);
    }
    // keys create refuses never and all (a new key has neither anyway): its usage error must not
    // offer them as the way out.
    const badCreate = await tollgate('keys', 'create', id, '--expires', 'tomorrow', '--config', configFile);
    expect(badCreate.stderr.split('\n')[0]).toBe("error: --expires: an ISO instant (2027-01-04T00:00:00Z), a date, 30d or 12h, not 'tomorrow'");
    const noModels = await tollgate('keys', 'create', id, '--models', ',', '--config', configFile);
    expect(noModels.stderr.split('\n')[0]).toBe('error: --models: 1 to 100 model ids separated by commas');
    const badUpdate = await tollgate('keys', 'update', created.id, '--expires', 'tomorrow', '--config', configFile);
    expect(badUpdate.stderr.split('\n')[0]).toBe("error: --expires: an ISO instant (2027-01-04T00:00:00Z), a date, 30d, 12h or never, not 'tomorrow'");
    await tollgate('keys', 'revoke', created.id, '--config', configFile);
    const revoked = await tollgate('keys', 'update', created.id, '--expires', '1d', '--config', configFile);
    expect(revoked.code).toBe(1);
    expect(revoked.stderr).toMatch(/was revoked at .*: a revoked key does not change/);
  });

  it("keys limit on a revoked key says its limit did not change, with exit 1 (a revoked key keeps the limit it had)", async () => {
    const { id } = JSON.parse((await tollgate('accounts', 'create', '--json', '--config', configFile)).stdout);
    const created = JSON.parse((await tollgate('keys', 'create', id, '--credits', '900', '--json', '--config', configFile)).stdout);
    const revoked = await tollgate('keys', 'revoke', created.id, '--config', configFile);
    expect(revoked.code).toBe(0);
    for (const given of ['none', '50']) {
      const res = await tollgate('keys', 'limit', created.id, given, '--config', configFile);
      expect(res.code, given).toBe(1);
      expect(res.stdout).toBe('');
      expect(res.stderr.trim()).toMatch(new RegExp(`^error: ${created.id} was revoked at \\S+: a revoked key's limit does not change \\(it keeps at most 900 credits per UTC day\\)$`));
    }
    // Asking for the limit it has is no change: answered as done.
    const same = await tollgate('keys', 'limit', created.id, '900', '--config', configFile);
    expect(same.code).toBe(0);
    expect(same.stdout.trim()).toBe(`${created.id}: at most 900 credits per UTC day`);
  });

  it('revokes a key by its secret, as found leaked, without knowing its id or account', async () => {
    const { id } = JSON.parse((await tollgate('accounts', 'create', '--json', '--config', configFile)).stdout);
    const created = JSON.parse((await tollgate('keys', 'create', id, '--json', '--config', configFile)).stdout);
    const revoked = await tollgate('keys', 'revoke', created.key, '--config', configFile);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toMatch(new RegExp(`^revoked ${created.id} at `));
    const listed = JSON.parse((await tollgate('keys', 'list', id, '--json', '--config', configFile)).stdout);
    expect(listed[0].revokedAt).not.toBeNull();
    // An unknown secret is not echoed back in full: the refusal names its display prefix.
    const unknown = `tg-${'Z'.repeat(43)}`;
    const res = await tollgate('keys', 'revoke', unknown, '--config', configFile);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("No key 'tg-ZZZZ…'");
    expect(res.stderr).not.toContain(unknown);
  });

  it('says where a relative SQLite file is, when a command makes it and when the server starts on it', async () => {
    // The default storage.url is relative to the working directory: the CLI run from another
    // directory than the server's made a new, empty database there without a word, and a key
    // created in it answered 401 at the server.
    const cwd = mkdtempSync(join(tmpdir(), 'tollgate-cwd-'));
    const file = join(cwd, 'relative.yaml');
    writeFileSync(file, 'server: { port: 0 }\nstorage: { url: "sqlite:./data/tollgate.db" }\n');
    const inCwd = async (...args: string[]) => {
      try {
        return { code: 0, ...(await run('node', [bin, ...args, '--config', file], { cwd, env: { ...process.env, TOLLGATE_CONFIG: '' } })) };
      } catch (err) {
        return err as { code: number; stdout: string; stderr: string };
      }
    };
    const absolute = join(cwd, 'data/tollgate.db');
    const first = await inCwd('accounts', 'show', 'acct_nobody');
    expect(first.code).toBe(1);
    expect(first.stderr).toContain(`note: no database at ${absolute} (storage.url sqlite:./data/tollgate.db, relative to the working directory): made a new, empty one`);
    const again = await inCwd('accounts', 'create');
    expect(again.code).toBe(0);
    expect(again.stderr).toBe('');

    const server = spawn('node', [bin, 'serve', '--config', file], { cwd, env: { ...process.env, TOLLGATE_CONFIG: '' } });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        server.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const l = out.split('\n').find((x) => x.includes('"tollgate listening"'));
          if (l) resolve(l);
        });
        server.once('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)));
      });
      expect(JSON.parse(line).storage).toBe(`sqlite:${absolute}`);
    } finally {
      server.kill('SIGTERM');
      await new Promise((r) => server.once('exit', r));
    }
  });

  it('refuses a port in use with exit 1 and a one-line reason', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    try {
      const res = await tollgate('serve', '--config', configFile, '--port', String((taken.address() as AddressInfo).port));
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/^error: listen EADDRINUSE/m);
      expect(res.stderr).not.toMatch(/\n\s+at /);
    } finally {
      taken.close();
    }
  });
});
