// A throwaway redis-server on loopback for the benchmarks that measure the Redis stores (the
// binary from Debian's redis-server package).
import { spawn } from 'node:child_process';
import { createConnection, createServer } from 'node:net';

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function pings(port) {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => done(chunk.toString().startsWith('+PONG')));
  });
}

/** A redis-server on 127.0.0.1 (no persistence, files in `dir`), answering PING; `stop()` ends it. */
export async function startRedis(dir) {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: 'ignore',
  });
  await new Promise((resolve, reject) => {
    child.once('error', (err) =>
      reject(err.code === 'ENOENT' ? new Error('redis-server not found: apt-get install redis-server') : err),
    );
    child.once('spawn', resolve);
  });
  const deadline = Date.now() + 10_000;
  while (!(await pings(port))) {
    if (Date.now() > deadline) throw new Error('redis-server did not answer PING');
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', resolve);
        process.kill(child.pid, 'SIGTERM');
      }),
  };
}
