// What a chat answer may write and what it wrote: the output limits a request is held to, and the
// text and usage read from an answer or a stream's chunks, for metering (SPEC §7).
import type { ChatModelConfig } from '../config/schema.js';
import type { JsonText } from '../lib/json-text.js';
import type { AudioUse } from './pricing.js';
import { OUTPUT_CAP } from './shaping.js';
import { countText } from './tokens.js';
import type { JsonObject, Usage } from './types.js';

/** OpenAI's final usage chunk (`choices: []`), for usage the gateway counted itself. */
export function countedUsageChunk(last: JsonObject | undefined, modelId: string, usage: Usage, credits: number): JsonObject {
  return {
    id: last?.id ?? null,
    object: 'chat.completion.chunk',
    created: last?.created ?? null,
    model: modelId,
    choices: [],
    usage: { prompt_tokens: usage.promptTokens, completion_tokens: usage.outputTokens, total_tokens: usage.promptTokens + usage.outputTokens },
    meta: { usage: { credits_used: credits } },
  };
}

/**
 * A limit above the model's output ceiling is lowered to it: the worst case reserves no more than
 * the ceiling, so an upstream that allows more (gpt-4.1's 32,768, an o-series model's 100,000) could
 * otherwise spend past the reservation, a prepaid balance or a plan's limit (SPEC §7).
 */
export function capOutput(model: ChatModelConfig, body: JsonObject, clamped: string[]): void {
  let cut = false;
  for (const field of ['max_tokens', 'max_completion_tokens'] as const) {
    const asked = body[field];
    if (typeof asked === 'number' && asked > model.maxOutputTokens) {
      body[field] = model.maxOutputTokens;
      cut = true;
    }
  }
  if (!cut) return;
  // A plan's cap above the ceiling may have clamped it already: the header names the final value.
  const i = clamped.findIndex((c) => c.startsWith(`${OUTPUT_CAP}=`));
  clamped.splice(i < 0 ? clamped.length : i, 1, `${OUTPUT_CAP}=${model.maxOutputTokens}`);
}

/** An actual cost as charged: the worst case stands in for one no counter can hold (negative, fractional, past 2^53). */
export function usableCredits(credits: number, worstCase: number): number {
  return Number.isSafeInteger(credits) && credits >= 0 ? credits : worstCase;
}

/**
 * The most output tokens a chat request allows, all its choices together. Both limits may be set,
 * and an upstream may honour either (Ollama and older llama.cpp servers read only max_tokens): the
 * larger is what the request allows, never past the model's ceiling.
 */
export function outputAllowance(model: ChatModelConfig, body: JsonObject): number {
  const asked = largest(body.max_completion_tokens, body.max_tokens);
  const maxOutput = Math.min(asked ?? model.maxOutputTokens, model.maxOutputTokens);
  const choices = typeof body.n === 'number' ? body.n : 1;
  return maxOutput * choices;
}

/**
 * Tokens of a Predicted Outputs `prediction` (`{ type: 'content', content: text or text parts }`),
 * counted up to `cap`. The part of a prediction the model does not use is billed as output
 * (OpenAI's `rejected_prediction_tokens`, in completion_tokens) on top of what max_tokens allows:
 * the allowance holds it, or an answer built on a long prediction was charged only up to
 * max_tokens and the operator paid the rest.
 * https://platform.openai.com/docs/guides/predicted-outputs
 */
export function predictionTokens(body: JsonObject, cap: number): number {
  const prediction = body.prediction;
  if (prediction === null || typeof prediction !== 'object') return 0;
  const content = (prediction as { content?: unknown }).content;
  if (typeof content === 'string') return countText(content, cap);
  if (!Array.isArray(content)) return 0;
  let tokens = 0;
  for (const part of content) {
    const text = (part as { text?: unknown } | null)?.text;
    if (typeof text === 'string') tokens += countText(text, cap - tokens);
    if (tokens > cap) break;
  }
  return tokens;
}

/**
 * Whether a chat request has audio in its prompt (an `input_audio` part) and asks for audio out
 * (`modalities` naming `audio`, or an `audio` output format): its tokens may then be the dearer
 * audio ones, which the worst case must price (pricing.ts chatWorstCase).
 */
export function audioUse(body: JsonObject): AudioUse {
  const modalities = body.modalities;
  const output = (Array.isArray(modalities) && modalities.includes('audio')) || (body.audio !== undefined && body.audio !== null);
  let input = false;
  if (Array.isArray(body.messages)) {
    for (const m of body.messages) {
      const content = (m as { content?: unknown } | null)?.content;
      if (Array.isArray(content) && content.some((p) => (p as { type?: unknown } | null)?.type === 'input_audio')) {
        input = true;
        break;
      }
    }
  }
  return { input, output };
}

