// `type: openai`: any OpenAI-compatible upstream (OpenAI, Groq, Together, vLLM, Ollama, …).
// Bodies pass through untouched except `model`; this is the hot path, so each request body is one
// shallow spread and one JSON.stringify, and an answer is its upstream text with `model` spliced
// in (lib/json-text.ts), not parsed and serialised again.
// Wire format: https://platform.openai.com/docs/api-reference/chat
import { baseHeaders, baseUrlOf, BoundedSseDecoder, credentialMask, eventObject, tokenCount } from '../common.js';
import { GatewayError, UpstreamHttpError } from '../../errors/gateway-error.js';
import type { JsonObject, Usage } from '../../core/types.js';
import type { ProviderConfig } from '../../config/schema.js';
import { isObject } from '../../lib/is-object.js';
import type { SseEvent } from '../../lib/sse.js';
import { encodeFloatEmbeddings } from './base64-embeddings.js';
import type { UpstreamClient, UpstreamResponse } from '../../upstream/types.js';
import type {
  CallContext,
  ChatCall,
  ChatResult,
  ChatStream,
  ChatStreamEvent,
  EmbedCall,
  EmbedResult,
  ImageCall,
  ImageResult,
  Provider,
  ProviderType,
} from '../provider.js';
import {
  asString,
  buildError,
  codeOf,
  codingOf,
  encodedAnswer,
  jsonObject,
  jsonText,
  malformedResponse,
  maskFields,
  upstreamError,
  type ErrorFields,
  validationDetail,
} from '../upstream-error.js';

/** OpenAI's `{ error: {...} }`, plus the `{ error: "text" }`, `{ message }` and `{ detail }` of other compatible servers. */
export function parseOpenAiError(json: unknown): ErrorFields {
  // Google's OpenAI-compatible endpoint answers its errors inside a list,
  // `[{ "error": { "code": 400, "message": "…", "status": "INVALID_ARGUMENT" } }]`
  // (https://github.com/FuzzAnything/PromptFuzz/issues/42).
  if (Array.isArray(json)) return json.length > 0 ? parseOpenAiError(json[0]) : {};
  if (!isObject(json)) return {};
  const e = json.error;
  if (isObject(e)) {
    return {
      message: asString(e.message) ?? (e.message === undefined ? undefined : JSON.stringify(e.message)),
      type: asString(e.type),
      code: codeOf(e.code),
      param: asString(e.param) ?? null,
    };
  }
  if (typeof e === 'string') return { message: e };
  // Mistral puts its pydantic list one level down: `{ object: "error", message: { detail: [...] }, type, … }`
  // (https://github.com/avante-corp/avante.nvim/issues/2347).
  const listed = validationDetail(json.detail) ?? (isObject(json.message) ? validationDetail(json.message.detail) : undefined);
  if (listed) return listed;
  const message = asString(json.message) ?? asString(json.detail);
  if (message === undefined) return {};
  // Mistral's and vLLM's error is OpenAI's inner object at the top, `object: "error"` beside it:
  // `{ object: "error", message, type: "invalid_model", param: null, code: "1500" }`
  // (https://github.com/tmc/langchaingo/issues/1233). Its type and code pass on as a nested one's do.
  if (json.object === 'error') return { message, type: asString(json.type), code: codeOf(json.code), param: asString(json.param) ?? null };
  return { message };
}

