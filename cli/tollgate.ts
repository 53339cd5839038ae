#!/usr/bin/env -S node --max-semi-space-size=32 --min-semi-space-size=32 --no-memory-reducer --no-allocation-site-pretenuring --heap-growing-percent=50
// The `tollgate` command: thin wrappers over the same services the admin API uses (SPEC §9).
// The shebang's flags are the ones `npm start` runs with (package.json; bench/lib/tollgate.mjs reads
// them from there): a young generation of a fixed 32 MB per semi-space, so a busy server's
// short-lived request objects die young instead of being promoted and collected by full GCs, and
// the space is not shrunk while idle only to be regrown, scavenge after scavenge, when load
// resumes — both were latency spikes at half load (bench/README.md).
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, configSource, loadConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { startGateway } from '../src/main.js';
import { providerTypes } from '../src/providers/registry.js';
import { buildServices, type Services } from '../src/services.js';
import { GatewayError } from '../src/errors/gateway-error.js';
import { renderMessage } from '../src/errors/http.js';
import { utcDay } from '../src/lib/clock.js';
import { emailAddress } from '../src/lib/email.js';
import { hashPassword } from '../src/core/passwords.js';
import { idempotencyKeyPattern, keyExpiry, keyLimit, keyModels, newPassword, suspensionReason } from '../src/core/requests.js';
import { weakPassword, weakPasswordMessage } from '../src/core/password-policy.js';
import { checkKeySettings } from '../src/core/key-settings.js';
import { closeAccount } from '../src/core/account-close.js';
import { SessionEpochs, Sessions, sessionSecretOf } from '../src/core/sessions.js';
import { PasswordResets } from '../src/core/password-reset.js';
import { Pricing } from '../src/core/pricing.js';
import { keyLimitsUsed } from '../src/core/plan-meter.js';
import { RedisCounterStore } from '../src/storage/redis/counters.js';
import { SqliteCounterStore } from '../src/storage/sqlite/counters.js';
import { DatabaseOpenError, sqlitePath } from '../src/storage/sqlite/index.js';
import { DatabaseInUseError } from '../src/storage/sqlite/lease.js';
import { SchemaTooNewError } from '../src/storage/migration.js';
import { BackupTargetError, backupDatabase } from '../src/storage/sqlite/backup.js';
import { MAX_QUERY_LIMIT, canonicalInstant, emptyRange } from '../src/storage/time.js';
import { allDaily } from '../src/storage/all-daily.js';
import type { KeyLimit, KeyPatch, Ledger, UsageQuery } from '../src/storage/ports.js';
import { accountSummaryView, accountView, dailyUsageCsv, dailyUsageCsvHeader, keyView, summariseDaily, usageRecordCsv, usageRecordCsvHeader, usageRecordView } from '../src/http/views.js';

const USAGE = `Usage: tollgate <command> [options]

  serve [--config F] [--port N]                      run the gateway
  accounts create [--plan P] [--email E] [--password-stdin] [--json]
                                                     create an account (a password read from stdin
                                                     lets it sign in to the web app)
  accounts show ACCOUNT [--json]                     an account with today's usage
  accounts update ACCOUNT [--plan P] [--payment-method] [--email E] [--json]
                                                     change the plan; mark a payment method (free → paid);
                                                     change the sign-in email
  accounts credits ACCOUNT AMOUNT [--idempotency-key K] [--json]
                                                     top up the prepaid balance by AMOUNT credits;
                                                     with K, at most once per K and account in 24 h
                                                     (embedded limiter: not beside a running server)
  accounts debit ACCOUNT AMOUNT [--idempotency-key K] [--json]
                                                     take AMOUNT credits back from the balance (a
                                                     correction, a refund), never below zero
                                                     (embedded limiter: not beside a running server)
  accounts top-ups ACCOUNT [--limit N] [--before TOPUP] [--json]
                                                     the balance's history: each top-up, newest
                                                     first (100 unless --limit, at most 1000); the
                                                     next page: --before <last id>
  accounts suspend ACCOUNT [--reason R] [--json]     refuse the account's keys and web sign-in (403
                                                     account_suspended); R is for operators only
  accounts unsuspend ACCOUNT [--json]                lift a suspension
  accounts close ACCOUNT [--json]                    close an account: its email, password and keys
                                                     go, its usage and balance history stay
  accounts reset-link ACCOUNT [--json]               a one-time link (24 h) on which the account's
                                                     owner sets a web password
  accounts list [--email E] [--suspended] [--plan P] [--limit N] [--before ACCOUNT] [--json]
                                                     accounts, newest first (100 unless --limit, at
                                                     most 1000); the next page: --before <last id>
  keys create ACCOUNT [--name N] [--credits C [--window W]] [--expires WHEN] [--models M,…] [--json]
                                                     create an API key (the secret is shown once);
                                                     --credits: its own limit, C credits per W
                                                     (day, month or lifetime; default day);
                                                     --expires: an ISO instant, a date (its UTC
                                                     midnight) or a time from now (30d, 12h);
                                                     --models: the only models it may call
  keys list ACCOUNT [--json]                         an account's keys (never their secrets)
  keys limit KEY (CREDITS [--window W] | none) [--json]
                                                     set or remove a key's own credit limit (W as
                                                     for keys create: default day, whatever window
                                                     it had); a revoked key's limit does not change
  keys update KEY [--expires WHEN|never] [--models M,…|all] [--json]
                                                     change a key's expiry or models
  keys revoke KEY                                    revoke a key: its id (key_…) or its secret (tg-…)
  usage ACCOUNT [--from DATE] [--to DATE] [--records] [--csv | --json]
                                                     an account's usage by day and model; with
                                                     --records, every request of the range (newest
                                                     first, however many); --csv for spreadsheets
  models [--json]                                    the model catalog with prices in credits
  backup FILE [--json]                               copy the SQLite database to FILE (a new file),
                                                     safely beside a running server
  config check [F]                                   validate a config file (default: the one
                                                     the other commands read, below)

Every command takes --config F (default: $TOLLGATE_CONFIG, else the built-in default).`;

