// The one Server-Sent Events decoder. Follows the WHATWG "event stream interpretation" rules
// (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):
// lines end in CRLF, LF or CR; `data` lines join with \n; `:` lines are comments; an event is
// dispatched by a blank line and an unterminated event at end of stream is discarded.
// Bytes may split anywhere (inside a UTF-8 character, between CR and LF); the decoder keeps state.
// `[DONE]` and other sentinels are plain data: interpreting them is the caller's job.

export interface SseEvent {
  /** The `event:` field; undefined when the event named none (the spec's default "message"). */
  event?: string;
  data: string;
  /** The `id:` field, when the event set one. */
  id?: string;
}

const LF = 10;
const CR = 13;

export async function* decodeSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder('utf-8', { ignoreBOM: false });
  let buf = '';
  // A chunk ended in CR: a LF opening the next chunk belongs to the same line terminator.
  let skipLeadingLf = false;
  let data: string[] = [];
  let event: string | undefined;
  let id: string | undefined;
  const ready: SseEvent[] = [];

  const line = (text: string): void => {
    if (text.length === 0) {
      if (data.length > 0) {
        const e: SseEvent = { data: data.length === 1 ? data[0]! : data.join('\n') };
        if (event !== undefined) e.event = event;
        if (id !== undefined) e.id = id;
        ready.push(e);
      }
      data = [];
      event = undefined;
      return;
    }
    const colon = text.indexOf(':');
    if (colon === 0) return;
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? '' : text.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    switch (field) {
      case 'data':
        data.push(value);
        break;
      case 'event':
        event = value;
        break;
      case 'id':
        if (!value.includes('\0')) id = value;
        break;
      // `retry` and unknown fields are ignored: reconnection is not ours to do.
    }
  };

  const feed = (text: string): void => {
    buf = buf.length === 0 ? text : buf + text;
    let start = 0;
    if (skipLeadingLf && buf.length > 0) {
      if (buf.charCodeAt(0) === LF) start = 1;
      skipLeadingLf = false;
    }
    const n = buf.length;
    for (let i = start; i < n; i++) {
      const c = buf.charCodeAt(i);
      if (c !== LF && c !== CR) continue;
      line(buf.slice(start, i));
      if (c === CR) {
        if (i + 1 < n) {
          if (buf.charCodeAt(i + 1) === LF) i++;
        } else {
          skipLeadingLf = true;
        }
      }
      start = i + 1;
    }
    buf = start === 0 ? buf : buf.slice(start);
  };

  for await (const chunk of body) {
    feed(decoder.decode(chunk, { stream: true }));
    if (ready.length > 0) {
      yield* ready;
      ready.length = 0;
    }
  }
  const rest = decoder.decode();
  if (rest.length > 0) feed(rest);
  // Whatever an unterminated event left in `buf` / `data` is discarded, as the spec says.
  if (ready.length > 0) yield* ready;
}