function tokenUsage(u: unknown): Usage | undefined {
  const promptTokens = isObject(u) ? tokenCount(u.prompt_tokens) : undefined;
  if (promptTokens === undefined) return undefined;
  const usage: Usage = { promptTokens, outputTokens: outputTokens(u as Record<string, unknown>, promptTokens) };
  const cached = cachedTokens(u as Record<string, unknown>);
  // More cached than prompted is a broken report: it must not lower the charge.
  if (cached !== undefined && cached > 0 && cached <= promptTokens) usage.cachedPromptTokens = cached;
  // Audio tokens of the prompt and the answer (OpenAI's audio models bill them at their own rates);
  // a count past its total is broken, and pricing holds it to the total.
  const promptDetails = (u as Record<string, unknown>).prompt_tokens_details;
  const audioIn = isObject(promptDetails) ? tokenCount(promptDetails.audio_tokens) : undefined;
  if (audioIn !== undefined && audioIn > 0) usage.audioPromptTokens = audioIn;
  // Tokens written to the prompt cache, which Anthropic's models bill above input: OpenRouter's
  // `prompt_tokens_details.cache_write_tokens` (https://openrouter.ai/docs/use-cases/usage-accounting),
  // charged at price.cacheWriteInput.
  const written = isObject(promptDetails) ? tokenCount(promptDetails.cache_write_tokens) : undefined;
  if (written !== undefined && written > 0) usage.cacheWritePromptTokens = written;
  const outputDetails = (u as Record<string, unknown>).completion_tokens_details;
  const audioOut = isObject(outputDetails) ? tokenCount(outputDetails.audio_tokens) : undefined;
  if (audioOut !== undefined && audioOut > 0) usage.audioOutputTokens = audioOut;
  return usage;
}

/**
 * The output tokens an answer reports: completion_tokens, or all that total_tokens counts past the
 * prompt when that is more. OpenAI counts reasoning in completion_tokens; xAI's and Gemini's
 * OpenAI-compatible endpoints leave it out of completion_tokens, count it in total_tokens, and bill
 * it as output (xAI: "counted separately from completion_tokens, but will be counted in the
 * total_tokens", https://docs.x.ai/docs/key-information/consumption-and-rate-limits; a Gemini
 * stream's `{ completion_tokens: 1, prompt_tokens: 9, total_tokens: 103 }`:
 * https://discuss.ai.google.dev/t/endpoint-https-generativelanguage-googleapis-com-v1beta-openai-chat-completions-is-not-compliant-with-api-specs/127400).
 * Read as completion_tokens alone, a thinking model's answer was charged its visible words and the
 * operator paid for the rest. The charge stays within the request's output allowance (chargedOutput).
 */
function outputTokens(u: Record<string, unknown>, promptTokens: number): number {
  const completion = tokenCount(u.completion_tokens) ?? 0;
  const total = tokenCount(u.total_tokens);
  return total !== undefined && total - promptTokens > completion ? total - promptTokens : completion;
}

/**
 * The prompt tokens an answer says came from the prompt cache, a part of prompt_tokens: OpenAI's
 * `prompt_tokens_details.cached_tokens`, or
 * DeepSeek's `prompt_cache_hit_tokens` (https://api-docs.deepseek.com/guides/kv_cache).
 */
function cachedTokens(u: Record<string, unknown>): number | undefined {
  const details = u.prompt_tokens_details;
  const cached = isObject(details) ? tokenCount(details.cached_tokens) : undefined;
  return cached ?? tokenCount(u.prompt_cache_hit_tokens);
}

class OpenAiProvider implements Provider {
  readonly id: string;
  readonly configured: boolean;
  private readonly base: string;
  private readonly headers: Record<string, string>;
  /** Takes this provider's credentials out of an upstream's error text (common.ts). */
  private readonly mask: (text: string) => string;
  /**
   * The upstream refused `stream_options` (refusesStreamOptions): streams are asked for without it
   * from then on.
   */
  private streamOptionsRefused = false;

  constructor(
    config: ProviderConfig,
    private readonly client: UpstreamClient,
  ) {
    this.id = config.id;
    this.configured = Boolean(config.apiKey);
    this.base = baseUrlOf(config);
    this.headers = baseHeaders(config, (key) => `Bearer ${key}`);
    this.mask = credentialMask(config);
  }

  /** `stream`: the answer is a stream, whose head comes at once; otherwise it comes with the whole answer. */
  private async post(path: string, body: JsonObject, signal: AbortSignal | undefined, stream = false): Promise<UpstreamResponse> {
    const res = await this.client.request({
      provider: this.id,
      method: 'POST',
      url: this.base + path,
      headers: this.headers,
      body: JSON.stringify(body),
      signal,
      wholeAnswer: !stream,
    });
    if (res.status < 200 || res.status >= 300) throw quotaOf(await upstreamError(res, this.id, parseOpenAiError, this.mask));
    return res;
  }

