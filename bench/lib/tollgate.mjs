// Tollgate as the benchmarks run it: its config, and accounts + keys created through the admin API.
// Shared by run.mjs, ab.mjs, promotion.mjs, rate-sweep.mjs, quick-overhead.mjs and cluster.mjs.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'undici';
import { ROOT } from './proc.mjs';

export const ADMIN = 'bench-admin-token';

/** The node flags `npm start` runs the server with (package.json's start script), so the benchmarks measure that. */
export const SERVE_FLAGS = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
  .scripts.start.split(' ')
  .filter((w) => w.startsWith('--'));

/** A `--node-args="…"` option's flags (space-separated), to go after SERVE_FLAGS. */
export const nodeArgs = (flags) => flags.split(' ').filter(Boolean);

/**
 * A config: the storage at storageUrl (`sqlite:<path>`, `postgres://…`), the embedded limiter or
 * the Redis at limiterUrl (fail closed), the free tier as default plan, one OpenAI provider at the
 * fake upstream.
 */
export function writeTollgateConfig(file, { storageUrl, limiterUrl, upstreamUrl }) {
  writeFileSync(
    file,
    [
      'server: { host: 127.0.0.1 }',
      `storage: { url: "${storageUrl}" }`,
      ...(limiterUrl ? [`limiter: { url: "${limiterUrl}", onUnavailable: closed }`] : []),
      `admin: { token: "${ADMIN}" }`,
      'logging: { level: warn }',
      'providers:',
      `  - { id: openai, type: openai, baseUrl: "${upstreamUrl}/v1", apiKey: sk-bench }`,
      'models:',
      '  - { id: gpt-4o-mini, kind: chat, provider: openai, price: { input: 0.15, output: 0.6 } }',
      'plans:',
      '  free: { preset: free-tier }',
      '  paid: { preset: pay-as-you-go }',
      'defaultPlan: free',
      '',
    ].join('\n'),
  );
}

export async function admin(pool, method, path, body) {
  const r = await pool.request({
    method,
    path: `/admin/v1${path}`,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const json = await r.body.json();
  if (r.statusCode >= 300) throw new Error(`admin ${method} ${path}: ${r.statusCode} ${JSON.stringify(json)}`);
  return json;
}

/** `count` free-tier accounts with one key each, `workers` admin calls in flight. Returns [{ id, secret }]. */
export async function createAccounts(url, count, workers = 32) {
  const pool = new Pool(url, { connections: workers });
  const out = new Array(count);
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: workers }, async () => {
        while (next < count) {
          const i = next++;
          const acct = await admin(pool, 'POST', '/accounts', { plan: 'free' });
          out[i] = { id: acct.id, secret: (await admin(pool, 'POST', `/accounts/${acct.id}/keys`, {})).key };
        }
      }),
    );
  } finally {
    await pool.close();
  }
  return out;
}

