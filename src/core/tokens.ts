// Token counting with gpt-tokenizer: o200k_base, the encoding of current OpenAI chat models, and
// cl100k_base for embeddings (every OpenAI embedding model, text-embedding-3-* and ada-002, bills
// its input in it). Used for the worst-case estimate before a call and as the fallback when an
// upstream reports no usage. For non-OpenAI models it is an approximation; upstream usage always
// wins when present.
import { countTokens } from 'gpt-tokenizer';
import { countTokens as countCl100k } from 'gpt-tokenizer/encoding/cl100k_base';
import { TextMemo } from '../lib/text-memo.js';

// OpenAI's published accounting for chat: every message costs a few framing tokens and every
// reply is primed with a few more (openai-cookbook "How to count tokens with tiktoken").
const TOKENS_PER_MESSAGE = 3;
const TOKENS_PER_NAME = 1;
const REPLY_PRIMING = 3;

/**
 * Text that spells a special token (`<|endoftext|>`, `<|im_start|>`…) is ordinary text to count:
 * the upstream APIs treat it so, and gpt-tokenizer's default would throw on it (a 500 for a prompt
 * that merely quotes one). An empty disallow list also skips the library's scan for them.
 */
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

/**
 * The longest stretch handed to the tokenizer whole. gpt-tokenizer's merge step takes time with the
 * square of one pre-tokenized piece's length, and a piece is any run of letters (CJK included) or
 * of punctuation: 10,000 letters with no space took 105 ms, 80,000 took 2.6 s, 10,000 CJK
 * characters without punctuation 350 ms — one request could stall the event loop for minutes.
 */
const SLICE = 128;
/** Text between two cuts is counted in one call when it has boundaries this far apart at most. */
const WINDOW = 4096;

/**
 * Whether the tokenizer's pre-tokenization (o200k_base) always breaks a piece before `i`, so that
 * counting the text on either side separately gives the same total: before a space that follows
 * a non-space (a piece only ever begins with a space), or after a newline followed by anything but
 * a space or `/` (only a punctuation piece runs on past its newlines, and only into more newlines
 * or `/`). src/core/tokens.test.ts checks the equality on prose, code and CJK.
 */
function breaksBefore(text: string, i: number): boolean {
  const c = text.charCodeAt(i);
  const prev = text.charCodeAt(i - 1);
  if (c === 0x20) return !isSpace(prev);
  return prev === 0x0a && c !== 0x2f && !isSpace(c);
}

function isSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0xa0 || c === 0x3000 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x1680 || c === 0x202f || c === 0x205f || c === 0xfeff;
}

/**
 * Whether the text has SLICE characters in a row of one kind — all spaces or all non-spaces — the
 * only shape in which a pre-tokenized piece can be that long. One tight pass; most prompts have none.
 */
function hasLongRun(text: string): boolean {
  let start = 0;
  let space = text.charCodeAt(0) <= 0x20;
  for (let i = 1; i < text.length; i++) {
    const s = text.charCodeAt(i) <= 0x20;
    if (s !== space) {
      space = s;
      start = i;
    } else if (i - start >= SLICE) return true;
  }
  return false;
}

/**
 * Tokens of `text`. With a `cap`, counting may stop once it has passed it: the answer is then some
 * number above `cap` (the request it prices cannot be admitted anyway), found in time linear in
 * the cap rather than the text — a 10 MB prompt from a free key took 1.6 s of the event loop.
 */
export function countText(text: string, cap = Number.POSITIVE_INFINITY): number {
  return countWith(countTokens, o200kMemo, text, cap);
}

/** One encoding's whole-text count. */
type Encoding = (text: string, options: typeof PLAIN_TEXT) => number;

/**
 * Counts of texts seen lately, one memo per encoding. A chat client sends the whole conversation
 * again on every turn, and most requests repeat a system prompt or tool definitions, so most of a
 * real prompt's text was counted before: looking a text up costs about a tenth of counting it
 * or less (a fresh 4 KB string from the request body: 7.2 against 75 µs, 1 KB 1.5 against 20 µs;
 * `node bench/token-memo.mjs`). Below MEMO_MIN_CHARS a count costs about a microsecond and is not
 * kept; above MEMO_MAX_CHARS a text would take a large share of the memo for one entry.
 */