  async chat(call: ChatCall, ctx: CallContext): Promise<ChatResult> {
    const res = await this.post('/chat/completions', { ...call.body, model: call.model.upstream ?? call.model.id }, ctx.signal);
    const body = await jsonText(res, this.id);
    if (!body.isArray('choices')) {
      throwIfError(JSON.parse(body.toString()), this.id, this.mask);
      // Neither an answer nor an error (`{}`): relayed, it went out as a 200 without choices, charged.
      throw malformedResponse(this.id, 'the chat response has no `choices` list');
    }
    body.set('model', call.model.id);
    return { body, usage: tokenUsage(body.get('usage')) };
  }

  async chatStream(call: ChatCall, ctx: CallContext): Promise<ChatStream> {
    let res: UpstreamResponse;
    try {
      res = await this.post('/chat/completions', this.streamBody(call, !this.streamOptionsRefused), ctx.signal, true);
    } catch (err) {
      if (this.streamOptionsRefused || !refusesStreamOptions(err)) throw err;
      // Refused before any work (nothing billed): asked again without it, and never again once
      // that was accepted — so an error that merely mentions the field (a client's own bad input
      // failing the same way again) cannot switch usage off for every later stream.
      res = await this.post('/chat/completions', this.streamBody(call, false), ctx.signal, true);
      this.streamOptionsRefused = true;
    }
    const coding = codingOf(res);
    if (coding !== undefined) throw encodedAnswer(res, this.id, coding);
    if (isJsonAnswer(res)) {
      // A server that ignores `stream` (some OpenAI-compatible ones do) answered the whole
      // completion: it did, and billed, the work, so it goes out as the stream it would have been.
      const answer = await jsonObject(res, this.id);
      throwIfError(answer, this.id, this.mask);
      if (!Array.isArray(answer.choices)) throw malformedResponse(this.id, 'the chat response has no `choices` list');
      return { events: completionAsChunks(answer, call.model.id), close: () => {} };
    }
    // Cancelling the response rather than aborting a signal of our own: no AbortController per
    // stream, and nothing at all to do when the stream was read to its end. Not once [DONE] came:
    // the rest of the body is then being read for the connection's sake (chunks).
    const read = { done: false };
    return { events: this.chunks(res, call.model.id, read), close: () => read.done || res.cancel() };
  }

  private streamBody(call: ChatCall, withOptions: boolean): JsonObject {
    const { stream_options: clientOptions, ...rest } = call.body;
    const body: JsonObject = { ...rest, model: call.model.upstream ?? call.model.id, stream: true };
    // Usage is always asked for: metering needs it even when the client did not ask. An upstream
    // that refuses the field is not sent it at all (the client's own options included): the usage
    // it sends unasked, or else the gateway's count, is what is charged and shown.
    if (withOptions) body.stream_options = isObject(clientOptions) ? { ...clientOptions, include_usage: true } : { include_usage: true };
    return body;
  }

  private async *chunks(res: UpstreamResponse, modelId: string, read: { done: boolean }): AsyncGenerator<ChatStreamEvent> {
    // The push decoder inside this loop, not a decoding generator in front of it: one async layer
    // less for every event of every stream.
    const decoder = new BoundedSseDecoder(this.id);
    /** Whether a choice has said why it stopped: the answer is whole even without [DONE]. */
    let finished = false;
    /** Each choice's next tool-call place, for a stream whose tool calls come without one (placeToolCalls). */
    let places: number[] | undefined;
    /** Whether a chunk carried `usage`; if none does by the end, a vendor's count (`vendor`) is the usage chunk. */
    let usageSeen = false;
    let vendor: ChatStreamEvent | undefined;
    const take = (ev: SseEvent): ChatStreamEvent => {
      const event = this.event(ev, modelId);
      places = placeToolCalls(event, places);
      usageSeen ||= event.usage !== undefined;
      if (hasFinishReason(event.chunk)) {
        finished = true;
        if (!usageSeen) vendor = vendorUsage(event.chunk, modelId) ?? vendor;
      }
      return event;
    };
    // Not for-await: leaving that loop at [DONE] would cancel the body (its return()). Whatever
    // else ends this generator, the caller's close() cancels it.
    const body = res.body[Symbol.asyncIterator]();
    let done = false;
    while (!done) {
      const next = await body.next();
      if (next.done) break;
      for (const ev of decoder.push(next.value)) {
        if (ev.data === '[DONE]') {
          // The answer is whole: the stream ends here. The rest of the body is read and dropped
          // apart from it, so the connection goes back to the pool — read in line, an upstream
          // that held the body open after [DONE] held the client's [DONE] too, up to the idle
          // timeout, which then failed the whole answer with an error event.
          read.done = true;
          void res.dump();
          done = true;
          break;
        }
        yield take(ev);
      }
    }
    if (!done) {
      for (const ev of decoder.end()) {
        if (ev.data === '[DONE]') {
          done = true;
          break;
        }
        yield take(ev);
      }
    }
    // A body that ended with neither [DONE] nor a finish_reason was cut off (a proxy's timeout, a
    // dropped connection closed cleanly): relayed as complete, the client would take a partial
    // answer for the whole one.
    if (!done && !finished) throw malformedResponse(this.id, 'the stream ended before [DONE], with no finish_reason (cut off)');
    if (vendor !== undefined && !usageSeen) yield vendor;
  }

