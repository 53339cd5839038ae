// An OpenAI chat request as Anthropic's Messages API takes it (`POST /v1/messages`).
// Anthropic refuses fields it does not know, so this is a translation, not a pass-through: each
// OpenAI field is written in Anthropic's terms, dropped when it is only a hint Anthropic has no
// word for (seed, penalties, logit_bias, …), or refused with 400 naming it when dropping it would
// change what the caller gets back (n > 1, JSON mode, logprobs, audio).
// https://docs.anthropic.com/en/api/messages
import type { ModelConfig } from '../../config/schema.js';
import type { JsonObject } from '../../core/types.js';
import { GatewayError } from '../../errors/gateway-error.js';
import { isObject } from '../../lib/is-object.js';

/**
 * Anthropic's sampling temperature runs 0–1, OpenAI's 0–2. A value above 1 is sent as 1 (the most
 * random Anthropic offers) rather than halved: halving would change every common value (0.7 → 0.35)
 * for the sake of the rare one past 1.
 */
const MAX_TEMPERATURE = 1;

/** Fields of Anthropic's own that an OpenAI client may add to its body, sent on as they are. */
const NATIVE_FIELDS = ['top_k', 'thinking'] as const;

const refuse = (param: string, detail: string) => new GatewayError('invalid_request', { vars: { detail: `${param}: ${detail}` }, param });

/** Anthropic's request body for an OpenAI chat body (already validated by core/requests.ts). */
export function toAnthropicRequest(model: ModelConfig, body: JsonObject, stream: boolean): JsonObject {
  refuseUnkeepable(body);
  const { system, messages } = translateMessages(body.messages);
  // OpenAI answers a conversation of system messages alone; Anthropic refuses an empty `messages`
  // with a message about its own field, so the caller is told in OpenAI's terms.
  if (messages.length === 0) throw refuse('messages', 'this model needs at least one user or assistant message with content, not only system or developer ones');
  const req: JsonObject = { model: model.upstream ?? model.id, max_tokens: maxTokens(model, body), messages };
  if (system !== undefined) req.system = system;
  // "Use only temperature OR top_p, not both": Claude 4.5 and later answer 400 to the two together
  // (https://platform.claude.com/docs/en/about-claude/models/migration-guide), and OpenAI clients
  // often send both (top_p: 1 as a default). Temperature is kept — of top_p Anthropic says "you
  // usually only need to use temperature" — so older models lose only a top_p beside it.
  if (typeof body.temperature === 'number') req.temperature = Math.min(body.temperature, MAX_TEMPERATURE);
  else if (typeof body.top_p === 'number') req.top_p = body.top_p;
  const stop = stopSequences(body.stop);
  if (stop !== undefined) req.stop_sequences = stop;
  if (typeof body.user === 'string' && body.user !== '') req.metadata = { user_id: body.user };
  for (const field of NATIVE_FIELDS) if (body[field] !== undefined && body[field] !== null) req[field] = body[field];
  const tools = translateTools(body.tools);
  if (tools !== undefined) {
    req.tools = tools;
    const choice = toolChoice(body.tool_choice, body.parallel_tool_calls);
    if (choice !== undefined) req.tool_choice = choice;
  }
  if (stream) req.stream = true;
  return req;
}

/**
 * Anthropic requires `max_tokens`. The request's own limit (after the plan's cap and the model's
 * ceiling, core/shaping.ts and chat-output.ts capOutput), else the model's `maxOutputTokens`: the
 * output the worst case reserved for a request that named none, so the two agree.
 */
function maxTokens(model: ModelConfig, body: JsonObject): number {
  const asked = body.max_completion_tokens ?? body.max_tokens;
  if (typeof asked === 'number') return asked;
  return model.kind === 'chat' ? model.maxOutputTokens : 4096;
}

/**
 * OpenAI's `stop` as Anthropic's stop_sequences. Anthropic refuses a sequence that is empty or only
 * whitespace ("stop_sequences: each stop sequence must contain non-whitespace"), and `"\n"` is a
 * stop OpenAI clients often send: passed on, the caller got Anthropic's 400 about stop_sequences, a
 * field it never sent, and a stop that is not a string the same. Refused here naming the caller's
 * field; left out instead, the answer would run on past where the caller asked it to stop.
 */