const MEMO_CHARS = 2_000_000;
const MEMO_MIN_CHARS = 64;
const MEMO_MAX_CHARS = 65_536;
const o200kMemo = new TextMemo(MEMO_CHARS);
const cl100kMemo = new TextMemo(MEMO_CHARS);

/**
 * countText in a given encoding, through its memo. Only a complete count is kept: one that
 * stopped at `cap` is some number above it, which is an answer for this cap only.
 */
function countWith(encode: Encoding, memo: TextMemo, text: string, cap: number): number {
  if (text.length < MEMO_MIN_CHARS || text.length > MEMO_MAX_CHARS) return countAll(encode, text, cap);
  const known = memo.get(text);
  if (known !== undefined) return known;
  const n = countAll(encode, text, cap);
  if (n <= cap) memo.set(text, n);
  return n;
}

/**
 * countWith without the memo. The cuts below are exact for cl100k_base too: its pieces, like
 * o200k_base's, only ever begin with a space and never run on past a newline into anything but
 * more whitespace (src/core/tokens.test.ts checks both).
 */
function countAll(encode: Encoding, text: string, cap: number): number {
  if (text.length <= SLICE) return text.length === 0 ? 0 : encode(text, PLAIN_TEXT);
  // The common case, whole: a prompt of ordinary text up to WINDOW long.
  if (text.length <= WINDOW && !hasLongRun(text)) return encode(text, PLAIN_TEXT);
  // Counted in stretches cut where the tokenizer breaks pieces anyway (exact), each at most WINDOW
  // long; a run of SLICE characters with no such break is cut where it stands, which may count a
  // token or two more than the whole would (the safe side for a reservation) but keeps the cost
  // linear in the text's length.
  let tokens = 0;
  let start = 0;
  let lastBreak = 0;
  for (let i = 1; i < text.length; i++) {
    if (breaksBefore(text, i)) {
      if (i - start > WINDOW && lastBreak > start) {
        tokens += encode(text.slice(start, lastBreak), PLAIN_TEXT);
        if (tokens > cap) return tokens;
        start = lastBreak;
      }
      lastBreak = i;
    } else if (i - Math.max(lastBreak, start) >= SLICE && !isLowSurrogate(text.charCodeAt(i))) {
      tokens += encode(text.slice(start, i), PLAIN_TEXT);
      if (tokens > cap) return tokens;
      start = lastBreak = i;
    }
  }
  return tokens + encode(text.slice(start), PLAIN_TEXT);
}

/** The second half of a UTF-16 pair: never cut before it. */
function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

/**
 * Role names come from a handful of values (`system`, `user`, `assistant`, `tool`, `developer`…),
 * so their counts are remembered instead of tokenizing one per message. Bounded, in case a client
 * sends arbitrary roles (the upstream decides whether they are valid).
 */
const roleTokens = new Map<string, number>();
const ROLE_MEMO_SIZE = 32;

function countRole(role: string): number {
  let n = roleTokens.get(role);
  if (n === undefined) {
    n = countText(role);
    if (roleTokens.size < ROLE_MEMO_SIZE && role.length <= 32) roleTokens.set(role, n);
  }
  return n;
}

/**
 * What an image part counts before the upstream says, unless the model says otherwise (its
 * `imageInputTokens`): OpenAI's largest high-detail figure for gpt-4o (a 2048×768 image: eight
 * 512-pixel tiles × 170 + 85). The free tier refuses image input outright.
 */
export const IMAGE_PART_TOKENS = 1445;
const IMAGE_PARTS = new Set(['image_url', 'input_image', 'image']);

/**
 * Tokens of a message's content: text parts as text; images at `imageTokens` each; files and audio
 * by their JSON's length. Each text part is counted apart, plus a token for each boundary between
 * two: upstreams join parts differently (vLLM with newlines, templates that loop over the parts
 * with nothing), and this is at least either (src/core/tokens.test.ts checks both). Counted as
 * one run of text, 40,000 parts of "a" were 5,000 tokens where vLLM's prompt had 79,999, and the
 * settlement spent 16× the reservation.
 */
