import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { ProviderConfig } from '../config/schema.js';
import type { UpstreamClient } from '../upstream/types.js';
import { createProviders, providerTypes } from './registry.js';

const client: UpstreamClient = {
  request: () => Promise.reject(new Error('not used')),
  close: () => Promise.resolve(),
};
const cfg = (id: string, type: string, apiKey?: string): ProviderConfig => ({
  id,
  type,
  baseUrl: 'http://127.0.0.1:1',
  apiKey,
  headers: {},
});

describe('provider registry', () => {
  it('lists exactly the openai, fal and anthropic types, each under its own name', () => {
    expect([...providerTypes.keys()].sort()).toEqual(['anthropic', 'fal', 'openai']);
    for (const [name, t] of providerTypes) expect(t.type).toBe(name);
  });

  it('has a folder for every type and a type for every folder', () => {
    const dir = fileURLToPath(new URL('.', import.meta.url));
    const folders = readdirSync(dir).filter((f) => statSync(join(dir, f)).isDirectory());
    expect(folders.sort()).toEqual([...providerTypes.keys()].sort());
  });

  it('builds providers by id', () => {
    const providers = createProviders([cfg('openai', 'openai', 'sk'), cfg('groq', 'openai'), cfg('fal', 'fal', 'k')], client);
    expect([...providers.keys()]).toEqual(['openai', 'groq', 'fal']);
    expect(providers.get('openai')!.id).toBe('openai');
    expect(providers.get('openai')!.configured).toBe(true);
    expect(providers.get('groq')!.configured).toBe(false);
    expect(providers.get('fal')!.configured).toBe(true);
  });

  it('rejects unknown types and duplicate ids', () => {
    expect(() => createProviders([cfg('x', 'cohere')], client)).toThrow(/unknown type 'cohere'/);
    expect(() => createProviders([cfg('a', 'openai'), cfg('a', 'fal')], client)).toThrow(/twice/);
  });

  it('no code outside providers/<type>/ names a provider type', () => {
    const root = fileURLToPath(new URL('../', import.meta.url));
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        const rel = relative(root, path).split(sep).join('/');
        if (statSync(path).isDirectory()) {
          if (![...providerTypes.keys()].some((t) => rel === `providers/${t}`)) walk(path);
          continue;
        }
        if (!name.endsWith('.ts') || name.endsWith('.test.ts')) continue;
        const text = readFileSync(path, 'utf8');
        if (/type\s*===?\s*['"](openai|fal|anthropic)['"]|['"](openai|fal|anthropic)['"]\s*===?\s*\w*\.?type\b/.test(text)) offenders.push(rel);
      }
    };
    walk(root);
    expect(offenders).toEqual([]);
  });
});
