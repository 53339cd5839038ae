// A pino destination for tests: every JSON line written to it, parsed, pushed onto `into`.
import { Writable } from 'node:stream';

export function jsonLines<T = Record<string, unknown>>(into: T[]): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) into.push(JSON.parse(l) as T);
      done();
    },
  });
}
