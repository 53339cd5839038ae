// `type: anthropic`: Anthropic's own Messages API, `POST {baseUrl}/messages` with `x-api-key` and
// `anthropic-version`. Clients keep calling /v1/chat/completions in OpenAI's shape; requests are
// translated to Anthropic's (request.ts), answers and streams back to OpenAI's (response.ts,
// stream.ts). Anthropic's OpenAI-compatible endpoint would spare the translation, but Anthropic
// does not mean it for production: it drops prompt caching and some fields
// (https://docs.anthropic.com/en/api/openai-sdk). Chat only: Anthropic serves no embeddings or images.
// Errors: `{ type: "error", error: { type, message } }` (https://docs.anthropic.com/en/api/errors).
import type { ProviderConfig } from '../../config/schema.js';
import { GatewayError, UpstreamHttpError } from '../../errors/gateway-error.js';
import { isObject } from '../../lib/is-object.js';
import { JsonText } from '../../lib/json-text.js';
import type { UpstreamClient, UpstreamResponse } from '../../upstream/types.js';
import { baseHeaders, baseUrlOf, BoundedSseDecoder, credentialMask } from '../common.js';
import type { CallContext, ChatCall, ChatResult, ChatStream, ChatStreamEvent, Provider, ProviderType } from '../provider.js';
import { asString, buildError, codingOf, encodedAnswer, jsonObject, malformedResponse, maskFields, upstreamError, type ErrorFields } from '../upstream-error.js';
import { toAnthropicRequest } from './request.js';
import { toCompletion } from './response.js';
import { StreamTranslator } from './stream.js';

/** The API version this adapter speaks (https://docs.anthropic.com/en/api/versioning); `headers` may name another. */
export const ANTHROPIC_VERSION = '2023-06-01';

/**
 * Anthropic's error body. Its `error.type` (overloaded_error, rate_limit_error, …) becomes the
 * OpenAI error's `code`; the OpenAI `type` follows the status, as for every upstream.
 */
export function parseAnthropicError(json: unknown): ErrorFields {
  if (!isObject(json)) return {};
  const e = json.error;
  if (isObject(e)) return { message: asString(e.message), code: asString(e.type) ?? null };
  const message = asString(json.message) ?? asString(e);
  return message === undefined ? {} : { message };
}

const chatOnly = () => new GatewayError('invalid_request', { vars: { detail: 'provider type anthropic serves chat models only' } });

/**
 * Anthropic's own statuses in the terms the gateway and the OpenAI SDKs act on. 529
 * overloaded_error ("the API is temporarily overloaded") is a 503: a status every HTTP client and
 * proxy knows as "try again", and one the fallbacks take (core/routes.ts fallsBack). 402
 * billing_error is about the operator's Anthropic account, as OpenAI's insufficient_quota is.
 */
function normalised(err: UpstreamHttpError | GatewayError): UpstreamHttpError | GatewayError {
  if (!(err instanceof UpstreamHttpError)) return err;
  if (err.status === 529) return new UpstreamHttpError(503, { error: { ...err.body.error, type: 'api_error' } }, err.provider, err.headers);
  if (err.status === 402) {
    return new GatewayError('upstream_quota_exhausted', { vars: { provider: err.provider, upstreamStatus: err.status }, cause: new Error(err.body.error.message) });
  }
  return err;
}

class AnthropicProvider implements Provider {
  readonly id: string;
  readonly configured: boolean;
  private readonly url: string;
  private readonly headers: Record<string, string>;
  private readonly mask: (text: string) => string;

  constructor(
    config: ProviderConfig,
    private readonly client: UpstreamClient,
  ) {
    this.id = config.id;
    this.configured = Boolean(config.apiKey);
    this.url = `${baseUrlOf(config)}/messages`;
    const headers = baseHeaders(config, (key) => key, 'x-api-key');
    if (!Object.keys(headers).some((k) => k.toLowerCase() === 'anthropic-version')) headers['anthropic-version'] = ANTHROPIC_VERSION;
    this.headers = headers;
    this.mask = credentialMask(config);
  }

  private async post(body: Record<string, unknown>, signal: AbortSignal | undefined, stream: boolean): Promise<UpstreamResponse> {
    const res = await this.client.request({
      provider: this.id,
      method: 'POST',
      url: this.url,
      headers: this.headers,
      body: JSON.stringify(body),
      signal,
      wholeAnswer: !stream,
    });
    if (res.status < 200 || res.status >= 300) throw normalised(await upstreamError(res, this.id, parseAnthropicError, this.mask));
    return res;
  }

  async chat(call: ChatCall, ctx: CallContext): Promise<ChatResult> {
    const res = await this.post(toAnthropicRequest(call.model, call.body, false), ctx.signal, false);
    const message = await jsonObject(res, this.id);
    if (message.type === 'error') {
      const fields = maskFields(parseAnthropicError(message), this.mask);
      throw buildError(502, this.id, { ...fields, message: fields.message ?? 'The upstream answered an error with HTTP 200.' });
    }
    if (!Array.isArray(message.content)) throw malformedResponse(this.id, 'the message has no `content` list');
    const { body, usage } = toCompletion(message, message.content, call.model.id, Math.floor(Date.now() / 1000));
    return { body: JsonText.of(body), usage };
  }

  async chatStream(call: ChatCall, ctx: CallContext): Promise<ChatStream> {
    const res = await this.post(toAnthropicRequest(call.model, call.body, true), ctx.signal, true);
    const coding = codingOf(res);
    if (coding !== undefined) throw encodedAnswer(res, this.id, coding);
    // As the openai adapter: the response is cancelled, not a signal of our own aborted, and not
    // once message_stop came (the rest is being read for the connection's sake).
    const read = { done: false };
    return { events: this.events(res, call.model.id, read), close: () => read.done || res.cancel() };
  }

  private async *events(res: UpstreamResponse, modelId: string, read: { done: boolean }): AsyncGenerator<ChatStreamEvent> {
    const decoder = new BoundedSseDecoder(this.id);
    const translator = new StreamTranslator(modelId, Math.floor(Date.now() / 1000), this.id, parseAnthropicError, this.mask);
    // Not for-await: leaving that loop at message_stop would cancel the body (its return()).
    const body = res.body[Symbol.asyncIterator]();
    for (let next = await body.next(); !next.done; next = await body.next()) {
      for (const ev of decoder.push(next.value)) {
        const event = translator.event(ev);
        if (translator.stopped) {
          // The answer is whole: what may follow is read and dropped apart from it, so the
          // connection goes back to the pool without holding the client's end.
          read.done = true;
          void res.dump();
          if (event) yield event;
          return;
        }
        if (event) yield event;
      }
    }
    for (const ev of decoder.end()) {
      const event = translator.event(ev);
      if (event) yield event;
      if (translator.stopped) return;
    }
    // A body that ended without message_stop: whole if message_delta said why it stopped (its
    // usage is then known), else cut off — relayed as complete, the client would take a part for the whole.
    if (!translator.finished) throw malformedResponse(this.id, 'the stream ended before message_stop, with no stop_reason (cut off)');
    const usage = translator.usageChunk();
    if (usage) yield usage;
  }

  embed(): Promise<never> {
    return Promise.reject(chatOnly());
  }
  generateImage(): Promise<never> {
    return Promise.reject(chatOnly());
  }
}

export const anthropicProviderType: ProviderType = {
  type: 'anthropic',
  kinds: ['chat'],
  create: ({ config, client }) => new AnthropicProvider(config, client),
};