  private event(ev: SseEvent, modelId: string): ChatStreamEvent {
    const chunk = eventObject(ev, this.id);
    // A truthy `error`, as the official SDKs test it (openai-node core/streaming.ts): a server that
    // writes `"error": null` on every chunk is not failing. Or vLLM's flat error object (`object:
    // "error"`, as throwIfError reads it), which its builds of that shape write mid-stream too.
    if (chunk.error || ev.event === 'error' || chunk.object === 'error') {
      // The stream already answered 200; the failure came mid-way, so it is a bad gateway.
      const fields = maskFields(parseOpenAiError(chunk), this.mask);
      throw buildError(502, this.id, { ...fields, message: fields.message ?? 'The upstream failed mid-stream.' });
    }
    // Data spread over several `data:` lines arrives joined with \n, which cannot go out as one line.
    let raw: string | undefined = ev.data.includes('\n') ? undefined : ev.data;
    if (chunk.model !== undefined && chunk.model !== modelId) {
      chunk.model = modelId;
      raw = undefined;
    }
    const usage = tokenUsage(chunk.usage);
    if (usage === undefined && isObject(chunk.usage)) {
      // Usage the gateway cannot read (negative or text counts) is not passed on: the client would
      // see it beside the counted usage chunk the gateway sends, and it is not what is charged.
      delete chunk.usage;
      raw = undefined;
    }
    return usage === undefined ? { chunk, raw } : { chunk, usage };
  }

  async embed(call: EmbedCall, ctx: CallContext): Promise<EmbedResult> {
    const res = await this.post('/embeddings', { ...call.body, model: call.model.upstream ?? call.model.id }, ctx.signal);
    const body = await jsonText(res, this.id);
    if (!body.isArray('data')) {
      throwIfError(JSON.parse(body.toString()), this.id, this.mask);
      throw malformedResponse(this.id, 'the embeddings response has no `data` list');
    }
    if (call.body.encoding_format === 'base64') encodeFloatEmbeddings(body);
    body.set('model', call.model.id);
    const usage = tokenUsage(body.get('usage'));
    return { body, usage: usage && { promptTokens: usage.promptTokens, outputTokens: 0 } };
  }

  async generateImage(call: ImageCall, ctx: CallContext): Promise<ImageResult> {
    const req: JsonObject = { ...call.extra, model: call.model.upstream ?? call.model.id, prompt: call.prompt, n: call.n };
    if (call.size) req.size = `${call.size.width}x${call.size.height}`;
    if (call.responseFormat) req.response_format = call.responseFormat;
    if (call.imageUrl) req.image_url = call.imageUrl;
    const res = await this.post('/images/generations', req, ctx.signal);
    const body = await jsonObject(res, this.id);
    const { data } = body;
    if (!Array.isArray(data)) throw malformedResponse(this.id, 'the images response has no `data` list');
    // An answer of no image at all is no answer (a 200 with empty `data` told the client nothing).
    if (data.length === 0) throw malformedResponse(this.id, 'the images response lists no image');
    // No more than asked for, as fal's: only n are charged (gateway.ts), so more went out for nothing.
    if (data.length > call.n) body.data = data.slice(0, call.n);
    return { body, usage: { promptTokens: 0, outputTokens: 0, images: Math.min(data.length, call.n) } };
  }
}

