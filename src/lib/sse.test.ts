import { describe, expect, it } from 'vitest';
import { decodeSse, type SseEvent } from './sse.js';

const enc = new TextEncoder();

async function* chunks(parts: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield p;
}

async function collect(parts: Uint8Array[]): Promise<SseEvent[]> {
  const out: SseEvent[] = [];
  for await (const e of decodeSse(chunks(parts))) out.push(e);
  return out;
}

const decodeString = (s: string) => collect([enc.encode(s)]);

/** Every way of cutting `bytes` into two pieces, and one byte per chunk. */
function splits(bytes: Uint8Array): Uint8Array[][] {
  const out: Uint8Array[][] = [];
  for (let i = 0; i <= bytes.length; i++) out.push([bytes.subarray(0, i), bytes.subarray(i)]);
  out.push(Array.from(bytes, (b) => Uint8Array.of(b)));
  return out;
}

const transcript = [
  ': keep-alive comment\r\n',
  'data: {"choices":[{"delta":{"content":"héllo 👋🏽"}}]}\r\n\r\n',
  'event: error\n',
  'data: {"error":{"message":"overloaded"}}\n\n',
  'id: 7\r',
  'data: line one\r',
  'data: line two\r\r',
  'data:no-space\n',
  'data:  two-spaces\n\n',
  'data: [DONE]\n\n',
].join('');

const expected: SseEvent[] = [
  { data: '{"choices":[{"delta":{"content":"héllo 👋🏽"}}]}' },
  { event: 'error', data: '{"error":{"message":"overloaded"}}' },
  { id: '7', data: 'line one\nline two' },
  { id: '7', data: 'no-space\n two-spaces' },
  { id: '7', data: '[DONE]' },
];

describe('decodeSse', () => {
  it('decodes a transcript mixing LF, CR and CRLF, comments, events and multi-line data', async () => {
    expect(await decodeString(transcript)).toEqual(expected);
  });

  it('gives the same events however the bytes are chunked', async () => {
    const bytes = enc.encode(transcript);
    for (const parts of splits(bytes)) {
      expect(await collect(parts)).toEqual(expected);
    }
  });

  it('does not end a line twice when CRLF is split between chunks', async () => {
    const events = await collect([enc.encode('data: a\r'), enc.encode('\ndata: b\r'), enc.encode('\n\r'), enc.encode('\n')]);
    expect(events).toEqual([{ data: 'a\nb' }]);
  });

  it('keeps the lines of one CRLF event together when they arrive in one chunk (Windows servers)', async () => {
    expect(await decodeString('event: delta\r\ndata: {"a":\r\ndata: 1}\r\n\r\n')).toEqual([{ event: 'delta', data: '{"a":\n1}' }]);
  });

  it('treats a lone CR at a chunk end followed by another line as a terminator', async () => {
    const events = await collect([enc.encode('data: a\r'), enc.encode('\r'), enc.encode('data: b\r\r')]);
    expect(events).toEqual([{ data: 'a' }, { data: 'b' }]);
  });

  it('reassembles a multi-byte character split across chunks at every byte', async () => {
    const bytes = enc.encode('data: 🦄€\n\n');
    for (const parts of splits(bytes)) {
      expect(await collect(parts)).toEqual([{ data: '🦄€' }]);
    }
  });

  it('discards an event not terminated by a blank line at end of stream', async () => {
    expect(await decodeString('data: complete\n\ndata: partial\n')).toEqual([{ data: 'complete' }]);
    expect(await decodeString('data: complete\n\ndata: partial')).toEqual([{ data: 'complete' }]);
  });

  it('dispatches nothing for blank lines, comments or events without data', async () => {
    expect(await decodeString('\n\n: just a comment\n\nevent: ping\n\nid: 3\n\n')).toEqual([]);
  });

  it('resets the event name after each event', async () => {
    expect(await decodeString('event: error\ndata: x\n\ndata: y\n\n')).toEqual([
      { event: 'error', data: 'x' },
      { data: 'y' },
    ]);
  });

  it('keeps an empty data line as an empty string and a field without colon as empty value', async () => {
    expect(await decodeString('data\n\ndata:\ndata:\n\n')).toEqual([{ data: '' }, { data: '\n' }]);
  });

  it('strips a leading BOM and ignores retry and unknown fields', async () => {
    expect(await decodeString('\uFEFFretry: 10\nfoo: bar\ndata: ok\n\n')).toEqual([{ data: 'ok' }]);
  });

  it("reads llama.cpp's `error:` field as an error event (its mid-stream failures before ggml-org/llama.cpp#16109)", async () => {
    expect(await decodeString('error: {"code":400,"message":"too long"}\n\ndata: [DONE]\n\n')).toEqual([
      { event: 'error', data: '{"code":400,"message":"too long"}' },
      { data: '[DONE]' },
    ]);
  });

  it('yields an event as soon as its blank line arrives', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let secondSent = false;
    async function* slow(): AsyncGenerator<Uint8Array> {
      yield enc.encode('data: first\n\n');
      await gate;
      secondSent = true;
      yield enc.encode('data: second\n\n');
    }
    const it = decodeSse(slow());
    const first = await it.next();
    expect(first.value).toEqual({ data: 'first' });
    expect(secondSent).toBe(false);
    release();
    expect((await it.next()).value).toEqual({ data: 'second' });
    expect((await it.next()).done).toBe(true);
  });

  it('decodes a line of megabytes arriving in small chunks in linear time', async () => {
    // Rescanning the unterminated rest on every chunk was quadratic: 4 MB in 1 KB chunks took 28 s,
    // an event-loop stall any upstream could cause with one long line.
    const piece = enc.encode('a'.repeat(1024));
    const parts = [enc.encode('data: '), ...Array.from({ length: 4096 }, () => piece), enc.encode('\n\n')];
    const started = performance.now();
    const events = await collect(parts);
    expect(events).toHaveLength(1);
    expect(events[0]!.data.length).toBe(4096 * 1024);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('propagates an error of the byte source', async () => {
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield enc.encode('data: a\n\n');
      throw new Error('socket gone');
    }
    const seen: string[] = [];
    await expect(async () => {
      for await (const e of decodeSse(failing())) seen.push(e.data);
    }).rejects.toThrow('socket gone');
    expect(seen).toEqual(['a']);
  });
});
