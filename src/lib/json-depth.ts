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
      // To the closing quote; an escaped one (\" or \\\") does not close the string.
      for (i++; i < text.length; i++) {
        const s = text.charCodeAt(i);
        if (s === BACKSLASH) i++;
        else if (s === QUOTE) break;
      }
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > max) return true;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}
