// A JSON object kept as the text it arrived in. An upstream's answer passes through the gateway
// with two or three top-level members read or replaced (`usage`, `model`, `meta`) instead of being
// parsed into objects and serialised again. For a short chat answer the two cost the same; for an
// embeddings answer — thousands of numbers — the round trip cost 2.4 times the scan (648 against
// 269 µs for 1,536 dimensions, bench/README.md), and it rewrote the upstream's numbers.
//
// Soundness is the invariant: `JsonText.parse` accepts a text only if JSON.parse would, and only if
// it is an object; what the scanner does not take (nesting deeper than MAX_DEPTH) it leaves to
// JSON.parse, which is the slow path, never a different answer. The members
// it records are the top level's; like JSON.parse, the last of duplicate keys is the one that counts.
// Grammar: https://www.rfc-editor.org/rfc/rfc8259 (JSON.parse's own, ECMA-404).

import { isObject } from './is-object.js';

const MAX_DEPTH = 512;

interface Member {
  /** Where the member's value starts and ends in the text. */
  start: number;
  end: number;
}

export class JsonText {
  /** Replaced or added members, serialised when the text is written out. */
  private readonly edits = new Map<string, unknown>();

  private constructor(
    private readonly text: string,
    /** Top-level members by key (the last of duplicates). */
    private readonly members: Map<string, Member>,
  ) {}

  /**
   * The object `text` holds, or undefined when it is not a JSON object. Invalid JSON, and valid
   * JSON the scanner does not take, both go through JSON.parse, which decides.
   */
  static parse(text: string): JsonText | undefined {
    const members = scanObject(text);
    if (members) return new JsonText(text, members);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return undefined;
    }
    return isObject(value) ? JsonText.of(value) : undefined;
  }

  /** An object built in code (serialised once, here). */
  static of(value: Record<string, unknown>): JsonText {
    const text = JSON.stringify(value);
    // JSON.stringify's output is JSON the scanner takes unless nested past MAX_DEPTH; then the
    // object is flattened to its top-level members, each serialised alone (always scannable).
    const members = scanObject(text);
    if (members) return new JsonText(text, members);
    const flat = new JsonText('{}', new Map());
    for (const [k, v] of Object.entries(value)) if (v !== undefined) flat.set(k, v as {} | null);
    return flat;
  }

  /** A top-level member's value (parsed from its text), or undefined when absent. */
  get(key: string): unknown {
    if (this.edits.has(key)) return this.edits.get(key);
    const m = this.members.get(key);
    return m === undefined ? undefined : JSON.parse(this.text.slice(m.start, m.end));
  }

  /**
   * Whether a top-level member is an array, read from its first character: no parse (an
   * embeddings answer's `data` is thousands of numbers).
   */
  isArray(key: string): boolean {
    if (this.edits.has(key)) return Array.isArray(this.edits.get(key));
    const m = this.members.get(key);
    if (m === undefined) return false;
    let i = m.start;
    while (i < m.end && /\s/.test(this.text[i]!)) i++;
    return this.text.charCodeAt(i) === 0x5b;
  }

  /** A top-level member's text as it arrived (edits aside), or undefined when absent: no parse. */
  textOf(key: string): string | undefined {
    const m = this.members.get(key);
    return m === undefined ? undefined : this.text.slice(m.start, m.end);
  }

  /** Replaces a top-level member's value, or adds the member at the end. */
  set(key: string, value: {} | null): void {
    this.edits.set(key, value);
  }

  /** The object as JSON text: the original with the edits spliced in. */
  toString(): string {
    if (this.edits.size === 0) return this.text;
    const replaced: Array<[Member, string]> = [];
    const added: string[] = [];
    for (const [key, value] of this.edits) {
      const json = JSON.stringify(value);
      const m = this.members.get(key);
      if (m) replaced.push([m, json]);
      else added.push(`${JSON.stringify(key)}:${json}`);
    }
    replaced.sort((a, b) => a[0].start - b[0].start);
    let out = '';
    let at = 0;
    for (const [m, json] of replaced) {
      out += this.text.slice(at, m.start) + json;
      at = m.end;
    }
    // Added members go before the closing brace (the text's last `}`: only whitespace follows it).
    const close = this.text.lastIndexOf('}');
    out += this.text.slice(at, close);
    if (added.length > 0) out += (this.members.size > 0 ? ',' : '') + added.join(',');
    return out + this.text.slice(close);
  }

  /** The parsed object (for JSON.stringify and tests; the request path uses toString()). */
  toJSON(): Record<string, unknown> {
    return JSON.parse(this.toString()) as Record<string, unknown>;
  }
}

// Character codes.
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

const isWs = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
const isDigit = (c: number) => c >= ZERO && c <= NINE;
const isHex = (c: number) => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);

// What the scanner expects next.
const KEY_OR_END = 0; // after `{`
const KEY = 1; // after a comma in an object
const VALUE_OR_END = 2; // after `[`
const VALUE = 3; // after a colon, or a comma in an array
const SEPARATOR = 4; // after a value: a comma or the container's end

/** Set by scanString: whether the string it last scanned holds an escape. */
let sawEscape = false;

/**
 * Validates `text` as one JSON object and returns its top-level members' value spans, or undefined
 * (not an object, not valid, or nested deeper than MAX_DEPTH). Iterative: `open` holds, per open
 * container, whether it is an object.
 */
