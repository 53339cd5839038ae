// Token counting with gpt-tokenizer (o200k_base, the encoding of current OpenAI models). Used for
// the worst-case estimate before a call and as the fallback when an upstream reports no usage.
// For non-OpenAI models it is an approximation; upstream usage always wins when present.
import { countTokens } from 'gpt-tokenizer';

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

export function countText(text: string): number {
  return text.length === 0 ? 0 : countTokens(text, PLAIN_TEXT);
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

function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const part of content) {
    if (part && typeof part === 'object') {
      const p = part as Record<string, unknown>;
      if (typeof p.text === 'string') text += p.text;
      else if (typeof p.refusal === 'string') text += p.refusal;
    }
  }
  return text;
}

/** Prompt tokens of a chat request: messages, names, tool calls, and tool definitions. */
export function countChatPrompt(body: Record<string, unknown>): number {
  let tokens = REPLY_PRIMING;
  const messages = Array.isArray(body.messages) ? body.messages : [];
  for (const m of messages) {
    if (!m || typeof m !== 'object') continue;
    const msg = m as Record<string, unknown>;
    tokens += TOKENS_PER_MESSAGE;
    if (typeof msg.role === 'string') tokens += countRole(msg.role);
    tokens += countText(contentText(msg.content));
    if (typeof msg.name === 'string') tokens += TOKENS_PER_NAME + countText(msg.name);
    if (Array.isArray(msg.tool_calls)) tokens += countText(JSON.stringify(msg.tool_calls));
  }
  // Tool and function definitions count toward the prompt; their exact framing is undocumented,
  // so the serialised JSON is a slight over-estimate, which is the safe side for a reservation.
  if (Array.isArray(body.tools) && body.tools.length > 0) tokens += countText(JSON.stringify(body.tools));
  if (Array.isArray(body.functions) && body.functions.length > 0) tokens += countText(JSON.stringify(body.functions));
  return tokens;
}

/** Input tokens of an embeddings request (`input`: string, string[], or token arrays). */
export function countEmbeddingInput(input: unknown): number {
  if (typeof input === 'string') return countText(input);
  if (!Array.isArray(input)) return 0;
  let tokens = 0;
  for (const item of input) {
    if (typeof item === 'string') tokens += countText(item);
    else if (typeof item === 'number') tokens += 1;
    else if (Array.isArray(item)) tokens += item.length;
  }
  return tokens;
}
