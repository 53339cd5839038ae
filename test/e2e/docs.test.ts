// The docs are a contract: every YAML example in README.md and docs/ loads through the real config
// loader (an operator pastes them), the complete example in docs/config.md counts what the page says
// it does, every metric docs/operations.md lists is served at /metrics with the labels it names, and
// its example alerts read only those metrics, labels and the catalogue's error codes.
// Errors have their own check (src/errors/errors.test.ts).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { catalogue } from '../../src/errors/catalogue.js';
import { providerTypes } from '../../src/providers/registry.js';
import { startTestGateway, testModels, type TestGateway } from '../helpers/gateway.js';

const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');
const pages = ['README.md', ...readdirSync(new URL('docs/', root)).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** Every ```yaml block of a page, with the line it starts on (for the failure message). */
function yamlBlocks(page: string): Array<{ where: string; text: string }> {
  const text = read(page);
  return [...text.matchAll(/^```ya?ml\n([\s\S]*?)^```/gm)].map((m) => ({
    where: `${page}:${text.slice(0, m.index).split('\n').length}`,
    text: m[1]!,
  }));
}

/** Every `${VAR}` an example names, set: the examples are checked, not the machine's environment. */
function envFor(text: string): Record<string, string> {
  return Object.fromEntries([...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => [m[1]!, 'x']));
}

const load = (text: string) => loadConfig({ input: parseYaml(text) ?? {}, env: envFor(text), providerTypes });

describe('YAML in the docs', () => {
  const blocks = pages.flatMap(yamlBlocks);

  it('finds the examples', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(5);
  });

  it.each(blocks)('$where loads through the config loader', ({ text }) => {
    expect(() => load(text)).not.toThrow();
  });

  it("docs/config.md's complete example is what the page says config check prints", () => {
    const page = read('docs/config.md');
    const claim = /ok \((\d+) providers, (\d+) models, plans: ([^)]+)\)/.exec(page);
    expect(claim, 'docs/config.md names the config check result of its complete example').not.toBeNull();
    const complete = yamlBlocks('docs/config.md').at(-1)!;
    const config = load(complete.text);
    expect([config.providers.length, config.models.length, Object.keys(config.plans).join(', ')]).toEqual([Number(claim![1]), Number(claim![2]), claim![3]]);
  });
});

describe('metrics in docs/operations.md', () => {
  let t: TestGateway;
  beforeAll(async () => {
    // gpt-4o-mini falls back to a second name on the same fake, so a fallback has a sample too.
    t = await startTestGateway({
      config: () => ({ models: testModels().map((m) => (m.id === 'gpt-4o-mini' ? { ...m, fallbacks: [{ provider: 'openai', upstream: 'gpt-4o-mini-2' }] } : m)) }),
    });
  });
  afterAll(async () => t?.close());

  it('are all served, with the labels the table names', async () => {
    const page = read('docs/operations.md');
    const table = page.slice(page.indexOf('## Metrics'), page.indexOf('## Logs'));
    const rows = [...table.matchAll(/^\| (`tollgate_[^|]*)\|([^|]*)\|/gm)].flatMap((m) =>
      [...m[1]!.matchAll(/`(tollgate_[a-z_*]+)`/g)].map((n) => ({ name: n[1]!, labels: [...m[2]!.matchAll(/`([a-z_]+)`/g)].map((l) => l[1]!).sort() })),
    );
    expect(rows.length).toBeGreaterThanOrEqual(9);

    // One settled request, so the ledger's series have samples.
    const { secret } = await t.newAccount();
    t.openai.enqueue({ kind: 'json', status: 503, body: { error: { message: 'overloaded', type: 'server_error', code: null, param: null } } });
    await t.client(secret).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    // And one refusal, for the errors' series.
    expect((await fetch(`${t.url}/v1/models`, { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    const text = await (await fetch(`${t.url}/metrics`)).text();
    const types = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!);
    for (const { name, labels } of rows) {
      if (name.endsWith('*')) {
        expect(types.some((n) => n.startsWith(name.slice(0, -1))), `${name} at /metrics`).toBe(true);
        continue;
      }
      expect(types, `${name} at /metrics`).toContain(name);
      const sample = text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `) || l.startsWith(`${name}_count{`) || l.startsWith(`${name}_count `));
      expect(sample, `a sample of ${name}`).toBeDefined();
      const served = [...(/\{(.*)\}/.exec(sample!)?.[1] ?? '').matchAll(/([a-z_]+)="/g)].map((l) => l[1]!).filter((l) => l !== 'le').sort();
      expect(served, `labels of ${name}`).toEqual(labels);
    }
  });
});

describe('alerts in docs/operations.md', () => {
  it('name only metrics the table lists, with their labels, and error codes of the catalogue', () => {
    const page = read('docs/operations.md');
    const table = page.slice(page.indexOf('## Metrics'), page.indexOf('## Alerts'));
    const labelsOf = new Map(
      [...table.matchAll(/^\| (`tollgate_[^|]*)\|([^|]*)\|/gm)].flatMap((m) =>
        [...m[1]!.matchAll(/`(tollgate_[a-z_]+)`/g)].map((n) => [n[1]!, [...m[2]!.matchAll(/`([a-z_]+)`/g)].map((l) => l[1]!)] as const),
      ),
    );
    const alerts = page.slice(page.indexOf('## Alerts'), page.indexOf('## Logs'));
    const exprs = [...[...alerts.matchAll(/^```promql\n([\s\S]*?)^```/gm)].flatMap((b) => b[1]!.split('\n').filter((l) => l !== '' && !l.startsWith('#'))), ...[...alerts.matchAll(/`(sum by [^`]+)`/g)].map((m) => m[1]!.replace(/\s+/g, ' '))];
    expect(exprs.length).toBeGreaterThanOrEqual(10);
    for (const expr of exprs) {
      const used = [...expr.matchAll(/(tollgate_[a-z_]+)(\{[^}]*\})?/g)];
      expect(used.length, expr).toBeGreaterThan(0);
      // Labels an expression groups by belong to every metric it reads.
      const by = [...expr.matchAll(/by \(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((l) => l.trim()));
      for (const [, full, selector = ''] of used) {
        const histogram = /_(bucket|sum|count)$/.exec(full!);
        const name = histogram && labelsOf.has(full!.slice(0, histogram.index)) ? full!.slice(0, histogram.index) : full!;
        expect(labelsOf.has(name), `${full} (${expr}) is in the metrics table`).toBe(true);
        const allowed = [...labelsOf.get(name)!, ...(histogram?.[1] === 'bucket' ? ['le'] : [])];
        for (const label of [...[...selector.matchAll(/([a-z_]+)\s*(?:=~|!=|!~|=)/g)].map((l) => l[1]!), ...by]) {
          expect(allowed, `label ${label} of ${name} (${expr})`).toContain(label);
        }
        for (const codes of selector.matchAll(/code=~?"([^"]*)"/g)) {
          for (const code of codes[1]!.split('|')) expect(Object.keys(catalogue), `code ${code} (${expr})`).toContain(code);
        }
      }
    }
  });
});

/** Every .ts file (tests left out) under `dir`. */
function sources(dir: URL): URL[] {
  return readdirSync(dir).flatMap((name) => {
    const url = new URL(name, dir);
    if (statSync(url).isDirectory()) return sources(new URL(`${name}/`, dir));
    return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [url] : [];
  });
}

/**
 * The messages of every `logger.<level>(…)` / `log.<level>(…)` call: the quoted strings among its
 * arguments outside `{…}` (both sides of a `cond ? 'a' : 'b'` included). Template literals are
 * left out: their text is not fixed.
 */
function loggedMessages(text: string): string[] {
  const found: string[] = [];
  for (const call of text.matchAll(/\b(?:logger|log)\.(?:fatal|error|warn|info)\(/g)) {
    let depth = 0;
    let braces = 0;
    for (let i = call.index + call[0].length; i < text.length; i++) {
      const c = text[i]!;
      if (c === "'" || c === '"' || c === '`') {
        let j = i + 1;
        while (text[j] !== c) j += text[j] === '\\' ? 2 : 1;
        if (c !== '`' && braces === 0) found.push(text.slice(i + 1, j));
        i = j;
      } else if (c === '{') braces++;
      else if (c === '}') braces--;
      else if (c === '(') depth++;
      else if (c === ')' && depth-- === 0) break;
    }
  }
  return found;
}

describe('log lines in docs/operations.md', () => {
  it('names every message the code logs', () => {
    const page = read('docs/operations.md');
    const logs = page.slice(page.indexOf('## Logs'), page.indexOf('## API keys')).replace(/\s+/g, ' ');
    const messages = [...sources(new URL('src/', root)), ...sources(new URL('cli/', root))].flatMap((f) => loggedMessages(readFileSync(f, 'utf8')));
    expect(messages.length).toBeGreaterThanOrEqual(30);
    // A message is named whole, or by its head with what follows as `…` (`limiter (Redis) unreachable: …`).
    const missing = messages.filter((m) => !logs.includes(`\`${m.split(': ')[0]}`) && !logs.includes(`"msg":"${m}"`));
    expect(missing).toEqual([]);
  });
});