/**
 * An error answer that refuses the `stream_options` the gateway adds to every stream. Mistral's API
 * forbids unknown fields and has no such one: 422 `extra_forbidden` at `stream_options.include_usage`,
 * while it sends usage in its last chunk unasked (https://github.com/avante-corp/avante.nvim/issues/2347,
 * https://github.com/Portkey-AI/gateway/issues/1259); older Azure OpenAI API versions answer 400
 * "Unrecognized request argument supplied: stream_options". An error naming another member of the
 * client's own options (`stream_options.foo`) is about that member, and passes on as it is.
 */
function refusesStreamOptions(err: unknown): boolean {
  if (!(err instanceof UpstreamHttpError) || (err.status !== 400 && err.status !== 422)) return false;
  const { message, param } = err.body.error;
  return /\bstream_options(?!\.(?!include_usage\b))/.test(`${param ?? ''} ${message}`);
}

/**
 * OpenAI's 429 `insufficient_quota` is about the account behind the gateway's key (no credit
 * left), not the caller's rate: passed on, it told the caller to check their plan and billing,
 * and the SDKs retried it as a rate limit. The provider's words go to the operator's log only
 * (http/app.ts), as upstream_auth_failed's do.
 * https://platform.openai.com/docs/guides/error-codes/api-errors
 */
function quotaOf(err: UpstreamHttpError | GatewayError): UpstreamHttpError | GatewayError {
  if (!(err instanceof UpstreamHttpError) || err.status !== 429) return err;
  const { code, type, message } = err.body.error;
  if (code !== 'insufficient_quota' && type !== 'insufficient_quota') return err;
  return new GatewayError('upstream_quota_exhausted', { vars: { provider: err.provider, upstreamStatus: err.status }, cause: new Error(message) });
}

/**
 * Throws the error a 2xx answer is. vLLM behind RunPod's OpenAI-compatible endpoint answered HTTP
 * 200 with vLLM's error object, `{ object: "error", message, type, param, code: 404 }`
 * (https://github.com/runpod-workers/worker-vllm/issues/57): relayed, the client's SDK took it for
 * an answer without choices, and the prompt was charged. It gets the error, with the status the
 * body names (else 502); one naming 401 or 403 is about the gateway's own key, as in upstreamError.
 */
function throwIfError(json: unknown, provider: string, mask: (text: string) => string): void {
  if (!isObject(json) || Array.isArray(json.choices) || (json.error === undefined && json.object !== 'error')) return;
  const code = isObject(json.error) ? json.error.code : json.code;
  const status = typeof code === 'number' && Number.isInteger(code) && code >= 400 && code <= 599 ? code : 502;
  const fields = maskFields(parseOpenAiError(json), mask);
  // Masked before it is cut: a key across the cut kept its first characters.
  const message = fields.message ?? `The upstream answered an error with HTTP 200: ${mask(JSON.stringify(json)).slice(0, 300)}`;
  if (status === 401 || status === 403) {
    throw new GatewayError('upstream_auth_failed', { vars: { provider, upstreamStatus: status }, cause: new Error(message) });
  }
  // Under 200 the provider took the call: OpenRouter answers so once "the model started processing
  // your request" (https://openrouter.ai/docs/api-reference/errors), and may bill the prompt. A 5xx
  // or 429 named inside is no refusal before any work, so no fallback is given the call too.
  const err = buildError(status, provider, { ...fields, message });
  err.taken = true;
  throw err;
}

function isJsonAnswer(res: UpstreamResponse): boolean {
  const type = res.headers['content-type'];
  return typeof type === 'string' && /^application\/(?:[\w.+-]*\+)?json\b/i.test(type);
}

/**
 * A whole chat completion as the chunks a stream of it carries: one chunk with each choice's
 * message as its delta and its finish_reason, then the usage chunk (choices: []).
 */
