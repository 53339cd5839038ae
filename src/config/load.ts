// Loads config once: YAML file (or the built-in default) → ${ENV} substitution → schema → cross
// checks → deep freeze. Every problem is collected and reported by path, not just the first.
// This folder is the only code that reads process.env.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { configSchema, type Config } from './schema.js';
import { defaultConfig, defaultModels, defaultProviders } from './defaults.js';
import { resolvePlans } from './plans.js';

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid config (${source}):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export interface LoadOptions {
  /** YAML file; absent: TOLLGATE_CONFIG, else the built-in default. */
  path?: string | undefined;
  /** Parsed config object instead of a file (tests). */
  input?: unknown;
  env?: NodeJS.ProcessEnv;
  /**
   * Provider types the registry knows, by name or as the registry itself (providers/registry.ts),
   * which also says the model kinds a type serves (absent: any); config naming another type, or a
   * model on a provider that cannot serve its kind, is refused.
   */
  providerTypes: readonly string[] | ReadonlyMap<string, { readonly kinds?: readonly string[] }>;
  /** Applied after the file, before validation (CLI flags). */
  overrides?: { port?: number | undefined };
  /**
   * The caller reads none of the config's secrets (SECRET_PATHS): the CLI's account, key and usage
   * commands work on the database and the limiter alone. A `${VAR}` unset in one of them then reads
   * as empty instead of refusing the whole file: an operator's shell on the server rarely holds the
   * admin token or the providers' keys the service's environment file gives `tollgate serve`.
   */
  secretsUnused?: boolean;
}

/** Config fields that hold a secret only the server uses (the admin API, sessions, /metrics, upstreams, Stripe). */
const SECRET_PATHS = /^(admin\.token|web\.sessionSecret|server\.metricsToken|providers\[\d+\]\.(apiKey|headers\..+)|billing\.stripe\.(secretKey|webhookSecret))$/;

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}/g;

/** Replaces `${VAR}` and `${VAR:-default}` in every string; an unset VAR without default is a problem. */
function substitute(value: unknown, env: NodeJS.ProcessEnv, path: string, problems: string[], unused?: RegExp): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (_m, name: string, hasDefault: string | undefined, fallback: string | undefined) => {
      const v = env[name];
      if (v !== undefined && v !== '') return v;
      if (hasDefault !== undefined) return fallback ?? '';
      if (unused?.test(path)) return '';
      problems.push(`${path || '(root)'}: environment variable ${name} is not set`);
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substitute(v, env, `${path}[${i}]`, problems, unused));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, substitute(v, env, path ? `${path}.${k}` : k, problems, unused)]),
    );
  }
  return value;
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, seg) => (typeof seg === 'number' ? `${acc}[${seg}]` : acc ? `${acc}.${String(seg)}` : String(seg)), '');
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * Token prices above zero yet below $0.001 per million tokens: a price per token written where the
 * unit is per 1M tokens (0.00000015 for gpt-4o-mini's $0.15), which served the model for nothing
 * (`/v1/models` showed 0 credits per 1M tokens) without a word. No model is priced that low per
 * million (the cheapest embeddings are about $0.01), and a per-token price is below $0.001 for any
 * model under $1,000 per 1M. In USD, not credits: an operator's own credit rate (a low
 * credits.perUsd) makes small prices worth less than a credit without any slip.
 */
const PER_TOKEN_SLIP_USD = 0.001;

function unitSlips(m: Config['models'][number], i: number): string[] {
  const fields = m.kind === 'chat' ? (['input', 'output', 'cachedInput', 'audioInput', 'audioOutput'] as const) : m.kind === 'embedding' ? (['input'] as const) : [];
  const price = m.price as Partial<Record<string, number>>;
  return fields.flatMap((field) => {
    const usd = price[field];
    if (usd === undefined || usd <= 0 || usd >= PER_TOKEN_SLIP_USD) return [];
    return [`models[${i}].price.${field}: ${usd} USD per 1M tokens is below ${PER_TOKEN_SLIP_USD}: prices are USD per million tokens (0.15 for $0.15 per 1M tokens), not per token`];
  });
}