/** The larger of two optional token limits (already checked to be positive integers or absent). */
function largest(a: unknown, b: unknown): number | undefined {
  if (typeof a !== 'number') return typeof b === 'number' ? b : undefined;
  return typeof b === 'number' ? Math.max(a, b) : a;
}


/**
 * The output a chunk's choices wrote: content, a refusal (structured outputs answer with
 * `refusal` instead of content) and tool calls, the legacy `function_call` included — all of it
 * written under max_tokens and billed as output.
 */
export function deltaText(chunk: JsonObject): string {
  const choices = chunk.choices;
  if (!Array.isArray(choices)) return '';
  let text = '';
  for (const c of choices) {
    // A choice that is not an object (a broken upstream's null) wrote nothing; read as one, it threw.
    const delta = (c as { delta?: { content?: unknown; refusal?: unknown; tool_calls?: unknown; function_call?: unknown } } | null)?.delta;
    if (typeof delta?.content === 'string') text += delta.content;
    if (typeof delta?.refusal === 'string') text += delta.refusal;
    if (Array.isArray(delta?.tool_calls)) for (const call of delta.tool_calls) text += toolCallText(call);
    text += functionText(delta?.function_call);
  }
  return text;
}

/**
 * What a streamed tool call's delta wrote: its name and its piece of the arguments. Not the delta's
 * JSON: a stream sends the arguments a token a chunk, each in its own ~40-character wrapper, which
 * counted ten times the output written and cut a 480-token call off as past a 512-token limit.
 */
function toolCallText(call: unknown): string {
  return functionText((call as { function?: unknown } | null)?.function);
}

/** A function call's name and arguments (a tool call's `function`, or the legacy `function_call`). */
function functionText(f: unknown): string {
  const fn = f as { name?: unknown; arguments?: unknown } | null | undefined;
  return (typeof fn?.name === 'string' ? fn.name : '') + (typeof fn?.arguments === 'string' ? fn.arguments : '');
}

/**
 * The reasoning a chunk's choices wrote beside their content: output the upstream bills at the
 * output price, so output the gateway counts when the upstream's usage does not come (a client
 * that left before it, an upstream that sends none). DeepSeek and llama.cpp name it
 * `reasoning_content`
 * (https://api-docs.deepseek.com/guides/thinking_mode_api_example_streaming); vLLM renamed it
 * `reasoning`, as OpenRouter and Ollama call it, and may send both with the same text
 * (https://github.com/vllm-project/vllm/pull/27752): one of the two is counted.
 * Apart from deltaText: deepseek-reasoner's first versions did not bound their reasoning by
 * max_tokens (its docs now count it in), nor may other servers, so it is not held to the relay's
 * output length limit.
 */
export function deltaReasoning(chunk: JsonObject): string {
  const choices = chunk.choices;
  if (!Array.isArray(choices)) return '';
  let text = '';
  for (const c of choices) text += reasoningOf((c as { delta?: unknown } | null)?.delta);
  return text;
}

/**
 * Reasoning text as kept for counting: `more` is added only while the text is at most `max`
 * characters long. No o200k_base token is longer than 128 characters, so past `allowance * 128`
 * characters the count is past the allowance, and no more than the allowance is ever charged
 * (gateway chargedOutput): the rest changes nothing. Unbounded, an upstream streaming reasoning
 * without end (which the relay does not cut off: see deltaReasoning) grew it to 1.3 GB and V8's
 * longest string, whose RangeError ended the stream as an internal_error.
 */
export function keptForCount(text: string, more: string, max: number): string {
  return text.length > max || more === '' ? text : text + more;
}

function reasoningOf(m: unknown): string {
  const r = m as { reasoning_content?: unknown; reasoning?: unknown } | null | undefined;
  if (typeof r?.reasoning_content === 'string') return r.reasoning_content;
  return typeof r?.reasoning === 'string' ? r.reasoning : '';
}

export function countCompletionOutput(body: JsonText): number {
  const choices = body.get('choices');
  if (!Array.isArray(choices)) return 0;
  let text = '';
  for (const c of choices) {
    const m = (c as { message?: { content?: unknown; refusal?: unknown; tool_calls?: unknown; function_call?: unknown } } | null)?.message;
    text += reasoningOf(m);
    if (typeof m?.content === 'string') text += m.content;
    if (typeof m?.refusal === 'string') text += m.refusal;
    if (Array.isArray(m?.tool_calls)) text += JSON.stringify(m.tool_calls);
    text += functionText(m?.function_call);
  }
  return countText(text);
}
