// The reference pages an operator configures and runs the gateway by, held to the code: every key of
// the config schema is in docs/config.md's tables and every key there is in the schema, with the
// schema's default; the CLI lists in README.md and docs/operations.md are the binary's own usage; and
// the TOLLGATE_* variables the docs name are the ones the code reads. (docs.test.ts holds the YAML
// examples, metrics and log lines; src/errors/errors.test.ts the error codes.)
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { RESERVED_RULE_IDS, configSchema, modelSchema, providerSchema } from '../../src/config/schema.js';

const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

interface Row {
  key: string;
  default: string;
}

/** The rows of every table in `text` whose first cell is a `key`: its key and its default cell (the third). */
function rows(text: string): Row[] {
  return text
    .split('\n')
    .filter((line) => /^\| `[^`]+`/.test(line))
    .map((line) => {
      // `\|` inside a cell (`closed` \| `open`) is not a column break.
      const cells = line.split(/(?<!\\)\|/).map((c) => c.trim());
      return { key: /^`([^`]+)`/.exec(cells[1]!)![1]!, default: cells[3] ?? '' };
    });
}

/** docs/config.md's `### \`name\`` sections, by name. */
function sections(): Map<string, string> {
  const page = read('docs/config.md');
  return new Map([...page.matchAll(/^### `([^`]+)`[^\n]*\n([\s\S]*?)(?=^##)/gm)].map((m) => [m[1]!, m[2]!]));
}

type Def = { innerType?: unknown; shape?: Record<string, unknown>; values?: unknown[]; valueType?: unknown };
const defOf = (s: unknown) => (s as { _zod: { def: Def } })._zod.def;

/** The object shape under defaults, optionals and refinements, if `s` is an object. */
function shapeOf(s: unknown): Record<string, unknown> | undefined {
  let def = defOf(s);
  while (def.innerType !== undefined) def = defOf(def.innerType);
  return def.shape;
}

/** `price.input`-style keys: an object field's own fields, one level down (price, stripe). */
function flatKeys(shape: Record<string, unknown>): string[] {
  return Object.entries(shape).flatMap(([k, v]) => {
    const inner = shapeOf(v);
    return inner ? Object.keys(inner).map((k2) => `${k}.${k2}`) : [k];
  });
}

const at = (value: unknown, key: string): unknown => key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], value);

/**
 * A default cell against the schema's default. A cell that opens with a literal (`8080`, `""`,
 * `["*"]`, `[auto, default, flex, on_demand]`) is read as YAML and must equal it; "—", "none",
 * "absent" and "unset" say there is none. Prose (`the provider id`) is not compared.
 */
function defaultProblem(where: string, row: Row, actual: unknown): string | undefined {
  const literal = /^`([^`]*)`/.exec(row.default)?.[1];
  // Derived from other values at load, not a schema default: `http://localhost:<port>`, `upstream` = `id`.
  if (literal !== undefined && (literal.includes('<') || (where === 'models' && row.key === 'upstream'))) return undefined;
  if (literal !== undefined) {
    const documented: unknown = parseYaml(literal);
    return JSON.stringify(documented) === JSON.stringify(actual) ? undefined : `${where}.${row.key}: docs say ${literal}, the schema ${JSON.stringify(actual)}`;
  }
  if (/^(—|none|absent|unset)\b/.test(row.default) && actual !== undefined) return `${where}.${row.key}: docs say no default, the schema ${JSON.stringify(actual)}`;
  return undefined;
}