function countContent(content: unknown, imageTokens: number, cap: number): number {
  if (typeof content === 'string') return countText(content, cap);
  if (!Array.isArray(content)) return 0;
  let texts = 0;
  let tokens = 0;
  for (const part of content) {
    if (!part || typeof part !== 'object') continue;
    const p = part as Record<string, unknown>;
    const text = typeof p.text === 'string' ? p.text : typeof p.refusal === 'string' ? p.refusal : undefined;
    if (text !== undefined) tokens += (texts++ === 0 ? 0 : 1) + countText(text, cap - tokens);
    else if (typeof p.type === 'string' && IMAGE_PARTS.has(p.type)) tokens += imageTokens;
    // A file or audio part, mostly base64: a quarter token per character of its JSON, an
    // over-estimate found without the tokenizer (1 MB of base64 took it seconds).
    else tokens += Math.ceil(JSON.stringify(p).length / 4);
    // Past the cap, the rest cannot make the request admissible (countText says why).
    if (tokens > cap) return tokens;
  }
  return tokens;
}

/**
 * Whether a message holds a part that is not text (an image, a file, audio). Those are counted at
 * a worst case (imageInputTokens, a quarter token per character of a file's JSON) that says what
 * they may cost, not what they take of a context window, so a prompt with them is not held to
 * the model's contextTokens (the upstream decides).
 */
export function hasNonTextParts(body: Record<string, unknown>): boolean {
  if (!Array.isArray(body.messages)) return false;
  for (const m of body.messages) {
    const content = (m as { content?: unknown } | null)?.content;
    if (!Array.isArray(content)) continue;
    for (const part of content) {
      const type = (part as { type?: unknown } | null)?.type;
      if (type !== 'text' && type !== 'refusal') return true;
    }
  }
  return false;
}

/**
 * The reasoning a message carries, under either name (vLLM renamed `reasoning_content` to
 * `reasoning`; a client may send both, the same text): the longer, so that an empty one beside
 * the other hides nothing.
 */
function reasoningSent(msg: Record<string, unknown>): string {
  const a = typeof msg.reasoning_content === 'string' ? msg.reasoning_content : '';
  const b = typeof msg.reasoning === 'string' ? msg.reasoning : '';
  return b.length > a.length ? b : a;
}

/** The serialised JSON of a structured field, counted as text: a slight over-estimate of its real framing. */
function countJson(value: unknown, cap = Number.POSITIVE_INFINITY): number {
  return value === undefined || value === null ? 0 : countText(JSON.stringify(value), cap);
}

/**
 * Prompt tokens of a chat request: messages (names, tool and function calls), tool and function
 * definitions, and the response format's schema — everything the upstream bills as input. What this
 * misses, the settlement charges anyway, but past the reservation: a request could then spend more
 * than its plan has left (a 100,000-token `response_format` schema once counted as nothing).
 */
export function countChatPrompt(body: Record<string, unknown>, imageTokens = IMAGE_PART_TOKENS, cap = Number.POSITIVE_INFINITY): number {
  return countChatPromptParts(body, imageTokens, cap).total;
}

/**
 * countChatPrompt, with the messages' share apart: the part OpenAI counts as this does (tool and
 * function definitions and a response schema are counted as their JSON, an over-estimate). The
 * messages stop counting past `messagesCap` too (a context window): `messages` is then some number
 * above it, as `total` is above `cap` when that stops the count.
 */