async function* completionAsChunks(body: JsonObject, modelId: string): AsyncGenerator<ChatStreamEvent> {
  const head = { id: body.id ?? null, object: 'chat.completion.chunk', created: body.created ?? null, model: modelId };
  const choices = Array.isArray(body.choices) ? body.choices.filter(isObject) : [];
  yield {
    chunk: {
      ...head,
      choices: choices.map((c, i) => {
        const message = isObject(c.message) ? c.message : {};
        // A streamed tool call names its place in the list (OpenAI's delta format).
        const toolCalls = Array.isArray(message.tool_calls) ? message.tool_calls.map((t, index) => (isObject(t) ? { index, ...t } : t)) : undefined;
        return {
          index: typeof c.index === 'number' ? c.index : i,
          delta: { ...message, ...(toolCalls && { tool_calls: toolCalls }) },
          logprobs: c.logprobs ?? null,
          finish_reason: c.finish_reason ?? 'stop',
        };
      }),
    },
  };
  const usage = tokenUsage(body.usage);
  if (usage !== undefined) yield { chunk: { ...head, choices: [], usage: body.usage as JsonObject }, usage };
}

/**
 * The usage a finishing chunk carries where OpenAI's wire format has none, as the usage chunk
 * (choices: []) OpenAI would have sent: Groq's `x_groq.usage` on the chunk with the finish_reason
 * (https://github.com/vercel/ai/issues/1651; Groq sends a `usage` chunk after it only when it
 * honours stream_options). Read only from a finishing chunk of a stream that carried no `usage`:
 * without it the stream was charged the gateway's own count, not what Groq billed.
 */
function vendorUsage(chunk: JsonObject, modelId: string): ChatStreamEvent | undefined {
  const groq = chunk.x_groq;
  const raw = isObject(groq) ? groq.usage : undefined;
  const usage = tokenUsage(raw);
  if (usage === undefined) return undefined;
  return { chunk: { id: chunk.id ?? null, object: 'chat.completion.chunk', created: chunk.created ?? null, model: modelId, choices: [], usage: raw as JsonObject }, usage };
}

function hasFinishReason(chunk: JsonObject): boolean {
  const choices = chunk.choices;
  if (!Array.isArray(choices)) return false;
  // An empty reason is none: some servers write `"finish_reason": ""` on every chunk, and a stream of
  // those cut off without [DONE] passed for a whole answer.
  for (const c of choices) if (isObject(c) && c.finish_reason !== undefined && c.finish_reason !== null && c.finish_reason !== '') return true;
  return false;
}

/**
 * Gemini's OpenAI-compatible endpoint streams each tool call whole in one delta, without the
 * `index` that places it in OpenAI's delta format (https://github.com/THU-MAIC/OpenMAIC/issues/1556,
 * https://github.com/openai/openai-python/issues/2806). The official SDKs' stream helpers file such
 * a delta under `tool_calls[undefined]`: openai-node's finalChatCompletion() answered
 * `tool_calls: []`, the calls lost though charged, and openai-python's raised. A delta without an
 * index is read as Vercel's AI SDK reads it ("google does not send index": `index ??
 * toolCalls.length`), a new call at its choice's next place. `places` holds those next places,
 * made only for a stream that needs them.
 */
function placeToolCalls(event: ChatStreamEvent, places: number[] | undefined): number[] | undefined {
  const choices = event.chunk.choices;
  if (!Array.isArray(choices)) return places;
  for (const c of choices) {
    const calls = isObject(c) && isObject(c.delta) ? c.delta.tool_calls : undefined;
    if (!Array.isArray(calls)) continue;
    const choice = typeof c.index === 'number' ? c.index : 0;
    for (const call of calls) {
      if (!isObject(call) || typeof call.index === 'number') continue;
      places ??= [];
      const place = places[choice] ?? 0;
      call.index = place;
      places[choice] = place + 1;
      event.raw = undefined;
    }
  }
  return places;
}

export const openaiProviderType: ProviderType = {
  type: 'openai',
  create: ({ config, client }) => new OpenAiProvider(config, client),
};
