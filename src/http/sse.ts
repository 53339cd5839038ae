// Writes a started chat stream as Server-Sent Events: the one implementation behind /v1 and the
// Playground. Errors before this point are ordinary JSON answers; from here on the answer is an
// event stream, so the reply is hijacked and written by hand with backpressure.
import type { FastifyReply } from 'fastify';
import type { StreamStarted } from '../core/gateway.js';

function waitForDrain(res: NodeJS.WritableStream & { once: Function; off: Function }): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}

/**
 * The reply's headers, then the stream's (limit headers), then the event-stream ones. Copied key by
 * key into a new object on purpose: written as one object literal of spreads, the objects it made
 * outlived their request by a scavenge or more: ~1.2 KB per streamed request went to the old
 * generation, scavenges took 3 ms instead of 2 and a full GC came every 40–60 s at 800 streams/s
 * (bench/README.md). Measured, not understood: V8's spread-into-literal path.
 */
function streamHeaders(fromReply: Record<string, string>, fromStream: Record<string, string>): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const k in fromReply) headers[k] = fromReply[k]!;
  for (const k in fromStream) headers[k] = fromStream[k]!;
  headers['content-type'] = 'text/event-stream; charset=utf-8';
  headers['cache-control'] = 'no-cache';
  headers.connection = 'keep-alive';
  // Tell proxies such as nginx not to buffer the stream.
  headers['x-accel-buffering'] = 'no';
  return headers;
}

export async function sendEventStream(reply: FastifyReply, started: StreamStarted): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, streamHeaders(reply.getHeaders() as Record<string, string>, started.headers));
  try {
    await started.pipe({
      send(data) {
        // A client that left is noticed by the gateway (ctx.client), which stops sending and drains.
        if (res.destroyed) return;
        if (!res.write(`data: ${data}\n\n`)) return waitForDrain(res);
      },
    });
  } finally {
    res.end();
  }
}