const options = {
  config: { type: 'string' },
  port: { type: 'string' },
  plan: { type: 'string' },
  email: { type: 'string' },
  name: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  reason: { type: 'string' },
  limit: { type: 'string' },
  credits: { type: 'string' },
  'idempotency-key': { type: 'string' },
  expires: { type: 'string' },
  models: { type: 'string' },
  window: { type: 'string' },
  before: { type: 'string' },
  suspended: { type: 'boolean', default: false },
  'payment-method': { type: 'boolean', default: false },
  'password-stdin': { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  csv: { type: 'boolean', default: false },
  records: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>['values'];

class UsageError extends Error {}

/**
 * Each command: how many words it takes, its name included, and the options it reads besides
 * --config and --help. Another command's option is refused, not ignored: `accounts list --plan team`
 * listed every account, free ones included, and exited 0.
 */
const COMMANDS: Record<string, { words: number; options: readonly (keyof typeof options)[] }> = {
  serve: { words: 1, options: ['port'] },
  'accounts create': { words: 2, options: ['plan', 'email', 'password-stdin', 'json'] },
  'accounts show': { words: 3, options: ['json'] },
  'accounts update': { words: 3, options: ['plan', 'payment-method', 'email', 'json'] },
  'accounts credits': { words: 4, options: ['idempotency-key', 'json'] },
  'accounts debit': { words: 4, options: ['idempotency-key', 'json'] },
  'accounts top-ups': { words: 3, options: ['limit', 'before', 'json'] },
  'accounts suspend': { words: 3, options: ['reason', 'json'] },
  'accounts unsuspend': { words: 3, options: ['json'] },
  'accounts close': { words: 3, options: ['json'] },
  'accounts reset-link': { words: 3, options: ['json'] },
  'accounts list': { words: 2, options: ['email', 'suspended', 'plan', 'limit', 'before', 'json'] },
  'keys create': { words: 3, options: ['name', 'credits', 'window', 'expires', 'models', 'json'] },
  'keys list': { words: 3, options: ['json'] },
  'keys revoke': { words: 3, options: ['json'] },
  'keys limit': { words: 4, options: ['window', 'json'] },
  'keys update': { words: 3, options: ['expires', 'models', 'json'] },
  usage: { words: 2, options: ['from', 'to', 'records', 'csv', 'json'] },
  models: { words: 1, options: ['json'] },
  'config check': { words: 3, options: [] },
  backup: { words: 2, options: ['json'] },
};

/** The lines of USAGE that describe `command` (its synopsis and what follows it), or all of USAGE. */
function usageOf(command: string | undefined): string {
  const lines = USAGE.split('\n');
  const first = command === undefined ? -1 : lines.findIndex((l) => l.startsWith(`  ${command} `) || l === `  ${command}`);
  if (first === -1) return USAGE;
  let last = first + 1;
  while (last < lines.length && /^ {6,}/.test(lines[last]!)) last++;
  return `Usage: tollgate ${lines.slice(first, last).map((l) => l.slice(2)).join('\n       ')}\n\nEvery command takes --config F; tollgate --help lists them all.`;
}

/** The command being run, for a usage error's message (the command's own lines of the help). */
let running: string | undefined;

/**
 * A model's prices in credits as a person reads them (`--json` keeps Pricing.describe's fields):
 * `in 300,000 · out 1,200,000 per 1M tokens`, `32,000 per image at 256x256, 36,000 at 512x512`.
 */
function priceText(price: Record<string, unknown>): string {
  const n = (v: unknown) => (typeof v === 'number' ? v.toLocaleString('en-US') : String(v));
  const perImage = price.per_image;
  if (perImage !== undefined) {
    if (typeof perImage === 'number') return `${n(perImage)} per image`;
    const sizes = Object.entries(perImage as Record<string, number>).map(([size, credits]) => `${n(credits)} at ${size}`);
    return `per image: ${sizes.join(', ')}`;
  }
  const names: Record<string, string> = {
    input_per_1m_tokens: 'in',
    cached_input_per_1m_tokens: 'cached in',
    output_per_1m_tokens: 'out',
    audio_input_per_1m_tokens: 'audio in',
    audio_output_per_1m_tokens: 'audio out',
  };
  const tokens = Object.entries(names).flatMap(([field, name]) => (price[field] === undefined ? [] : [`${name} ${n(price[field])}`]));
  const fee = price.per_request === undefined ? '' : ` + ${n(price.per_request)} per request`;
  return `${tokens.join(' · ')} per 1M tokens${fee}`;
}

/** A balance change as the history shows it: +500, -200. */
function signed(credits: number): string {
  return credits > 0 ? `+${credits}` : String(credits);
}

/**
 * The config a command runs with. `serve`, `config check` and `accounts reset-link` (which signs with
 * web.sessionSecret) need every secret; the other commands read the database and the limiter only,
 * so a secret left to an unset variable does not stop them.
 */
function config(values: Values, path?: string): Config {
  // Digits only: Number('') is 0, which would have listened on a random port.
  const port = values.port === undefined ? undefined : /^\d{1,5}$/.test(values.port) ? Number(values.port) : Number.NaN;
  if (port !== undefined && (!Number.isInteger(port) || port > 65_535)) throw new UsageError(`--port must be 0-65535, not '${values.port}'`);
  const secretsUnused = !['serve', 'config check', 'accounts reset-link'].includes(running ?? '');
  return loadConfig({ path: path ?? values.config, providerTypes, overrides: { port }, secretsUnused });
}

/** The SQLite file of `url` as an absolute path (`:memory:` as it is). */
function sqliteFile(url: string): string {
  const path = sqlitePath(url);
  return path === ':memory:' ? path : resolve(path);
}

async function withServices<T>(values: Values, fn: (s: Services) => Promise<T>): Promise<T> {
  const cfg = config(values);
  // The default storage.url is relative to the working directory: run from another directory than
  // the server's, a command made a new, empty database there without a word (a key created in it
  // answered 401 at the server). Still made — a first account may come before the first start —
  // but said, with the path.
  const url = cfg.storage.url;
  const file = url.startsWith('sqlite:') ? sqliteFile(url) : ':memory:';
  const made = file !== ':memory:' && !existsSync(file) ? file : undefined;
  const services = await buildServices(cfg);
  services.accounts.onRecordFailed = (err) =>
    process.stderr.write(`warning: the credits were added, but the balance history could not record them: ${err instanceof Error ? err.message : String(err)}\n`);
  if (made !== undefined) {
    const relative = isAbsolute(sqlitePath(url)) ? '' : ', relative to the working directory';
    process.stderr.write(
      `note: no database at ${made} (storage.url ${url}${relative}): made a new, empty one. A server keeps its own: run this where the server runs, with its --config.\n`,
    );
  }
  try {
    return await fn(services);
  } finally {
    // Counters first: the embedded limiter writes through the storage's connection.
    await services.counters.close();
    await services.storage.close();
  }
}

/**
 * The storage URL as the start line names it. node-postgres takes the password up to the last `@`
 * (an unencoded `p@ss` showed `ss` past a mask to the first one) and also from a `password=`
 * parameter, as libpq does: user, password and query are all left out.
 */
function storageForLog(url: string): string {
  // The file's absolute path: a relative one says nothing of where the data is (a process manager's
  // working directory).
  if (url.startsWith('sqlite:')) return `sqlite:${sqliteFile(url)}`;
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.username || u.password ? '…@' : ''}${u.host}${u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    return `${url.slice(0, url.indexOf(':') + 1)}//…`;
  }
}

function print(values: Values, json: unknown, text: string): void {
  process.stdout.write(values.json ? `${JSON.stringify(json, null, 2)}\n` : `${text}\n`);
}

/** Resolves once stdout took `text` (a pipe to `head` may close it early: then nothing more is written). */
function write(text: string): Promise<void> {
  return new Promise((done, fail) => process.stdout.write(text, (err) => (err ? fail(err) : done())));
}

/**
 * Every ledger record of the range, newest first, written page by page: a month of a busy account
 * is millions of records, which neither one answer of the store (10,000 at most) nor memory holds.
 */
async function writeRecords(ledger: Ledger, range: UsageQuery, values: Values): Promise<void> {
  let before: string | undefined;
  let written = 0;
  if (values.csv) await write(usageRecordCsvHeader);
  else if (values.json) await write('[');
  do {
    const page = await ledger.page({ ...range, limit: MAX_QUERY_LIMIT, ...(before !== undefined && { before }) });
    const text = page.records.map((r, i) => {
      if (values.csv) return usageRecordCsv(r);
      // One JSON array across the pages: a comma before every element but the first.
      if (values.json) return `${written + i === 0 ? '\n' : ',\n'}${JSON.stringify(usageRecordView(r))}`;
      return `${r.createdAt}  ${r.model.padEnd(28)} ${r.surface.padEnd(10)} ${String(r.promptTokens).padStart(8)} in ${String(r.outputTokens).padStart(8)} out ${String(r.credits).padStart(10)} credits  ${r.status} ${r.requestId}\n`;
    });
    if (text.length > 0) await write(text.join(''));
    written += text.length;
    before = page.next ?? undefined;
  } while (before !== undefined);
  if (values.json) await write(written === 0 ? ']\n' : '\n]\n');
  else if (!values.csv && written === 0) await write(`no requests recorded for ${range.accountId}${values.from || values.to ? ' in the range' : ''}\n`);
}

/** The password piped to --password-stdin: the first line, held to the sign-up rule (`email`: the account's). */
async function readPassword(email: string | undefined): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) text += String(chunk);
  const password = text.split(/\r?\n/)[0] ?? '';
  const checked = newPassword.safeParse(password);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    // A common password is refused for what it is (core/password-policy.ts), not for what it lacks.
    throw new UsageError(issue?.code === 'custom' ? `--password-stdin: the password is ${issue.message}` : `--password-stdin: the password needs ${issue?.message ?? 'a valid value'}`);
  }
  const why = weakPassword(password, email);
  if (why !== null) throw new UsageError(`--password-stdin: the password is ${weakPasswordMessage(why)}`);
  return password;
}

