// Runs the built `tollgate serve` as a child process, the way an operator does, and tells the
// test its URL (parsed from the "tollgate listening" log line). Children are tracked so a test's
// afterAll can kill whatever is still running.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';

export const root = new URL('../..', import.meta.url).pathname;
export const bin = join(root, 'dist/cli/tollgate.js');

export interface Server {
  proc: ChildProcessWithoutNullStreams;
  url: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Everything the process printed so far. */
  output(): string;
}

const children = new Set<ChildProcessWithoutNullStreams>();

export async function serve(configFile: string, env: NodeJS.ProcessEnv = process.env): Promise<Server> {
  const proc = spawn('node', [bin, 'serve', '--config', configFile, '--port', '0'], { env });
  children.add(proc);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => {
      children.delete(proc);
      resolve({ code, signal });
    }),
  );
  let out = '';
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /"url":"(http:\/\/[^"]+)"/.exec(out);
      if (m) resolve(m[1]!);
    });
    void exited.then(({ code }) => reject(new Error(`serve exited ${code}: ${out}`)));
  });
  return { proc, url, exited, output: () => out };
}

/** Kills every child still running (afterAll). */
export function killAll(): void {
  for (const child of children) child.kill('SIGKILL');
}

/**
 * tollgate.yaml for instances sharing PostgreSQL and Redis, as the distributed scenarios run them:
 * `providers`, `models` and `plans` are YAML flow lines for those sections (the free and paid
 * presets are always there).
 */
export function sharedStoresConfig(o: {
  publicUrl: string;
  storageUrl: string;
  limiterUrl: string;
  adminToken: string;
  reservationTtlMs: number;
  providers: string[];
  models: string[];
  plans?: string[];
}): string {
  return [
    `server: { port: 0, publicUrl: "${o.publicUrl}" }`,
    `storage: { url: "${o.storageUrl}" }`,
    `limiter: { url: "${o.limiterUrl}", onUnavailable: closed }`,
    `admin: { token: "${o.adminToken}" }`,
    'logging: { level: info }',
    `metering: { reservationTtlMs: ${o.reservationTtlMs}, renewEveryMs: 300 }`,
    'upstream: { connectTimeoutMs: 1000, firstByteTimeoutMs: 5000, totalTimeoutMs: 10000, idleTimeoutMs: 5000 }',
    'providers:',
    ...o.providers.map((l) => `  - ${l}`),
    'models:',
    ...o.models.map((l) => `  - ${l}`),
    'plans:',
    '  free: { preset: free-tier }',
    '  paid: { preset: pay-as-you-go }',
    ...(o.plans ?? []).map((l) => `  ${l}`),
  ].join('\n');
}