function scanObject(text: string): Map<string, Member> | undefined {
  const n = text.length;
  let i = skipWs(text, 0);
  if (text.charCodeAt(i) !== LBRACE) return undefined;
  i += 1;
  const members = new Map<string, Member>();
  const open: boolean[] = [true];
  let key = ''; // the top-level member being read
  let valueStart = 0; // where its value starts
  let expect = KEY_OR_END;

  while (true) {
    while (i < n && isWs(text.charCodeAt(i))) i += 1;
    if (i >= n) return undefined;
    const c = text.charCodeAt(i);

    // Each branch either moves on (continue) or falls through: `c` closes a container.
    if (expect === SEPARATOR) {
      const inObject = open[open.length - 1]!;
      if (c === COMMA) {
        expect = inObject ? KEY : VALUE;
        i += 1;
        continue;
      }
      if (c !== (inObject ? RBRACE : RBRACKET)) return undefined;
    } else if (expect === KEY_OR_END || expect === KEY) {
      if (c !== RBRACE || expect !== KEY_OR_END) {
        if (c !== QUOTE) return undefined;
        const end = scanString(text, i);
        if (end < 0) return undefined;
        if (open.length === 1) {
          // A key with escapes is decoded exactly by JSON.parse (rare).
          key = sawEscape ? (JSON.parse(text.slice(i, end)) as string) : text.slice(i + 1, end - 1);
        }
        i = skipWs(text, end);
        if (text.charCodeAt(i) !== COLON) return undefined;
        i += 1;
        expect = VALUE;
        continue;
      }
    } else if (c !== RBRACKET || expect !== VALUE_OR_END) {
      // A value.
      if (open.length === 1) valueStart = i;
      if (c === LBRACE || c === LBRACKET) {
        if (open.length >= MAX_DEPTH) return undefined;
        open.push(c === LBRACE);
        i += 1;
        expect = c === LBRACE ? KEY_OR_END : VALUE_OR_END;
        continue;
      }
      const end = c === QUOTE ? scanString(text, i) : c === MINUS || isDigit(c) ? scanNumber(text, i) : scanLiteral(text, i, c);
      if (end < 0) return undefined;
      i = end;
      // A top-level member's value ended (a later duplicate key replaces it).
      if (open.length === 1) members.set(key, { start: valueStart, end: i });
      expect = SEPARATOR;
      continue;
    }

    // `c` closes the innermost container.
    open.pop();
    i += 1;
    if (open.length === 0) break;
    if (open.length === 1) members.set(key, { start: valueStart, end: i });
    expect = SEPARATOR;
  }
  // The top-level object closed at i: only whitespace may follow.
  return skipWs(text, i) === n ? members : undefined;
}

function skipWs(text: string, i: number): number {
  while (i < text.length && isWs(text.charCodeAt(i))) i += 1;
  return i;
}

/**
 * A run of characters a JSON string holds as they are: anything but a quote, a backslash or a
 * control character. Matched by the regexp engine past the first few characters of a string: a
 * model's answer is one long string, and with every character in the loop below a 2 KB answer's
 * parse took 5.7 µs against 3.3 (medians of 5 runs, 2026-12-05); the benchmark's short answer
 * 1.8 µs either way.
 */
const PLAIN_RUN = /[^"\\\u0000-\u001f]*/y;
/** Characters of a string scanned one by one before the regexp takes over: keys and short values end sooner. */
const SHORT_STRING = 16;

/** The index after the string starting at `i` (a quote), or -1 if it is not a valid JSON string. */
function scanString(text: string, i: number): number {
  const n = text.length;
  sawEscape = false;
  i += 1;
  const short = i + SHORT_STRING;
  while (i < n) {
    if (i >= short) {
      PLAIN_RUN.lastIndex = i;
      PLAIN_RUN.test(text); // always matches, if only the empty run
      i = PLAIN_RUN.lastIndex;
      if (i >= n) return -1;
    }
    const c = text.charCodeAt(i);
    if (c === QUOTE) return i + 1;
    if (c < 0x20) return -1;
    if (c === BACKSLASH) {
      sawEscape = true;
      const e = text.charCodeAt(i + 1);
      if (e === 0x75) {
        // \uXXXX
        for (let k = 2; k < 6; k++) if (!isHex(text.charCodeAt(i + k))) return -1;
        i += 6;
        continue;
      }
      // \" \\ \/ \b \f \n \r \t
      if (e !== QUOTE && e !== BACKSLASH && e !== 0x2f && e !== 0x62 && e !== 0x66 && e !== 0x6e && e !== 0x72 && e !== 0x74) return -1;
      i += 2;
      continue;
    }
    i += 1;
  }
  return -1;
}

/** The index after the number starting at `i`, or -1: -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)? */
function scanNumber(text: string, i: number): number {
  if (text.charCodeAt(i) === MINUS) i += 1;
  const first = text.charCodeAt(i);
  if (first === ZERO) i += 1;
  else if (isDigit(first)) while (isDigit(text.charCodeAt(i))) i += 1;
  else return -1;
  if (text.charCodeAt(i) === DOT) {
    i += 1;
    if (!isDigit(text.charCodeAt(i))) return -1;
    while (isDigit(text.charCodeAt(i))) i += 1;
  }
  const e = text.charCodeAt(i);
  if (e === 0x65 || e === 0x45) {
    i += 1;
    const s = text.charCodeAt(i);
    if (s === PLUS || s === MINUS) i += 1;
    if (!isDigit(text.charCodeAt(i))) return -1;
    while (isDigit(text.charCodeAt(i))) i += 1;
  }
  return i;
}

function scanLiteral(text: string, i: number, c: number): number {
  const word = c === 0x74 ? 'true' : c === 0x66 ? 'false' : c === 0x6e ? 'null' : undefined;
  return word !== undefined && text.startsWith(word, i) ? i + word.length : -1;
}
