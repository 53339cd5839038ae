// The one Server-Sent Events decoder. Follows the WHATWG "event stream interpretation" rules
// (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):
// lines end in CRLF, LF or CR; `data` lines join with \n; `:` lines are comments; an event is
// dispatched by a blank line and an unterminated event at end of stream is discarded.
// Bytes may split anywhere (inside a UTF-8 character, between CR and LF); the decoder keeps state.
// `[DONE]` and other sentinels are plain data: interpreting them is the caller's job.
// One departure, for a dialect an upstream speaks: an `error:` field (see line()).

export interface SseEvent {
  /** The `event:` field; undefined when the event named none (the spec's default "message"). */
  event?: string;
  data: string;
  /** The `id:` field, when the event set one. */
  id?: string;
}

const LF = 10;
const CR = 13;

/**
 * The decoder as a push parser: feed it the body's chunks, take the events each chunk completed.
 * A caller that already loops over the body needs no extra async layer per event (decodeSse is
 * the iterator form).
 */
export class SseDecoder {
  private readonly decoder = new TextDecoder('utf-8', { ignoreBOM: false });
  private buf = '';
  // A chunk ended in CR: a LF opening the next chunk belongs to the same line terminator.
  private skipLeadingLf = false;
  private data: string[] = [];
  private event: string | undefined;
  private id: string | undefined;
  private ready: SseEvent[] = [];

  /** The events this chunk completed (often none or one; then a shared empty array, hence readonly). */
  push(chunk: Uint8Array): readonly SseEvent[] {
    this.feed(this.decoder.decode(chunk, { stream: true }));
    return this.take();
  }

  /** At the end of the body: what the last bytes completed. An unterminated event is discarded, as the spec says. */
  end(): readonly SseEvent[] {
    const rest = this.decoder.decode();
    if (rest.length > 0) this.feed(rest);
    return this.take();
  }

  private take(): readonly SseEvent[] {
    if (this.ready.length === 0) return EMPTY;
    const out = this.ready;
    this.ready = [];
    return out;
  }

  private line(text: string): void {
    if (text.length === 0) {
      if (this.data.length > 0) {
        const e: SseEvent = { data: this.data.length === 1 ? this.data[0]! : this.data.join('\n') };
        if (this.event !== undefined) e.event = this.event;
        if (this.id !== undefined) e.id = this.id;
        this.ready.push(e);
      }
      this.data = [];
      this.event = undefined;
      return;
    }
    const colon = text.indexOf(':');
    if (colon === 0) return;
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? '' : text.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        break;
      case 'event':
        this.event = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.id = value;
        break;
      // llama.cpp's server wrote a failure mid-stream (a prompt past the context size) as an
      // `error:` field, then `data: [DONE]`, until ggml-org/llama.cpp#16109 (2025-09). Ignored as
      // the spec says, the stream read as a whole, empty answer: the prompt was charged and the
      // server's message lost. Read as `event: error` with that data.
      case 'error':
        this.event = 'error';
        this.data.push(value);
        break;
      // `retry` and unknown fields are ignored: reconnection is not ours to do.
    }
  }

  /**
   * Scans only the new text: the unterminated rest of earlier chunks (`buf`) is known to hold no line
   * end, and is joined to its line once, when the line ends. Joining and rescanning it on every chunk
   * was quadratic: a 4 MB line arriving in 1 KB chunks held the event loop for 28 s.
   */
  private feed(text: string): void {
    let start = 0;
    if (this.skipLeadingLf && text.length > 0) {
      if (text.charCodeAt(0) === LF) start = 1;
      this.skipLeadingLf = false;
    }
    const n = text.length;
    for (let i = start; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c !== LF && c !== CR) continue;
      const rest = text.slice(start, i);
      if (this.buf.length === 0) {
        this.line(rest);
      } else {
        this.line(this.buf + rest);
        this.buf = '';
      }
      if (c === CR) {
        if (i + 1 < n) {
          if (text.charCodeAt(i + 1) === LF) i++;
        } else {
          this.skipLeadingLf = true;
        }
      }
      start = i + 1;
    }
    if (start < n) this.buf += start === 0 ? text : text.slice(start);
  }
}

const EMPTY: readonly SseEvent[] = [];

export async function* decodeSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new SseDecoder();
  for await (const chunk of body) yield* decoder.push(chunk);
  yield* decoder.end();
}