/**
 * --expires and --models as a key patch: WHEN is an ISO instant, a date (its UTC midnight), 30d / 12h
 * from now, or (`keys update` only: `change`) never. The usage errors offer never and all only where
 * they are accepted: keys create refuses them, and its error sent the operator round in a circle.
 */
function accessOf(values: Values, now: number, change: boolean): KeyPatch {
  const patch: KeyPatch = {};
  const when = values.expires;
  if (when !== undefined) {
    const span = /^(\d{1,5})([dh])$/.exec(when);
    const at = when === 'never' ? null : span ? new Date(now + Number(span[1]) * (span[2] === 'd' ? 86_400_000 : 3_600_000)).toISOString() : /^\d{4}-\d{2}-\d{2}$/.test(when) ? `${when}T00:00:00Z` : when;
    if (at !== null && !keyExpiry.safeParse(at).success) throw new UsageError(`--expires: an ISO instant (2027-01-04T00:00:00Z), a date, ${change ? '30d, 12h or never' : '30d or 12h'}, not '${when}'`);
    patch.expiresAt = at;
  }
  if (values.models !== undefined) {
    const list = values.models === 'all' ? null : values.models.split(',').map((m) => m.trim()).filter((m) => m !== '');
    if (list !== null && !keyModels.safeParse(list).success) throw new UsageError(`--models: 1 to 100 model ids separated by commas${change ? ', or all' : ''}`);
    patch.models = list;
  }
  return patch;
}