describe('docs/config.md against src/config/schema.ts', () => {
  const docs = sections();
  const top = shapeOf(configSchema)!;
  const defaults = configSchema.parse({}) as Record<string, unknown>;

  it('has a section for every top-level key', () => {
    // `defaultPlan` is documented with `plans`.
    expect(Object.keys(top).filter((k) => k !== 'defaultPlan' && !docs.has(k))).toEqual([]);
  });

  it.each(Object.keys(top).filter((k) => shapeOf(top[k]) !== undefined))('`%s`: the same keys, with the same defaults', (name) => {
    const documented = rows(docs.get(name) ?? '');
    expect(documented.map((r) => r.key).sort()).toEqual(flatKeys(shapeOf(top[name])!).sort());
    expect(documented.map((r) => defaultProblem(name, r, at(defaults[name], r.key))).filter(Boolean)).toEqual([]);
  });

  it('`providers`: the same keys, with the same defaults', () => {
    const documented = rows(docs.get('providers')!);
    expect(documented.map((r) => r.key).sort()).toEqual(Object.keys(shapeOf(providerSchema)!).sort());
    const parsed = providerSchema.parse({ id: 'p', type: 'openai', baseUrl: 'http://127.0.0.1/v1' });
    expect(documented.map((r) => defaultProblem('providers', r, at(parsed, r.key))).filter(Boolean)).toEqual([]);
  });

  it('`models`: every field of every kind, with the same defaults', () => {
    const documented = rows(docs.get('models')!);
    const minimal = {
      chat: { price: { input: 1, output: 1 } },
      embedding: { price: { input: 1 } },
      image: { price: { perImage: 1 } },
    };
    const kinds = Object.entries(minimal).map(([kind, extra]) => {
      const schema = modelSchema.options.find((o) => defOf(shapeOf(o)!.kind).values?.[0] === kind)!;
      return { keys: flatKeys(shapeOf(schema)!), parsed: modelSchema.parse({ id: 'm', provider: 'p', kind, ...extra }) };
    });
    const all = new Set(kinds.flatMap((k) => k.keys));
    const names = new Set(documented.map((r) => r.key));
    expect([...all].filter((k) => !names.has(k))).toEqual([]);
    expect([...names].filter((k) => !all.has(k))).toEqual([]);
    // A row is compared with the first kind that has the field (`price.input` of chat and embedding is required in both).
    const problems = documented.map((r) => defaultProblem('models', r, at(kinds.find((k) => k.keys.includes(r.key))!.parsed, r.key)));
    expect(problems.filter(Boolean)).toEqual([]);
  });

  it('`plans`: the plan fields the schema takes', () => {
    const documented = rows(docs.get('plans')!).map((r) => r.key);
    const planFields = Object.keys(shapeOf(defOf(defOf(top.plans).innerType).valueType)!);
    expect(documented.sort()).toEqual(['defaultPlan', 'plans', ...planFields.map((f) => `plans.<name>.${f}`)].sort());
  });
});

describe('docs/plans.md against src/config/schema.ts', () => {
  it('names every reserved rule id the schema refuses, and no other', () => {
    const row = read('docs/plans.md').split('\n').find((line) => line.startsWith('| `id` |'))!;
    const listed = [...row.split('so refused:')[1]!.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]);
    expect(listed.sort()).toEqual([...RESERVED_RULE_IDS].sort());
  });
});

describe('the CLI lists in README.md and docs/operations.md', () => {
  const bin = new URL('dist/cli/tollgate.js', root).pathname;

  async function usage(): Promise<string[]> {
    // The build output, as test/global-setup.ts builds it for the suite.
    const { stdout } = await promisify(execFile)('node', [bin, '--help']);
    return stdout.split('\n');
  }

  it("docs/operations.md's block is the binary's --help, line for line", async () => {
    const help = (await usage()).filter((l) => l.startsWith('  ')).map((l) => l.slice(2));
    const page = read('docs/operations.md');
    const block = /^## CLI\n[\s\S]*?^```text\n([\s\S]*?)^```/m.exec(page)![1]!.trimEnd().split('\n');
    expect(block).toEqual(help);
  });

  it("README.md's list names every command with the options --help gives it", async () => {
    /** `accounts create` → its options, from a synopsis such as `accounts create [--plan P] [--json]`. */
    const synopsis = (line: string) => ({ command: /^[a-z -]+?(?= [A-Z[]|$)/.exec(line.trim())![0]!, options: [...line.matchAll(/--[a-z-]+/g)].map((m) => m[0]).sort() });
    const help = (await usage())
      .filter((l) => /^ {2}[a-z]/.test(l))
      .map((l) => synopsis(l.trim().split(/ {2,}/)[0]!));
    const page = read('README.md');
    const block = /^## CLI\n[\s\S]*?^```sh\n([\s\S]*?)^```/m.exec(page)![1]!;
    const readme = block
      .trim()
      .split('\n')
      .map((l) => synopsis(l.replace(/^npx tollgate /, '')));
    expect(readme).toEqual(help);
  });
});

/** Every .ts file (tests left out) under `dir`. */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [path] : [];
  });
}

describe('TOLLGATE_* environment variables', () => {
  const names = (text: string) => new Set([...text.matchAll(/\bTOLLGATE_[A-Z_]+\b/g)].map((m) => m[0]));
  const code = names(['src', 'cli'].flatMap((d) => sources(new URL(d, root).pathname)).map((f) => readFileSync(f, 'utf8')).join('\n'));
  const docs = names(readdirSync(new URL('docs/', root)).map((f) => read(`docs/${f}`)).join('\n'));

  it('the code reads are all documented in docs/', () => {
    expect(code.size).toBeGreaterThanOrEqual(4);
    expect([...code].filter((n) => !docs.has(n))).toEqual([]);
  });

  it('the docs name none the code does not read', () => {
    expect([...docs].filter((n) => !code.has(n))).toEqual([]);
  });
});