/** Cross-field rules the schema cannot express. */
function crossCheck(config: Config, types: LoadOptions['providerTypes'], builtInModels: boolean): string[] {
  const providerTypes = Array.isArray(types) ? (types as readonly string[]) : [...(types as ReadonlyMap<string, unknown>).keys()];
  const kindsOf = (providerId: string): readonly string[] | undefined => {
    if (Array.isArray(types)) return undefined;
    const type = config.providers.find((p) => p.id === providerId)?.type;
    return type === undefined ? undefined : (types as ReadonlyMap<string, { readonly kinds?: readonly string[] }>).get(type)?.kinds;
  };
  /** A model on a provider whose type cannot serve its kind: every request failed there, blamed on the caller. */
  const servesKind = (path: string, providerId: string, kind: string, problems: string[]) => {
    const kinds = kindsOf(providerId);
    if (kinds && !kinds.includes(kind)) problems.push(`${path}: provider '${providerId}' serves ${kinds.join(' and ')} models only, not ${kind}`);
  };
  const problems: string[] = [];
  const providerIds = new Set<string>();
  config.providers.forEach((p, i) => {
    if (providerIds.has(p.id)) problems.push(`providers[${i}].id: duplicate provider id '${p.id}'`);
    providerIds.add(p.id);
    if (!providerTypes.includes(p.type)) {
      problems.push(`providers[${i}].type: unknown provider type '${p.type}' (known: ${providerTypes.join(', ')})`);
    }
  });
  const modelIds = new Set<string>();
  /** Built-in catalog models by the provider they need and the file does not list. */
  const unserved = new Map<string, string[]>();
  config.models.forEach((m, i) => {
    if (modelIds.has(m.id)) problems.push(`models[${i}].id: duplicate model id '${m.id}'`);
    modelIds.add(m.id);
    if (!providerIds.has(m.provider)) {
      if (builtInModels) unserved.set(m.provider, [...(unserved.get(m.provider) ?? []), m.id]);
      else problems.push(`models[${i}].provider: no provider with id '${m.provider}'`);
    }
    if (providerIds.has(m.provider)) servesKind(`models[${i}].provider`, m.provider, m.kind, problems);
    const upstreamOf = (f: { upstream?: string | undefined }) => f.upstream ?? m.upstream ?? m.id;
    m.fallbacks?.forEach((f, j, all) => {
      const at = `models[${i}].fallbacks[${j}]`;
      if (!providerIds.has(f.provider)) problems.push(`${at}.provider: no provider with id '${f.provider}'`);
      else if (f.provider === m.provider && upstreamOf(f) === upstreamOf(m)) problems.push(`${at}: the same provider and upstream as the model itself`);
      else if (all.slice(0, j).some((e) => e.provider === f.provider && upstreamOf(e) === upstreamOf(f))) problems.push(`${at}: the same provider and upstream as an earlier fallback`);
      else servesKind(`${at}.provider`, f.provider, m.kind, problems);
    });
    problems.push(...unitSlips(m, i));
    if (m.kind === 'image') {
      if (m.sizes.length > 0 && !m.sizes.includes(m.defaultSize)) {
        problems.push(`models[${i}].defaultSize: '${m.defaultSize}' is not one of sizes`);
      }
      const perImage = m.price.perImage;
      if (typeof perImage === 'object') {
        const priced = m.sizes.length > 0 ? m.sizes : [m.defaultSize];
        for (const s of priced) {
          if (perImage[s] === undefined) problems.push(`models[${i}].price.perImage: no price for size ${s}`);
        }
        // A quality's price is a variant of a size's: `1024x1024/hd` needs `1024x1024`.
        for (const key of Object.keys(perImage)) {
          const [size, quality] = key.split('/');
          if (quality !== undefined && perImage[size!] === undefined) problems.push(`models[${i}].price.perImage: ${key} has no plain ${size} price beside it`);
        }
      }
    }
  });
  // A file that lists providers but no models (the built-in openai pointed at a local server) gets
  // the built-in catalog, fal's models included: one line per missing provider, saying where the
  // models come from, rather than one per model at an index of a list the file does not have.
  for (const [provider, ids] of unserved) {
    problems.push(
      `models: absent, so the built-in catalog is served; its models ${ids.join(', ')} need a provider '${provider}', which providers does not list: add it, or list the models to serve under models`,
    );
  }
  if (config.billing.provider === 'stripe') {
    if (config.billing.stripe.secretKey === '') problems.push('billing.stripe.secretKey: required with billing.provider stripe');
    if (config.billing.stripe.webhookSecret === '') problems.push('billing.stripe.webhookSecret: required with billing.provider stripe (the webhook is how payments complete)');
  }
  problems.push(...resolvePlans(config.plans).problems);
  // A rule for a model the catalog does not have applies to nothing: a typo would switch a limit
  // off without a word. Only the plan's own entries: a preset names the default catalog's models.
  for (const [name, plan] of Object.entries(config.plans)) {
    plan.rules.forEach((entry, i) => {
      const ids: unknown = (entry as { models?: { ids?: unknown } }).models?.ids;
      if (!Array.isArray(ids)) return;
      ids.forEach((id, j) => {
        if (typeof id === 'string' && !modelIds.has(id)) problems.push(`plans.${name}.rules[${i}].models.ids[${j}]: no model with id '${id}'`);
      });
    });
  }
  if (config.limiter.url === 'embedded' && !config.storage.url.startsWith('sqlite:')) {
    problems.push('limiter.url: the embedded limiter keeps its counters in SQLite storage; with PostgreSQL storage use a shared limiter (redis://…)');
  }
  if (!Object.hasOwn(config.plans, config.defaultPlan)) {
    problems.push(`defaultPlan: no plan named '${config.defaultPlan}'`);
  }
  const { answerTimeoutMs, totalTimeoutMs } = config.upstream;
  if (answerTimeoutMs !== undefined && answerTimeoutMs > totalTimeoutMs) {
    problems.push(`upstream.answerTimeoutMs: ${answerTimeoutMs} is above totalTimeoutMs (${totalTimeoutMs}), which ends every call first`);
  }
  return problems;
}