/** A key's expiry and models as `keys list` shows them ('' when it has neither). */
function accessLine(k: { expiresAt: string | null; models: readonly string[] | null }, now: number): string {
  const expiry = k.expiresAt === null ? '' : `  ${Date.parse(k.expiresAt) <= now ? 'expired' : 'expires'} ${k.expiresAt}`;
  return `${expiry}${k.models ? `  models ${k.models.join(',')}` : ''}`;
}

/** A key's own limit from the command line: whole credits (1 to 10^15) per day, month or lifetime. */
function keyLimitOf(credits: string, window = 'day'): KeyLimit {
  const parsed = keyLimit.safeParse({ credits: /^\d{1,16}$/.test(credits) ? Number(credits) : Number.NaN, window });
  if (!parsed.success || parsed.data === null) {
    throw new UsageError(`a key limit is a whole number of credits (1 to 10^15) per day, month or lifetime, not '${credits}'${window === 'day' ? '' : ` per '${window}'`}`);
  }
  return parsed.data;
}

const limitPer = (window: KeyLimit['window']) => (window === 'lifetime' ? 'in all' : `per UTC ${window}`);

function arg(positionals: string[], i: number, what: string): string {
  const v = positionals[i];
  if (v === undefined) throw new UsageError(`missing ${what}`);
  return v;
}