function stopSequences(stop: unknown): string[] | undefined {
  if (stop === undefined || stop === null) return undefined;
  const list: unknown = typeof stop === 'string' ? [stop] : stop;
  if (!Array.isArray(list)) throw refuse('stop', 'expected a string or a list of strings');
  list.forEach((s: unknown, i) => {
    const at = typeof stop === 'string' ? 'stop' : `stop[${i}]`;
    if (typeof s !== 'string') throw refuse(at, 'expected a string');
    if (blank(s)) throw refuse(at, 'this model takes no stop sequence that is empty or only whitespace (such as "\\n")');
  });
  return list.length === 0 ? undefined : (list as string[]);
}

/** Fields whose meaning Anthropic's API cannot keep: dropped, the caller would get another answer than it asked for. */
function refuseUnkeepable(body: JsonObject): void {
  if (typeof body.n === 'number' && body.n > 1) throw refuse('n', 'this model answers with one choice only (n: 1)');
  const format = body.response_format;
  if (isObject(format) && format.type !== 'text') {
    throw refuse('response_format', `this model has no JSON mode (${String(format.type)}); describe the JSON in the prompt, or use a tool whose parameters are the schema`);
  }
  if (body.logprobs === true) throw refuse('logprobs', 'this model does not return log probabilities');
  const modalities = body.modalities;
  if (Array.isArray(modalities) && modalities.some((m) => m !== 'text')) throw refuse('modalities', 'this model answers in text only');
  if (body.audio !== undefined && body.audio !== null) throw refuse('audio', 'this model answers in text only');
  if (body.functions !== undefined && body.functions !== null) throw refuse('functions', 'use tools (the legacy functions field is not translated)');
  if (body.function_call !== undefined && body.function_call !== null) throw refuse('function_call', 'use tool_choice (the legacy function_call field is not translated)');
}

type Block = JsonObject;
interface Turn {
  role: 'user' | 'assistant';
  content: Block[];
}

/**
 * System and developer messages become the top-level `system` (Anthropic has no such role), joined
 * with blank lines — or, when a part carries `cache_control` (Anthropic's prompt-cache marker), as
 * its list of text blocks so the marker stays. The rest become turns; consecutive turns of one role
 * are merged, so a run of tool results is one user turn right after the assistant's tool_use turn,
 * as Anthropic requires (https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/implement-tool-use).
 */
function translateMessages(raw: unknown): { system: string | Block[] | undefined; messages: Turn[] } {
  const list = Array.isArray(raw) ? raw : [];
  const system: Block[] = [];
  const turns: Turn[] = [];
  const push = (role: Turn['role'], content: Block[]) => {
    if (content.length === 0) return;
    const last = turns.at(-1);
    if (last?.role === role) last.content.push(...content);
    else turns.push({ role, content });
  };
  list.forEach((m: unknown, i) => {
    const msg = m as JsonObject;
    const at = `messages[${i}]`;
    switch (msg.role) {
      case 'system':
      case 'developer':
        system.push(...textBlocks(msg.content, at));
        return;
      case 'user':
        push('user', userBlocks(msg.content, at));
        return;
      case 'assistant':
        push('assistant', assistantBlocks(msg, at));
        return;
      case 'tool': {
        if (typeof msg.tool_call_id !== 'string' || msg.tool_call_id === '') throw refuse(`${at}.tool_call_id`, 'a tool message names the tool call it answers');
        const result: Block = { type: 'tool_result', tool_use_id: msg.tool_call_id };
        // One text of its parts: a part of whitespace alone (a line break between two) is kept in
        // it, and only a result that is all whitespace is left out.
        const text = textBlocks(msg.content, at, true)
          .map((b) => b.text)
          .join('');
        if (!blank(text)) result.content = text;
        push('user', [result]);
        return;
      }
      default:
        throw refuse(`${at}.role`, `role '${String(msg.role)}' is not translated for this model; use tool messages`);
    }
  });
  const cached = system.some((b) => b.cache_control !== undefined);
  return {
    system: system.length === 0 ? undefined : cached ? system : system.map((b) => b.text).join('\n\n'),
    messages: turns,
  };
}