/** The file `loadConfig` reads for `path` (absent: TOLLGATE_CONFIG, else none: the built-in default). */
function configPath(path: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  return path ?? (env.TOLLGATE_CONFIG || undefined);
}

/** How `loadConfig` and its errors name what it reads for `path`: the file, or `(built-in default)`. */
export function configSource(path: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return configPath(path, env) ?? '(built-in default)';
}

export function loadConfig(opts: LoadOptions): Config {
  const env = opts.env ?? process.env;
  const path = configPath(opts.path, env);
  const source = opts.input !== undefined ? '(inline)' : configSource(opts.path, env);
  let raw: unknown;
  if (opts.input !== undefined) {
    raw = structuredClone(opts.input);
  } else if (path) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError(source, [`cannot read ${path}: ${(err as Error).message}`]);
    }
    try {
      raw = parseYaml(text) ?? {};
    } catch (err) {
      // The parser's message ends with an excerpt of the file, which may hold a literal key; the
      // line and column it names are enough to find the mistake, and `config check` output and
      // start-up logs get pasted into tickets.
      const where = (err as Error).message.split('\n')[0]!.replace(/:$/, '');
      throw new ConfigError(source, [`not valid YAML: ${where}`]);
    }
  } else {
    raw = structuredClone(defaultConfig);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(source, ['(root): expected a mapping of sections (server, storage, providers, …)']);
  }
  const obj = raw as Record<string, unknown>;
  // No providers/models in the file: serve the built-in catalog.
  if (obj.providers === undefined) obj.providers = structuredClone(defaultProviders);
  const builtInModels = obj.models === undefined;
  if (builtInModels) obj.models = structuredClone(defaultModels);
  if (opts.overrides?.port !== undefined) {
    obj.server = { ...(obj.server as object | undefined), port: opts.overrides.port };
  }
  // publicUrl unset: this server on localhost at the port it listens on (the schema's default is
  // port 8080's). A fixed :8080 sent the links in errors of a server on another port (`--port 9000`)
  // to a page that is not there. Port 0 is any free port, known only once listening: the default stays.
  const server = obj.server;
  if (server !== null && typeof server === 'object' && !Array.isArray(server)) {
    const { port, publicUrl } = server as { port?: unknown; publicUrl?: unknown };
    if (publicUrl === undefined && typeof port === 'number' && Number.isInteger(port) && port > 0 && port <= 65_535) {
      obj.server = { ...server, publicUrl: `http://localhost:${port}` };
    }
  }

  const problems: string[] = [];
  const substituted = substitute(obj, env, '', problems, opts.secretsUnused ? SECRET_PATHS : undefined);
  const parsed = configSchema.safeParse(substituted);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(`${formatPath(issue.path) || '(root)'}: ${issue.message}`);
    // The plans' rules are checked after the schema (resolvePlans): with a typo elsewhere, a rule's
    // own problems (`window: daily`) came only on the next try. Where the plans section parses on
    // its own, its rules are checked now too.
    const plans = configSchema.shape.plans.safeParse((substituted as { plans?: unknown } | null)?.plans);
    if (plans.success) problems.push(...resolvePlans(plans.data).problems.filter((p) => !problems.includes(p)));
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(source, problems);
  const crossProblems = crossCheck(parsed.data, opts.providerTypes, builtInModels);
  if (crossProblems.length > 0) throw new ConfigError(source, crossProblems);
  for (const m of parsed.data.models) {
    // A size with no price cannot be served, so a per-size price map left without `sizes` (SPEC
    // §10's dall-e-3) lists the model's sizes: otherwise it took any size, and the free tier's
    // image_resolution told a dall-e-3 caller to "use a size within 512x512", which then had no price.
    if (m.kind === 'image' && m.sizes.length === 0 && typeof m.price.perImage === 'object') {
      m.sizes = [...new Set(Object.keys(m.price.perImage).map((key) => key.split('/')[0]!))];
    }
  }
  return deepFreeze(parsed.data);
}
