// A graceful stop (SIGTERM → RunningGateway.close()): streams in flight finish, and a request that
// still reaches the server meanwhile — on a keep-alive connection whose stream just ended, the way
// every SDK reuses its connections — is refused in SPEC §5's shape, not Fastify's own 503 body.
import { connect } from 'node:net';
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
  it('finishes the stream in flight and refuses the next request on its connection with shutting_down', async () => {
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
    release();
    for (let i = 0; i < 100 && !out.includes('data: [DONE]'); i++) await sleep(20);
    // The stream's connection is still open: the client sends its next request on it.
    socket.write('GET /v1/models HTTP/1.1\r\nHost: gw\r\n\r\n');
    await ended;
    await closed;

    const [first, second] = out.split(/(?=HTTP\/1\.1 )/);
    expect(first).toMatch(/^HTTP\/1\.1 200 /);
    expect(first).toContain('data: [DONE]');
    expect(second).toMatch(/^HTTP\/1\.1 503 /);
    const [head, text] = second!.split('\r\n\r\n') as [string, string];
    const requestId = /\r\nx-request-id: ([^\r]+)/i.exec(head)?.[1];
    expect(head).toMatch(/\r\nretry-after: 1\r\n/i);
    expect(JSON.parse(text)).toMatchObject({
      path: '/v1/models',
      requestId,
      statusCode: '503',
      error: { type: 'api_error', code: 'shutting_down' },
    });
  });
});
