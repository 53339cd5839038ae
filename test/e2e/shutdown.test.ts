// A graceful stop (SIGTERM → RunningGateway.close()): streams in flight finish, and a request that
// still reaches the server meanwhile — on a connection that was busy, such as one pipelined behind
// a stream — is refused in SPEC §5's shape, not Fastify's own 503 body; and the close does not wait
// for a busy keep-alive connection to time out once nothing is in flight on it.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatStreamFixture } from '../helpers/fake-openai.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway();
});
afterAll(async () => t?.close());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('graceful shutdown', () => {
  it('finishes the stream in flight and refuses the request pipelined behind it with shutting_down', async () => {
    const { secret } = await t.newAccount();
    let release!: () => void;
    t.openai.enqueue({ kind: 'sse', events: chatStreamFixture, holdBeforeIndex: 2, release: new Promise<void>((r) => (release = r)) });
    const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true });
    const socket = connect(Number(new URL(t.url).port), '127.0.0.1');
    let out = '';
    socket.on('data', (d: Buffer) => (out += d.toString()));
    const ended = new Promise<void>((r) => socket.once('close', () => r()));
    socket.write(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${secret}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    for (let i = 0; i < 100 && !out.includes('data: '); i++) await sleep(20);

    const closed = t.gw.close();
    await sleep(50);
    // The client's next request, pipelined on the stream's connection: answered once the stream is.
    socket.write('GET /v1/models HTTP/1.1\r\nHost: gw\r\nOrigin: https://app.example\r\n\r\n');
    await sleep(50);
    release();
    await ended;
    await closed;

    const [first, second] = out.split(/(?=HTTP\/1\.1 )/);
    expect(first).toMatch(/^HTTP\/1\.1 200 /);
    expect(first).toContain('data: [DONE]');
    expect(second).toMatch(/^HTTP\/1\.1 503 /);
    const [head, text] = second!.split('\r\n\r\n') as [string, string];
    const requestId = /\r\nx-request-id: ([^\r]+)/i.exec(head)?.[1];
    expect(head).toMatch(/\r\nretry-after: 1\r\n/i);
    // A page's fetch can read the refusal, and its Retry-After, as any other /v1 answer.
    expect(head).toMatch(/\r\naccess-control-allow-origin: \*\r\n/i);
    expect(head).toMatch(/\r\naccess-control-expose-headers: [^\r]*retry-after/i);
    expect(JSON.parse(text)).toMatchObject({
      path: '/v1/models',
      requestId,
      statusCode: '503',
      error: { type: 'api_error', code: 'shutting_down' },
    });
  });

  it('drains first with server.shutdownDelayMs: /readyz answers 503 while requests are still served, then the stop goes on', async () => {
    const g = await startTestGateway({ config: { server: { host: '127.0.0.1', port: 0, publicUrl: 'http://gateway.test', shutdownDelayMs: 600 } } });
    try {
      const { secret } = await g.newAccount();
      expect((await fetch(`${g.url}/readyz`)).status).toBe(200);
      const started = Date.now();
      let drained = 0;
      const draining = g.gw.drain().then(() => (drained = Date.now()));
      const ready = await fetch(`${g.url}/readyz`);
      expect(ready.status).toBe(503);
      expect((await ready.json()).error).toMatchObject({ code: 'not_ready', message: 'The gateway is not ready: shutting down' });
      // Still serving: a client the load balancer has not yet moved elsewhere is answered.
      const answer = await g.client(secret).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
      expect(answer.choices[0]?.message.content).toBeTruthy();
      expect((await fetch(`${g.url}/healthz`)).status).toBe(200);
      await draining;
      expect(drained - started).toBeGreaterThanOrEqual(550);
      // A second drain (a repeated signal) waits no longer.
      const again = Date.now();
      await g.gw.drain();
      expect(Date.now() - again).toBeLessThan(100);
    } finally {
      await g.close();
    }
  });

  it('drains at once by default (shutdownDelayMs 0)', async () => {
    const g = await startTestGateway();
    try {
      const started = Date.now();
      await g.gw.drain();
      expect(Date.now() - started).toBeLessThan(100);
      expect((await fetch(`${g.url}/readyz`)).status).toBe(503);
    } finally {
      await g.close();
    }
  });

  it('closes once the last stream ends, without waiting for its keep-alive connection to idle out', async () => {
    const g = await startTestGateway();
    let socket: Socket | undefined;
    try {
      const { secret } = await g.newAccount();
      let release!: () => void;
      g.openai.enqueue({ kind: 'sse', events: chatStreamFixture, holdBeforeIndex: 2, release: new Promise<void>((r) => (release = r)) });
      const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true });
      socket = connect(Number(new URL(g.url).port), '127.0.0.1');
      let out = '';
      socket.on('data', (d: Buffer) => (out += d.toString()));
      socket.write(
        `POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${secret}\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      for (let i = 0; i < 100 && !out.includes('data: '); i++) await sleep(20);
      let closedAt = 0;
      const closed = g.gw.close().then(() => (closedAt = Date.now()));
      await sleep(50);
      release();
      for (let i = 0; i < 100 && !out.includes('data: [DONE]'); i++) await sleep(20);
      const doneAt = Date.now();
      // The client keeps its connection open and sends nothing more (Fastify's keep-alive timeout
      // is 72 s: the close used to wait that long, past most process managers' grace periods).
      await Promise.race([closed, sleep(5000)]);
      expect(closedAt, 'close() still waiting 5 s after the last stream ended').toBeGreaterThan(0);
      expect(closedAt - doneAt).toBeLessThan(2000);
      expect(out).toContain('data: [DONE]');
    } finally {
      socket?.destroy();
      await g.close();
    }
  });

  it('answers the requests in flight with Connection: close, so no client sends another on a connection about to close', async () => {
    // Answered after the stop began: with `keep-alive` (and Keep-Alive: timeout=72) a client's pool
    // sent its next request on the connection the server closed a moment later, and got a reset
    // (a proxy in front, a 502 for a POST) instead of opening one elsewhere.
    const g = await startTestGateway({ upstreamDelayMs: 400 });
    const sockets: Socket[] = [];
    try {
      const { secret } = await g.newAccount();
      const answers = [false, true].map((stream) => {
        const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream });
        const socket = connect(Number(new URL(g.url).port), '127.0.0.1');
        sockets.push(socket);
        let out = '';
        socket.on('data', (d: Buffer) => (out += d.toString()));
        socket.write(
          `POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${secret}\r\nContent-Type: application/json\r\n` +
            `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        );
        return new Promise<string>((r) => socket.once('close', () => r(out)));
      });
      for (let i = 0; i < 100 && g.openai.inFlight < 2; i++) await sleep(20);
      const closed = g.gw.close();
      const [plain, stream] = (await Promise.all(answers)) as [string, string];
      await closed;
      for (const out of [plain, stream]) {
        const head = out.split('\r\n\r\n')[0]!;
        expect(head).toMatch(/^HTTP\/1\.1 200 /);
        expect(head).toMatch(/^connection: close$/im);
        expect(head).not.toMatch(/^keep-alive:/im);
      }
      expect(plain).toContain('"credits_used"');
      expect(stream).toContain('data: [DONE]');
    } finally {
      for (const s of sockets) s.destroy();
      await g.close();
    }
  });

  it('answers a request whose headers were arriving when the stop began with shutting_down, not a reset', async () => {
    const g = await startTestGateway();
    const sockets: Socket[] = [];
    try {
      const port = Number(new URL(g.url).port);
      const open = async () => {
        const s = connect(port, '127.0.0.1');
        sockets.push(s);
        await new Promise((r) => s.once('connect', r));
        return s;
      };
      // A keep-alive connection that has served a request, and a new one: on each, the next
      // request's first header lines have arrived, the rest is on its way.
      const used = await open();
      let usedOut = '';
      used.on('data', (d: Buffer) => (usedOut += d.toString()));
      used.write('GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n');
      for (let i = 0; i < 100 && !usedOut.includes('\r\n\r\n'); i++) await sleep(20);
      expect(usedOut).toMatch(/^HTTP\/1.1 200/);
      usedOut = '';
      const fresh = await open();
      let freshOut = '';
      fresh.on('data', (d: Buffer) => (freshOut += d.toString()));
      for (const s of [used, fresh]) s.write('GET /v1/models HTTP/1.1\r\nHost: gw\r\n');
      await sleep(50);
      const closed = g.gw.close();
      await sleep(50);
      // Destroyed as request-less, the client saw its request reset mid-way; it gets the documented
      // 503 and its Retry-After instead.
      for (const s of [used, fresh]) if (!s.destroyed) s.write('Accept: application/json\r\n\r\n');
      const ended = (s: Socket) => new Promise<void>((r) => (s.readyState === 'closed' ? r() : s.once('close', () => r())));
      await Promise.race([Promise.all([ended(used), ended(fresh)]), sleep(3000)]);
      for (const out of [usedOut, freshOut]) {
        expect(out).toMatch(/^HTTP\/1.1 503/);
        expect(out).toMatch(/\r\nretry-after: 1\r\n/i);
        expect(out).toContain('"shutting_down"');
      }
      await Promise.race([closed, sleep(3000)]);
    } finally {
      for (const s of sockets) s.destroy();
      await g.close();
    }
  });

  it.each([
    ['sent nothing yet (a browser or load balancer pre-connecting)', ''],
    ['sent part of a request line', 'POST /v1/chat/comp'],
    ['sent headers without their end', 'GET /healthz HTTP/1.1\r\nHost: gw\r\n'],
  ])('does not wait for a connection that %s: it is closed within a second, while a stream in flight still finishes', async (_name, bytes) => {
    // Such a connection is not "idle" to Node, so server.close() left it to the request timeout:
    // close() took 60–90 s (the 60 s limit, checked every 30 s), past most process managers' grace.
    // One that sent nothing is closed at once; one whose request is arriving gets a second to
    // finish it (and its 503 shutting_down), then is closed.
    const g = await startTestGateway();
    const sockets: Socket[] = [];
    try {
      const { secret } = await g.newAccount();
      let release!: () => void;
      g.openai.enqueue({ kind: 'sse', events: chatStreamFixture, holdBeforeIndex: 2, release: new Promise<void>((r) => (release = r)) });
      const stream = fetch(`${g.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true }),
      }).then((res) => res.text());
      while (g.openai.inFlight === 0) await sleep(10);
      const quiet = connect(Number(new URL(g.url).port), '127.0.0.1');
      sockets.push(quiet);
      quiet.on('error', () => {});
      await new Promise((r) => quiet.once('connect', r));
      if (bytes) quiet.write(bytes);
      const ended = new Promise<void>((r) => quiet.once('close', () => r()));
      await sleep(50);
      let closedAt = 0;
      const closed = g.gw.close().then(() => (closedAt = Date.now()));
      await Promise.race([ended, sleep(2000)]);
      expect(quiet.destroyed, 'the quiet connection is still open 2 s into close()').toBe(true);
      release();
      expect(await stream).toContain('data: [DONE]');
      await Promise.race([closed, sleep(3000)]);
      expect(closedAt, 'close() still waiting 3 s after the stream ended').toBeGreaterThan(0);
    } finally {
      for (const s of sockets) s.destroy();
      await g.close();
    }
  });
});
