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

export async function sendEventStream(reply: FastifyReply, started: StreamStarted): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    ...(reply.getHeaders() as Record<string, string>),
    ...started.headers,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    // Tell proxies such as nginx not to buffer the stream.
    'x-accel-buffering': 'no',
  });
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