async function run(argv: string[]): Promise<number> {
  const { values, positionals, tokens } = parseArgs({ args: argv, options, allowPositionals: true, strict: true, tokens: true });
  const [command, sub] = positionals;
  if (values.help || command === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined && !values.help ? 2 : 0;
  }
  const name = `${command}${sub && ['accounts', 'keys', 'config'].includes(command) ? ` ${sub}` : ''}`;
  const known = COMMANDS[name];
  if (known) {
    running = name;
    // A word too many is a mistake (`keys revoke KEY1 KEY2` would revoke only the first): say so.
    if (positionals.length > known.words) throw new UsageError(`unexpected argument '${positionals[known.words]}'`);
    for (const t of tokens) {
      if (t.kind !== 'option' || t.name === 'config' || t.name === 'help' || (known.options as readonly string[]).includes(t.name)) continue;
      throw new UsageError(`${t.rawName} is not an option of '${name}'`);
    }
  }
  switch (name) {
    case 'serve': {
      // A server that lost its database file to another closes itself; the process then exits with 1.
      const gw = await startGateway({ config: config(values), onFatal: () => void (process.exitCode = 1) });
      // Before anything else is awaited: the Redis checks below take round trips after the server
      // listens, and a signal meanwhile killed the process instead of closing it.
      // Every signal of the stop is handled, not just the first: with `once`, the second restored
      // the default action and killed the process mid-stop, cutting the streams in flight and their
      // records. Ctrl-C on `npm start` always sends two — the terminal signals npm and the server,
      // and npm forwards its copy — as systemd's stop does to every process of the unit. The stop
      // is under way; a repeat changes nothing (kill -9 cuts it short).
      let stopping = false;
      const stop = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        const delayMs = gw.config.server.shutdownDelayMs;
        gw.logger.info({ signal, ...(delayMs > 0 && { delayMs }) }, 'shutting down');
        // /readyz says 503 while requests are still served, until the load balancer has looked.
        await gw.drain();
        await gw.close();
        process.exit(0);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
      gw.logger.info({ url: gw.url, storage: storageForLog(gw.config.storage.url) }, 'tollgate listening');
      // A config file reads no variable it does not name: TOLLGATE_ADMIN_TOKEN set in the shell is
      // not enough there, which is what the operator who sees this most likely needs to hear.
      if (gw.config.admin.token === '') {
        gw.logger.warn('admin.token is empty: the admin API refuses every call (the built-in config reads TOLLGATE_ADMIN_TOKEN; a config file needs admin: { token: "${TOLLGATE_ADMIN_TOKEN}" })');
      }
      if (gw.counters instanceof RedisCounterStore) {
        const tooOld = await gw.counters.versionProblem();
        if (tooOld) {
          gw.logger.error(tooOld);
          await gw.close();
          return 1;
        }
        const warning = await gw.counters.persistenceWarning();
        if (warning) gw.logger.warn(warning);
      }
      return -1; // keep running
    }
    case 'accounts create': {
      // The admin API's rules for emails and passwords, so the CLI makes no account the API would refuse.
      if (values.email !== undefined && !emailAddress.safeParse(values.email).success) throw new UsageError(`--email: not an email address: '${values.email}'`);
      // From stdin, not an argument: a password in argv is in the shell's history and in `ps`.
      const password = values['password-stdin'] ? await readPassword(values.email) : undefined;
      if (password !== undefined && values.email === undefined) throw new UsageError('--password-stdin needs --email: the web app signs in with it');
      return withServices(values, async (s) => {
        const a = await s.accounts.create({
          email: values.email ?? null,
          ...(values.plan !== undefined && { plan: values.plan }),
          ...(password !== undefined && { passwordHash: await hashPassword(password) }),
        });
        print(values, accountView(a), `created account ${a.id} (plan ${a.plan})`);
        return 0;
      });
    }
    case 'accounts show':
      return withServices(values, async (s) => {
        const a = await s.accounts.get(arg(positionals, 2, 'ACCOUNT'));
        const now = s.clock.now();
        const day = utcDay(now);
        // Up to the next UTC midnight, as the admin API's account view: without it a record dated
        // after today (another instance's clock a moment ahead) was summed into "today".
        const today = summariseDaily(await s.storage.ledger.daily({ accountId: a.id, from: day, to: utcDay(now + 86_400_000) }));
        const text = [
          `${a.id}  plan ${a.plan}  balance ${a.balance}  today ${today.credits} credits in ${today.requests} requests`,
          `email ${a.email ?? '-'}  payment method ${a.hasPaymentMethod ? 'yes' : 'no'}  created ${a.createdAt}`,
          ...(a.suspendedAt === null ? [] : [`suspended ${a.suspendedAt}${a.suspendedReason ? `: ${a.suspendedReason}` : ''}`]),
          ...today.byModel.map((m) => `  ${m.model.padEnd(28)} ${String(m.requests).padStart(6)} req ${String(m.credits).padStart(10)} credits`),
        ];
        print(values, { ...accountView(a), usage: { day, ...today } }, text.join('\n'));
        return 0;
      });
    case 'accounts update': {
      if (values.plan === undefined && !values['payment-method'] && values.email === undefined) throw new UsageError('accounts update needs --plan P, --payment-method or --email E');
      if (values.email !== undefined && !emailAddress.safeParse(values.email).success) throw new UsageError(`--email: not an email address: '${values.email}'`);
      return withServices(values, async (s) => {
        const a = await s.accounts.update(arg(positionals, 2, 'ACCOUNT'), {
          ...(values.plan !== undefined && { plan: values.plan }),
          ...(values['payment-method'] && { paymentMethod: true }),
          ...(values.email !== undefined && { email: values.email }),
        });
        print(values, accountView(a), `${a.id}  plan ${a.plan}  payment method ${a.hasPaymentMethod ? 'yes' : 'no'}  balance ${a.balance}  email ${a.email ?? '-'}`);
        return 0;
      });
    }
    case 'accounts credits':
    case 'accounts debit': {
      const id = arg(positionals, 2, 'ACCOUNT');
      const text = arg(positionals, 3, 'AMOUNT');
      // The admin API's bounds: a whole number of credits, 1 to 10^15 (a debit: taken away).
      const size = /^[1-9]\d{0,15}$/.test(text) ? Number(text) : Number.NaN;
      if (!(size <= 1e15)) throw new UsageError(`AMOUNT must be a whole number of credits from 1 to 1000000000000000, not '${text}'`);
      const amount = name === 'accounts debit' ? -size : size;
      const key = values['idempotency-key'];
      if (key !== undefined && !idempotencyKeyPattern.test(key)) throw new UsageError('--idempotency-key: 1 to 255 printable ASCII characters');
      return withServices(values, async (s) => {
        // The embedded limiter counts in the serving process's memory: a key this command checked
        // against the file missed a top-up the server had not applied from its pending log yet, and
        // one this command made reached the server's memory only on its next heartbeat (2 s) — each
        // way the same key added twice. A debit checked against the file the same way missed what
        // the server's requests in flight hold (its memory only), and took the balance below zero
        // there. Holding the file's lease, this process is the only one counting from it: it
        // replays what a server left in the log, a second command waits for it, and a running
        // server refuses it (its admin API takes the key, or the debit, instead). A plain top-up
        // needs none of that: added to whatever the server holds, it is right in any order.
        if ((key !== undefined || amount < 0) && s.counters instanceof SqliteCounterStore) {
          try {
            await s.counters.claimServer();
          } catch (err) {
            if (!(err instanceof DatabaseInUseError)) throw err;
            const how =
              amount < 0
                ? `correction through its admin API (POST /admin/v1/accounts/${id}/credits with a negative amount), which checks it against the balance it holds; nothing was taken`
                : `top-up through its admin API (POST /admin/v1/accounts/${id}/credits with the header Idempotency-Key), which checks the key against the balance it holds; nothing was added`;
            process.stderr.write(`error: a Tollgate server (pid ${err.holder.pid} on ${err.holder.host}) is serving from ${err.path}: send this ${how}\n`);
            return 1;
          }
        }
        if (key === undefined) {
          const a = await s.accounts.addCredits(id, amount, 'cli');
          print(values, accountView(a), `${a.id}  balance ${a.balance} (${signed(amount)})`);
          return 0;
        }
        const { account: a, replayed } = await s.accounts.addCreditsOnce(id, amount, key, 'cli');
        const line = replayed
          ? `${a.id}  balance ${a.balance} (the ${signed(amount)} under this key were made before)`
          : `${a.id}  balance ${a.balance} (${signed(amount)})`;
        print(values, { ...accountView(a), replayed }, line);
        return 0;
      });
    }
    case 'accounts top-ups': {
      const limit = values.limit === undefined ? 100 : /^[1-9]\d{0,3}$/.test(values.limit) ? Number(values.limit) : Number.NaN;
      if (!(limit <= 1000)) throw new UsageError(`--limit must be a whole number from 1 to 1000, not '${values.limit}'`);
      return withServices(values, async (s) => {
        const id = arg(positionals, 2, 'ACCOUNT');
        const page = await s.accounts.topUpHistory(id, limit, values.before);
        const line = (t: (typeof page.data)[number]) => `${t.id}  ${t.createdAt}  ${signed(t.credits)}  ${t.source}${t.reference === null ? '' : `  ${t.reference}`}`;
        const more = page.hasMore ? `\nmore: --before ${page.data.at(-1)!.id}` : '';
        print(values, { object: 'list', data: page.data, hasMore: page.hasMore }, (page.data.map(line).join('\n') || `no top-ups for ${id}`) + more);
        return 0;
      });
    }
    case 'accounts suspend':
    case 'accounts unsuspend': {
      const suspend = name === 'accounts suspend';
      if (!suspend && values.reason !== undefined) throw new UsageError('--reason goes with accounts suspend');
      // The admin API's rule for the reason, so the CLI stores none the API would refuse.
      if (values.reason !== undefined && !suspensionReason.safeParse(values.reason).success) throw new UsageError('--reason: 1 to 500 characters, without U+0000');
      return withServices(values, async (s) => {
        const a = await s.accounts.update(arg(positionals, 2, 'ACCOUNT'), {
          suspended: suspend,
          ...(values.reason !== undefined && { suspendedReason: values.reason }),
        });
        print(values, accountView(a), suspend ? `${a.id}  suspended at ${a.suspendedAt}${a.suspendedReason === null ? '' : `: ${a.suspendedReason}`}` : `${a.id}  not suspended`);
        return 0;
      });
    }
    case 'accounts close':
      return withServices(values, async (s) => {
        // Suspended first, so the account's keys and web sessions stop on a running server too.
        const a = await closeAccount(arg(positionals, 2, 'ACCOUNT'), { accounts: s.accounts, keys: s.keys, keyStore: s.storage.keys });
        // Its web sessions end for good, not only while it is suspended (as the admin API's close).
        await new SessionEpochs(s.counters, s.clock).end(a.id);
        print(values, accountView(a), `${a.id}  closed: its email, password and keys are gone; its usage and balance history stay`);
        return 0;
      });
    case 'accounts reset-link':
      return withServices(values, async (s) => {
        // The server's secret: a link signed with another would not work there. Left empty in
        // config, the server signs with the one kept in the database, and so does this.
        const secret = await sessionSecretOf(s.config.web.sessionSecret, s.storage);
        const sessions = new Sessions(secret, s.config.web.sessionTtlHours * 3_600_000, s.clock);
        const link = await new PasswordResets(s.accounts, sessions, s.clock, s.config.server.publicUrl).issue(arg(positionals, 2, 'ACCOUNT'));
        print(values, link, `${link.url}\n(works once, until ${link.expiresAt}: send it to the account's owner, who sets a password on it)`);
        return 0;
      });
    case 'accounts list': {
      const limit = values.limit === undefined ? 100 : /^[1-9]\d{0,3}$/.test(values.limit) ? Number(values.limit) : Number.NaN;
      if (!(limit <= 1000)) throw new UsageError(`--limit must be a whole number from 1 to 1000, not '${values.limit}'`);
      return withServices(values, async (s) => {
        const page = await s.accounts.list({
          limit,
          ...(values.email !== undefined && { email: values.email }),
          ...(values.suspended && { suspended: true }),
          ...(values.plan !== undefined && { plan: values.plan }),
          ...(values.before !== undefined && { before: values.before }),
        });
        const rows = page.data.map(accountSummaryView);
        const line = (a: (typeof rows)[number]) =>
          `${a.id}  ${a.createdAt}  ${a.plan}  ${a.email ?? '-'}${a.suspendedAt === null ? '' : `  suspended ${a.suspendedAt}`}`;
        // As accounts top-ups: a page of exactly --limit lines must not pass for every account there is.
        const more = page.hasMore ? `\nmore: --before ${rows.at(-1)!.id}` : '';
        print(values, { object: 'list', data: rows, hasMore: page.hasMore }, (rows.map(line).join('\n') || 'no accounts') + more);
        return 0;
      });
    }
    case 'keys list':
      return withServices(values, async (s) => {
        const account = await s.accounts.get(arg(positionals, 2, 'ACCOUNT'));
        const keys = await s.storage.keys.listByAccount(account.id);
        // As the admin API lists them: a key with a limit says how much of it its window has used.
        const used = await keyLimitsUsed(s.counters, s.clock.now(), account, keys);
        const rows = keys.map((k) => ({ ...keyView(k), ...(used.has(k.id) && { limitUsed: used.get(k.id)! }) }));
        const lines = rows.map(
          (k) =>
            `${k.id}  ${k.prefix}  ${k.name.padEnd(20)} created ${k.createdAt}  last used ${k.lastUsedAt ?? 'never'}${k.limit ? `  limit ${k.limit.credits} ${limitPer(k.limit.window)}${k.limitUsed === undefined ? '' : `, ${k.limitUsed} used`}` : ''}${accessLine(k, s.clock.now())}${k.revokedAt ? `  revoked ${k.revokedAt}` : ''}`,
        );
        print(values, rows, lines.length ? lines.join('\n') : `no keys for ${account.id}`);
        return 0;
      });
    case 'keys create': {
      const limit = values.credits === undefined ? null : keyLimitOf(values.credits, values.window);
      if (limit === null && values.window !== undefined) throw new UsageError('--window goes with --credits');
      if (values.expires === 'never' || values.models === 'all') throw new UsageError('a new key has no expiry and every model unless --expires or --models says otherwise');
      return withServices(values, async (s) => {
        const settings = checkKeySettings({ limit, ...accessOf(values, s.clock.now(), false) }, s.clock.now(), s.catalog);
        const { key, secret } = await s.keys.create(arg(positionals, 2, 'ACCOUNT'), values.name, settings);
        print(values, { ...keyView(key), key: secret }, `${secret}\n(key ${key.id}; store the secret now, it is not shown again)`);
        return 0;
      });
    }
    case 'keys limit': {
      const given = arg(positionals, 3, 'CREDITS');
      if (given === 'none' && values.window !== undefined) throw new UsageError('--window goes with a number of credits, not none');
      const limit = given === 'none' ? null : keyLimitOf(given, values.window);
      return withServices(values, async (s) => {
        const key = await s.keys.update(await s.keys.idOf(arg(positionals, 2, 'KEY')), { limit });
        const own = (k: typeof key) => (k.limit ? `at most ${k.limit.credits} credits ${limitPer(k.limit.window)}` : 'no limit of its own');
        // A revoked key keeps the limit it had (core/keys.ts): saying "done" with it unchanged, or
        // printing the old limit under exit 0, read as a change made.
        if (key.revokedAt !== null && (key.limit?.credits !== limit?.credits || key.limit?.window !== limit?.window)) {
          process.stderr.write(`error: ${key.id} was revoked at ${key.revokedAt}: a revoked key's limit does not change (it keeps ${own(key)})\n`);
          return 1;
        }
        print(values, keyView(key), `${key.id}: ${own(key)}`);
        return 0;
      });
    }
    case 'keys update': {
      if (values.expires === undefined && values.models === undefined) throw new UsageError('keys update needs --expires or --models');
      return withServices(values, async (s) => {
        const patch = checkKeySettings(accessOf(values, s.clock.now(), true), s.clock.now(), s.catalog);
        const key = await s.keys.update(await s.keys.idOf(arg(positionals, 2, 'KEY')), patch);
        // A revoked key keeps what it had (core/keys.ts): not a change made.
        if (key.revokedAt !== null) {
          process.stderr.write(`error: ${key.id} was revoked at ${key.revokedAt}: a revoked key does not change\n`);
          return 1;
        }
        print(values, keyView(key), `${key.id}:${accessLine(key, s.clock.now()) || '  no expiry, every model'}`);
        return 0;
      });
    }
    case 'keys revoke':
      return withServices(values, async (s) => {
        const key = await s.keys.revoke(await s.keys.idOf(arg(positionals, 2, 'KEY')));
        print(values, keyView(key), `revoked ${key.id} at ${key.revokedAt}`);
        return 0;
      });
    case 'usage':
      for (const flag of ['from', 'to'] as const) {
        const v = values[flag];
        if (v === undefined) continue;
        try {
          canonicalInstant(v);
        } catch (err) {
          throw new UsageError(`--${flag}: ${(err as Error).message} (a date such as 2026-11-25, or a timestamp with a zone)`);
        }
      }
      if (emptyRange(values.from, values.to)) {
        throw new UsageError(`--to (${values.to}) must come after --from (${values.from}): --to is exclusive (one day: --from 2026-11-25 --to 2026-11-26)`);
      }
      if (values.csv && values.json) throw new UsageError('--csv and --json: choose one');
      return withServices(values, async (s) => {
        const account = await s.accounts.get(arg(positionals, 1, 'ACCOUNT'));
        const range = {
          accountId: account.id,
          ...(values.from !== undefined && { from: values.from }),
          ...(values.to !== undefined && { to: values.to }),
        };
        if (values.records) {
          await writeRecords(s.storage.ledger, range, values);
          return 0;
        }
        const rows = await allDaily(s.storage.ledger, range);
        if (values.csv) {
          await write([dailyUsageCsvHeader, ...rows.map(dailyUsageCsv)].join(''));
          return 0;
        }
        const lines = rows.map((r) => `${r.day}  ${r.model.padEnd(28)} ${r.surface.padEnd(10)} ${String(r.requests).padStart(6)} req ${String(r.credits).padStart(10)} credits`);
        const total = summariseDaily(rows);
        if (lines.length > 0) lines.push(`${'total'.padEnd(12)}${''.padEnd(40)}${String(total.requests).padStart(6)} req ${String(total.credits).padStart(10)} credits`);
        print(values, rows, lines.length ? lines.join('\n') : `no usage recorded for ${account.id}`);
        return 0;
      });
    case 'models': {
      const c = config(values);
      const pricing = new Pricing(c.credits.perUsd);
      const rows = c.models.map((m) => ({ id: m.id, type: m.kind, provider: m.provider, pro: m.pro, price: pricing.describe(m) }));
      print(values, rows, rows.map((r) => `${r.id.padEnd(30)} ${r.type.padEnd(10)} ${r.provider.padEnd(8)} ${r.pro ? 'pro ' : '    '} ${priceText(r.price)}`).join('\n'));
      return 0;
    }
    case 'backup': {
      const target = resolve(arg(positionals, 1, 'FILE'));
      const { url } = config(values).storage;
      if (!url.startsWith('sqlite:')) {
        process.stderr.write('error: backup copies a SQLite storage; back PostgreSQL up with its own tools (pg_dump, or the database service\'s snapshots)\n');
        return 1;
      }
      const source = sqliteFile(url);
      if (source === ':memory:') throw new UsageError('storage.url is sqlite::memory:, which no other process can read');
      const done = await backupDatabase(source, target);
      const note = done.pendingLeftOut
        ? `; writes in ${source}-pending (a running server's last storage.pendingApplyMs, or what one that did not stop cleanly left) may not be in it`
        : '';
      print(values, { source, ...done }, `backed up ${source} to ${done.path} (${done.bytes.toLocaleString('en-US')} bytes, checked)${note}`);
      return 0;
    }
    case 'config check': {
      // F, else the file every other command would read (--config, else $TOLLGATE_CONFIG, else the
      // built-in default): an operator checks what `serve` will run. Two different files is a
      // mistake, not a choice to make silently.
      const file = positionals[2];
      if (file !== undefined && values.config !== undefined && file !== values.config) {
        throw new UsageError(`two files: check ${file} or ${values.config}, not both`);
      }
      const c = config(values, file);
      process.stdout.write(`${configSource(file ?? values.config)}: ok (${c.providers.length} providers, ${c.models.length} models, plans: ${Object.keys(c.plans).join(', ')})\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown command '${positionals.join(' ')}'`);
  }
}

run(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    // An operator's error, not a bug: its message says what to do, and a stack trace would bury it
    // (a database a newer build migrated is what one old instance meets in a rolling upgrade).
    if (
      err instanceof ConfigError ||
      err instanceof DatabaseInUseError ||
      err instanceof DatabaseOpenError ||
      err instanceof BackupTargetError ||
      err instanceof SchemaTooNewError
    ) {
      process.stderr.write(`${err.message}\n`);
      process.exitCode = 1;
    } else if (err instanceof GatewayError) {
      process.stderr.write(`error: ${renderMessage(err.code, err.vars, { publicUrl: '', requestId: '-' })}\n`);
      process.exitCode = 1;
    } else if (typeof (err as NodeJS.ErrnoException).syscall === 'string') {
      // The system refused (a port in use, a database that does not answer): its message says
      // what and where; a stack trace into the network code would only bury it.
      process.stderr.write(`error: ${(err as Error).message}\n`);
      process.exitCode = 1;
    } else if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`error: ${(err as Error).message}\n\n${usageOf(running)}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`error: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
