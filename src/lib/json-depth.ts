// How deeply a JSON text nests, found without parsing it. JSON.parse takes any depth, but
// JSON.stringify and every recursive walk after it (zod, the token counter, the upstream request)
// overflow the stack at a few thousand levels: a 20 KB body of `[[[…]]]` became a 500 after its
// reservation was taken. One pass over the text, so a body is refused before anything walks it.

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;

/** Whether the JSON text opens more than `max` objects and arrays inside one another (strings skipped). */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      // To the closing quote, found with indexOf: a request's text is mostly inside strings, and
      // a loop over their characters here cost more than twice the JSON.parse after it (a 9 KB
      // chat conversation: 18.2 against 7.4 µs; with indexOf 1.4 µs, `node bench/json-scan.mjs`). A quote
      // after an odd run of backslashes is escaped and does not close the string (the run cannot
      // reach back past the opening quote). No closing quote: JSON.parse refuses the text anyway.
      let close = i;
      for (;;) {
        close = text.indexOf('"', close + 1);
        if (close === -1) return false;
        let k = close - 1;
        while (text.charCodeAt(k) === BACKSLASH) k--;
        if ((close - 1 - k) % 2 === 0) break;
      }
      i = close;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > max) return true;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}