/**
 * Anthropic refuses a text block with no text but whitespace ("text content blocks must contain
 * non-whitespace text"); an earlier answer of only "\n\n", sent back with the history, is one. Such
 * text says nothing, so it is left out.
 */
const blank = (text: string) => text.trim() === '';

/**
 * Text of a system, developer or tool message: a string, or text parts (another part is refused).
 * `joined`: the parts are joined into one text, so a blank one is kept (only an empty one goes).
 */
function textBlocks(content: unknown, at: string, joined = false): Block[] {
  if (typeof content === 'string') return blank(content) ? [] : [{ type: 'text', text: content }];
  if (!Array.isArray(content)) return [];
  return content.flatMap((p: JsonObject, j) => {
    if (p.type !== 'text') throw refuse(`${at}.content[${j}]`, `a ${String(p.type)} part is not accepted here, only text`);
    return textBlock(p, `${at}.content[${j}]`, joined);
  });
}

/** A text part as a text block; Anthropic refuses empty and blank ones, so such a part is left out (unless `joined`: see textBlocks). */
function textBlock(p: JsonObject, at: string, joined = false): Block[] {
  if (typeof p.text !== 'string') throw refuse(`${at}.text`, 'expected a string');
  if (joined ? p.text === '' : blank(p.text)) return [];
  return [withCache({ type: 'text', text: p.text }, p, at)];
}

/**
 * The part's prompt-cache marker on its block: the OpenAI shape has none, but Anthropic's clients
 * send it so. Only the 5-minute cache: Anthropic bills a 1-hour write at 2 × input, above the one
 * `price.cacheWriteInput` the gateway charges writes at (1.25 × input), so such writes were served
 * below their cost.
 */
function withCache(block: Block, part: JsonObject, at: string): Block {
  if (isObject(part.cache_control)) {
    const ttl = part.cache_control.ttl;
    if (ttl !== undefined && ttl !== '5m') throw refuse(`${at}.cache_control.ttl`, `only the 5-minute prompt cache ('5m') is offered here, not ${JSON.stringify(ttl)}`);
    block.cache_control = part.cache_control;
  }
  return block;
}

function userBlocks(content: unknown, at: string): Block[] {
  if (typeof content === 'string') return blank(content) ? [] : [{ type: 'text', text: content }];
  if (!Array.isArray(content)) return [];
  return content.flatMap((p: JsonObject, j) => {
    const where = `${at}.content[${j}]`;
    if (p.type === 'text') return textBlock(p, where);
    if (p.type === 'image_url') return [withCache(imageBlock(p.image_url, where), p, where)];
    throw refuse(where, `a ${String(p.type)} part is not translated for this model (text and image_url are)`);
  });
}

/**
 * An image_url part: an http(s) URL as a `url` source, a base64 data: URI as a `base64` source
 * (https://docs.anthropic.com/en/docs/build-with-claude/vision). Its media_type is one of
 * image/jpeg, image/png, image/gif and image/webp; the `image/jpg` many clients write is named so.
 */
