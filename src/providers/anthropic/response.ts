// An Anthropic Message (or its stream's pieces) in OpenAI's chat.completion terms: content, tool
// calls, finish reason and usage. https://docs.anthropic.com/en/api/messages
import type { JsonObject, Usage } from '../../core/types.js';
import { isObject } from '../../lib/is-object.js';
import { tokenCount } from '../common.js';

/**
 * OpenAI's finish_reason for an Anthropic stop_reason
 * (https://docs.anthropic.com/en/docs/build-with-claude/handling-stop-reasons). `pause_turn` (a
 * server tool's loop paused) ends the answer as it stands; an unknown future reason reads as `stop`.
 */
export function finishReason(stop: unknown): string {
  switch (stop) {
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    default:
      return 'stop';
  }
}

/**
 * Anthropic's usage, read: `input_tokens` counts only the prompt tokens after the last cache
 * breakpoint; the tokens written to and read from the prompt cache are reported beside it
 * (https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching#tracking-cache-performance).
 * The prompt is all three. Undefined when `input_tokens` is not a usable count.
 */
export function readUsage(u: unknown): { usage: Usage; openai: JsonObject } | undefined {
  if (!isObject(u)) return undefined;
  const input = tokenCount(u.input_tokens);
  if (input === undefined) return undefined;
  const written = tokenCount(u.cache_creation_input_tokens) ?? 0;
  const read = tokenCount(u.cache_read_input_tokens) ?? 0;
  const promptTokens = Math.min(input + written + read, Number.MAX_SAFE_INTEGER);
  const outputTokens = tokenCount(u.output_tokens) ?? 0;
  const usage: Usage = { promptTokens, outputTokens };
  // Reads at Anthropic's cache-hit price (price.cachedInput), writes at its cache-write one
  // (price.cacheWriteInput: 1.25 × input for the 5-minute cache, the only one request.ts lets through).
  if (read > 0) usage.cachedPromptTokens = read;
  if (written > 0) usage.cacheWritePromptTokens = written;
  const details: JsonObject = { cached_tokens: read };
  // OpenRouter's name for the tokens written to the cache, for a client that tracks them.
  if (written > 0) details.cache_write_tokens = written;
  const openai = {
    prompt_tokens: promptTokens,
    completion_tokens: outputTokens,
    total_tokens: Math.min(promptTokens + outputTokens, Number.MAX_SAFE_INTEGER),
    prompt_tokens_details: details,
  };
  return { usage, openai };
}

/** The Message's blocks as an OpenAI assistant message: text joined, thinking as `reasoning_content`, tool_use as tool calls. */
function messageOf(content: unknown[]): JsonObject {
  let text: string | null = null;
  let thinking = '';
  const toolCalls: JsonObject[] = [];
  for (const b of content) {
    if (!isObject(b)) continue;
    if (b.type === 'text' && typeof b.text === 'string') text = (text ?? '') + b.text;
    else if (b.type === 'thinking' && typeof b.thinking === 'string') thinking += b.thinking;
    else if (b.type === 'tool_use') {
      toolCalls.push({ id: b.id, type: 'function', function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } });
    }
    // redacted_thinking, server tools' blocks: nothing an OpenAI client can read.
  }
  const message: JsonObject = { role: 'assistant', content: text, refusal: null };
  // DeepSeek's name for reasoning beside the answer, which core counts as output (chat-output.ts deltaReasoning).
  if (thinking !== '') message.reasoning_content = thinking;
  if (toolCalls.length > 0) message.tool_calls = toolCalls;
  return message;
}

/** A whole Message as OpenAI's chat.completion, under the gateway's model id. */
export function toCompletion(message: JsonObject, content: unknown[], modelId: string, created: number): { body: JsonObject; usage: Usage | undefined } {
  const read = readUsage(message.usage);
  const body: JsonObject = {
    id: message.id ?? null,
    object: 'chat.completion',
    created,
    model: modelId,
    choices: [{ index: 0, message: messageOf(content), logprobs: null, finish_reason: finishReason(message.stop_reason) }],
  };
  if (read) body.usage = read.openai;
  return { body, usage: read?.usage };
}
