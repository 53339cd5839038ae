// Bare pass-through proxy (the floor for any Node gateway): node:http in, the request body read
// whole, undici Pool out, the response body streamed back. No auth, no parsing. Run as its own process:
//
//   node bench/lib/proxy.mjs http://127.0.0.1:UPSTREAM_PORT   → prints {"port":N} on its first stdout line
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';

export function runProxy(target) {
  const pool = new Pool(target, { connections: 128 });
  const server = http.createServer(async (req, res) => {
    try {
      const upHeaders = { 'content-type': req.headers['content-type'] ?? 'application/json' };
      if (req.headers['content-length']) upHeaders['content-length'] = req.headers['content-length'];
      // The request body read whole first, as any gateway reads a JSON body. Handed to undici as
      // the request stream itself, it kept ~3 KB per request alive past the young generation:
      // 11 ms scavenges and a 15 ms half-load p99 (bench/promotion.mjs --target proxy; 2026-11-25).
      const chunks = [];
      for await (const c of req) chunks.push(c);
      const up = await pool.request({ method: req.method, path: req.url, headers: upHeaders, body: Buffer.concat(chunks) });
      const headers = { 'content-type': up.headers['content-type'] ?? 'application/json' };
      if (up.headers['content-length']) headers['content-length'] = up.headers['content-length'];
      res.writeHead(up.statusCode, headers);
      for await (const c of up.body) res.write(c);
      res.end();
    } catch (err) {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: String(err) } }));
    }
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (!process.argv[2]) {
    console.error('usage: node bench/lib/proxy.mjs <upstream origin>');
    process.exit(2);
  }
  runProxy(process.argv[2]);
}