function imageBlock(image: unknown, at: string): Block {
  const url = typeof image === 'string' ? image : isObject(image) && typeof image.url === 'string' ? image.url : undefined;
  if (url === undefined) throw refuse(`${at}.image_url`, 'expected { url }');
  const data = /^data:([\w.+-]+\/[\w.+-]+);base64,(.*)$/s.exec(url);
  if (data) {
    const type = data[1]!.toLowerCase();
    return { type: 'image', source: { type: 'base64', media_type: type === 'image/jpg' ? 'image/jpeg' : type, data: data[2]! } };
  }
  if (/^https?:\/\//i.test(url)) return { type: 'image', source: { type: 'url', url } };
  throw refuse(`${at}.image_url.url`, 'an image is an http(s) URL or a base64 data: URI (data:image/png;base64,…)');
}

/** An assistant turn: its text, then a tool_use block per tool call (arguments parsed: Anthropic takes an object). */
function assistantBlocks(msg: JsonObject, at: string): Block[] {
  const blocks: Block[] = [];
  const content = msg.content;
  if (typeof content === 'string') {
    if (!blank(content)) blocks.push({ type: 'text', text: content });
  } else if (Array.isArray(content)) {
    content.forEach((p: JsonObject, j) => {
      const where = `${at}.content[${j}]`;
      if (p.type === 'text') blocks.push(...textBlock(p, where));
      // A refusal the model wrote earlier is its text of that turn.
      else if (p.type === 'refusal' && typeof p.refusal === 'string' && !blank(p.refusal)) blocks.push({ type: 'text', text: p.refusal });
      else throw refuse(where, `a ${String(p.type)} part is not accepted in an assistant message`);
    });
  }
  const calls = msg.tool_calls;
  if (calls === undefined || calls === null) return blocks;
  if (!Array.isArray(calls)) throw refuse(`${at}.tool_calls`, 'expected a list');
  calls.forEach((c: unknown, k) => {
    const where = `${at}.tool_calls[${k}]`;
    const call = isObject(c) ? c : {};
    const fn = isObject(call.function) ? call.function : {};
    if (typeof call.id !== 'string' || typeof fn.name !== 'string') throw refuse(where, 'a tool call has an id and a function name');
    blocks.push({ type: 'tool_use', id: call.id, name: fn.name, input: toolInput(fn.arguments, `${where}.function.arguments`) });
  });
  return blocks;
}

function toolInput(args: unknown, at: string): JsonObject {
  // Some clients send no arguments, or an empty string, for a tool without parameters.
  if (args === undefined || args === null || args === '') return {};
  let input: unknown;
  try {
    input = typeof args === 'string' ? JSON.parse(args) : args;
  } catch {
    throw refuse(at, 'the arguments are not valid JSON');
  }
  if (!isObject(input)) throw refuse(at, 'the arguments are not a JSON object');
  return input;
}

function translateTools(raw: unknown): Block[] | undefined {
  if (!Array.isArray(raw) || raw.length === 0) return undefined;
  return raw.map((t: JsonObject, i) => {
    const fn = isObject(t.function) ? t.function : undefined;
    if (t.type !== 'function' || fn === undefined || typeof fn.name !== 'string') {
      throw refuse(`tools[${i}]`, `only function tools are translated for this model (a ${String(t.type)} tool is not)`);
    }
    const tool: Block = { name: fn.name, input_schema: inputSchema(fn.parameters, `tools[${i}].function.parameters`) };
    if (typeof fn.description === 'string') tool.description = fn.description;
    return withCache(tool, t, `tools[${i}]`);
  });
}

/**
 * A tool's parameters as Anthropic's input_schema, which must say `type` (400 "input_schema.type:
 * Field required"); OpenAI takes a schema without it, and MCP servers and agent frameworks send
 * such schemas. An object schema is what both mean, so a schema that says no type is given it.
 * Parameters that are not an object schema are refused naming them: one that is not an object at
 * all was replaced by an empty schema (the model was told the tool takes nothing), and another
 * type went on to Anthropic's 400 about `input_schema`, a field the caller never sent.
 */
function inputSchema(parameters: unknown, at: string): JsonObject {
  if (parameters === undefined || parameters === null) return { type: 'object', properties: {} };
  if (!isObject(parameters)) throw refuse(at, 'expected a JSON Schema object ({ type: "object", properties })');
  if (parameters.type === undefined) return { type: 'object', ...parameters };
  if (parameters.type !== 'object') throw refuse(`${at}.type`, "a tool's parameters are an object schema: type 'object'");
  return parameters;
}

/**
 * OpenAI's tool_choice in Anthropic's terms (https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/implement-tool-use#forcing-tool-use);
 * `parallel_tool_calls: false` is Anthropic's `disable_parallel_tool_use`, which `none` does not take.
 */
function toolChoice(choice: unknown, parallel: unknown): JsonObject | undefined {
  let out: JsonObject | undefined;
  if (choice === undefined || choice === null) out = parallel === false ? { type: 'auto' } : undefined;
  else if (choice === 'auto') out = { type: 'auto' };
  else if (choice === 'required') out = { type: 'any' };
  else if (choice === 'none') return { type: 'none' };
  else if (isObject(choice) && choice.type === 'function' && isObject(choice.function) && typeof choice.function.name === 'string') {
    out = { type: 'tool', name: choice.function.name };
  } else {
    throw refuse('tool_choice', "expected 'auto', 'required', 'none' or { type: 'function', function: { name } }");
  }
  if (out !== undefined && parallel === false) out.disable_parallel_tool_use = true;
  return out;
}
