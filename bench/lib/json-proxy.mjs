// A Fastify JSON proxy on Tollgate's own upstream client: parse the request, send it on, parse the
// answer, add a `meta` field, reply with the object (a stream is relayed as it came). No auth, no
// metering, no ledger. It measures what Tollgate's HTTP stack costs by itself, so the distance from
// it to Tollgate is the gateway's own work (quick-overhead.mjs --stack). Run as its own process
// after `npm run build`:
//
//   node bench/lib/json-proxy.mjs http://127.0.0.1:UPSTREAM_PORT   → prints {"port":N} on its first stdout line
import { Readable } from 'node:stream';
import Fastify from 'fastify';
import { createUpstreamClient } from '../../dist/src/upstream/client.js';

const target = process.argv[2];
if (!target) {
  console.error('usage: node bench/lib/json-proxy.mjs <upstream origin>');
  process.exit(2);
}
const client = createUpstreamClient({ connectTimeoutMs: 5000, firstByteTimeoutMs: 60_000, totalTimeoutMs: 600_000, idleTimeoutMs: 60_000, connectionsPerOrigin: 128 });
const headers = { 'content-type': 'application/json', authorization: 'Bearer sk-bench' };
const app = Fastify({ logger: false });
app.post('/v1/chat/completions', async (req, reply) => {
  const res = await client.request({ provider: 'bench', method: 'POST', url: `${target}/v1/chat/completions`, headers, body: JSON.stringify({ ...req.body, model: 'gpt-4o-mini' }) });
  // A stream goes back as it came (Tollgate relays unchanged events as sent, too).
  if (req.body.stream === true) return reply.header('content-type', 'text/event-stream').send(Readable.from(res.body));
  const body = JSON.parse(await res.text());
  body.meta = { usage: { credits_used: 1 } };
  return reply.header('x-request-id', req.id).send(body);
});
await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(`${JSON.stringify({ port: app.server.address().port })}\n`);
