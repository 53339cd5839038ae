// What one large request costs everyone else: a 9 MB chat body sent with no valid key, from a free
// account and from a paid account with an empty balance, while /healthz is polled every 5 ms. The
// worst /healthz wait is how long the event loop was held. Each case runs on a fresh server.
//
//   npm run build && node bench/big-bodies.mjs [--rounds 3] [--cli <another build's dist/cli/tollgate.js>]
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CLI, freePort, installCleanupHandlers, LIB, spawnNode, stop, trackTempDir, waitReady } from './lib/proc.mjs';
import { ADMIN, writeTollgateConfig } from './lib/tollgate.mjs';

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, cli: { type: 'string', default: CLI } } });
installCleanupHandlers();
const TEXT = 'lorem ipsum dolor sit amet '.repeat((9 * 1024 * 1024) / 27);
const BODY = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: TEXT }] });

async function measure(kind) {
  const dir = trackTempDir(mkdtempSync(join(tmpdir(), 'tollgate-big-')));
  const upstream = await spawnNode([join(LIB, 'upstream.mjs')], { waitJson: true });
  const port = await freePort();
  const config = join(dir, 'tollgate.yaml');
  writeTollgateConfig(config, { storageUrl: `sqlite:${join(dir, 'tollgate.db')}`, upstreamUrl: `http://127.0.0.1:${upstream.info.port}` });
  const { child } = await spawnNode([args.cli, 'serve', '--config', config, '--port', String(port)]);
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitReady(`${base}/readyz`, { child });
    const admin = (method, path, body) =>
      fetch(`${base}/admin/v1${path}`, { method, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: body && JSON.stringify(body) }).then((r) => r.json());
    const account = await admin('POST', '/accounts', { plan: kind === 'paid, empty balance' ? 'paid' : 'free' });
    const key = kind === 'no valid key' ? 'tg-not-a-key' : (await admin('POST', `/accounts/${account.id}/keys`, {})).key;
    let worst = 0;
    let polling = true;
    const poll = (async () => {
      while (polling) {
        const t = performance.now();
        await fetch(`${base}/healthz`);
        worst = Math.max(worst, performance.now() - t);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await new Promise((r) => setTimeout(r, 200));
    const t0 = performance.now();
    const res = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: BODY });
    const code = (await res.json()).error?.code;
    const ms = performance.now() - t0;
    polling = false;
    await poll;
    return { status: res.status, code, ms, worst };
  } finally {
    await stop(child);
    await stop(upstream.child);
  }
}

console.log('| request (9 MB of text) | answer | request ms | worst /healthz wait ms, per round |');
console.log('|---|---|---:|---|');
for (const kind of ['no valid key', 'free account', 'paid, empty balance']) {
  const rows = [];
  for (let i = 0; i < Number(args.rounds); i++) rows.push(await measure(kind));
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`| ${kind} | ${rows[0].status} ${rows[0].code} | ${median(rows.map((r) => r.ms)).toFixed(0)} | ${rows.map((r) => r.worst.toFixed(0)).join(' / ')} |`);
}
process.exit(0);