export function countChatPromptParts(
  body: Record<string, unknown>,
  imageTokens = IMAGE_PART_TOKENS,
  cap = Number.POSITIVE_INFINITY,
  messagesCap = Number.POSITIVE_INFINITY,
): { messages: number; total: number } {
  let tokens = REPLY_PRIMING;
  /**
   * Reasoning sent back with earlier assistant turns, apart: priced (an upstream may bill it) but
   * not held against the context window — the templates of the common reasoning models (Qwen3 on
   * vLLM, DeepSeek-R1, gpt-oss) drop it from turns before the last user message, and a client that
   * pushes each returned message back into its history got context_length_exceeded for text the
   * model never saw.
   */
  let reasoningTokens = 0;
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const stop = Math.min(cap, messagesCap);
  for (const m of messages) {
    if (!m || typeof m !== 'object') continue;
    const msg = m as Record<string, unknown>;
    tokens += TOKENS_PER_MESSAGE;
    if (typeof msg.role === 'string') tokens += countRole(msg.role);
    tokens += countContent(msg.content, imageTokens, stop - tokens);
    if (typeof msg.name === 'string') tokens += TOKENS_PER_NAME + countText(msg.name, stop - tokens);
    // An assistant turn's reasoning sent back: DeepSeek asks for it within a tool-calling turn, and
    // vLLM's and Ollama's chat templates render it into the prompt, which the upstream bills.
    // Uncounted, 600,000 tokens of it rode on a one-word prompt past the free tier's reservation.
    const reasoning = reasoningSent(msg);
    if (reasoning !== '') reasoningTokens += countText(reasoning, cap - tokens - reasoningTokens);
    if (Array.isArray(msg.tool_calls)) tokens += countJson(msg.tool_calls, stop - tokens);
    if (msg.function_call !== undefined) tokens += countJson(msg.function_call, stop - tokens);
    // Past the cap, the rest cannot make the request admissible (countText says why).
    if (tokens > stop || tokens + reasoningTokens > cap) return { messages: tokens, total: tokens + reasoningTokens };
  }
  const inMessages = tokens;
  tokens += reasoningTokens;
  // Tool and function definitions count toward the prompt; their exact framing is undocumented,
  // so the serialised JSON is a slight over-estimate, which is the safe side for a reservation.
  if (Array.isArray(body.tools) && body.tools.length > 0) tokens += countJson(body.tools, cap - tokens);
  if (Array.isArray(body.functions) && body.functions.length > 0) tokens += countJson(body.functions, cap - tokens);
  if (body.response_format !== undefined && (body.response_format as { type?: unknown } | null)?.type !== 'text') tokens += countJson(body.response_format, cap - tokens);
  return { messages: inMessages, total: tokens };
}

/** Tokens of embedding input text, in cl100k_base (see the top of this file). */
export function countEmbeddingText(text: string, cap = Number.POSITIVE_INFINITY): number {
  return countWith(countCl100k, cl100kMemo, text, cap);
}

/**
 * Input tokens of an embeddings request (`input`: string, string[], or token arrays), in the
 * encoding OpenAI bills embeddings in: counted in o200k_base, Hindi text came to a quarter of what
 * text-embedding-3-small charges (Russian, Arabic, Korean about half), so a burst of such requests
 * reserved a quarter of its cost and spent past a plan's limit several times over.
 *
 * With the index of the first input longer than `perInput` tokens (the model's window: OpenAI's
 * embedding models take 8,192 tokens an input and refuse the request past it). Counting stops
 * there, so one 10 MB input costs the count of a window, not of the whole text.
 */
export function countEmbeddingInputs(
  input: unknown,
  cap = Number.POSITIVE_INFINITY,
  perInput = Number.POSITIVE_INFINITY,
): { tokens: number; tooLong: number | undefined } {
  const items: readonly unknown[] = typeof input === 'string' ? [input] : Array.isArray(input) && typeof input[0] !== 'number' ? input : [];
  // A lone token array is one input.
  if (items.length === 0 && Array.isArray(input)) return input.length > perInput ? { tokens: input.length, tooLong: 0 } : { tokens: input.length, tooLong: undefined };
  let tokens = 0;
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    const left = cap - tokens;
    let n = 0;
    if (typeof item === 'string') n = countEmbeddingText(item, Math.min(left, perInput));
    else if (typeof item === 'number') n = 1;
    else if (Array.isArray(item)) n = item.length;
    tokens += n;
    if (n > perInput) return { tokens, tooLong: i };
    if (tokens > cap) return { tokens, tooLong: undefined };
  }
  return { tokens, tooLong: undefined };
}
