// `type: fal`: fal.ai's synchronous model API, `POST {baseUrl}/{upstream}` with `Authorization: Key …`.
// Request `{ prompt, num_images, image_size, … }`; response `{ images: [{ url, width, height,
// content_type }], seed, … }`, translated here to OpenAI's `{ created, data: [{ url } | { b64_json }] }`.
// Errors are FastAPI-style: `{ detail: "text" }` or `{ detail: [{ loc, msg, type }] }` (422).
// https://docs.fal.ai/model-apis/model-endpoints/synchronous-requests
import { baseHeaders, baseUrlOf, credentialMask } from '../common.js';
import type { JsonObject } from '../../core/types.js';
import type { ProviderConfig } from '../../config/schema.js';
import { GatewayError } from '../../errors/gateway-error.js';
import type { UpstreamClient } from '../../upstream/types.js';
import { BilledFailure, type CallContext, type ImageCall, type ImageResult, type Provider, type ProviderType } from '../provider.js';
import { isObject } from '../../lib/is-object.js';
import { asString, jsonObject, malformedResponse, MAX_ANSWER_BYTES, upstreamError, validationDetail, type ErrorFields } from '../upstream-error.js';

export function parseFalError(json: unknown): ErrorFields {
  if (!isObject(json)) return {};
  const detail = json.detail;
  if (typeof detail === 'string') return { message: detail };
  const listed = validationDetail(detail);
  if (listed) return listed;
  if (isObject(json.error)) return { message: asString(json.error.message), code: asString(json.error.code) ?? null };
  const message = asString(json.message) ?? asString(json.error);
  return message === undefined ? {} : { message };
}

const imagesOnly = () => new GatewayError('invalid_request', { vars: { detail: 'provider fal serves image models only' } });

class FalProvider implements Provider {
  readonly id: string;
  readonly configured: boolean;
  private readonly base: string;
  /** The host of baseUrl: a file there may be fetched over plain http (a self-hosted mirror, tests). */
  private readonly baseHost: string;
  private readonly headers: Record<string, string>;
  private readonly mask: (text: string) => string;

  constructor(
    config: ProviderConfig,
    private readonly client: UpstreamClient,
  ) {
    this.id = config.id;
    this.configured = Boolean(config.apiKey);
    this.base = baseUrlOf(config);
    this.baseHost = new URL(this.base).hostname;
    this.headers = baseHeaders(config, (key) => `Key ${key}`);
    this.mask = credentialMask(config);
  }

  chat(): Promise<never> {
    return Promise.reject(imagesOnly());
  }
  chatStream(): Promise<never> {
    return Promise.reject(imagesOnly());
  }
  embed(): Promise<never> {
    return Promise.reject(imagesOnly());
  }

  async generateImage(call: ImageCall, ctx: CallContext): Promise<ImageResult> {
    const req: JsonObject = { ...call.extra, prompt: call.prompt, num_images: call.n };
    if (call.sizePreset) req.image_size = call.sizePreset;
    else if (call.size) req.image_size = { width: call.size.width, height: call.size.height };
    if (call.imageUrl) req.image_url = call.imageUrl;
    const b64 = call.responseFormat === 'b64_json';
    // sync_mode makes fal answer with data URIs instead of uploading to its CDN.
    if (b64) req.sync_mode = true;

    const res = await this.client.request({
      provider: this.id,
      method: 'POST',
      url: `${this.base}/${call.model.upstream ?? call.model.id}`,
      headers: this.headers,
      body: JSON.stringify(req),
      signal: ctx.signal,
      // fal's synchronous endpoint answers when the images are made.
      wholeAnswer: true,
    });
    if (res.status < 200 || res.status >= 300) throw await upstreamError(res, this.id, parseFalError, this.mask);
    const answer = await jsonObject(res, this.id);
    if (!Array.isArray(answer.images)) throw malformedResponse(this.id, 'the response has no `images` list');
    // An answer of no image at all is no answer (a 200 with empty `data` told the client nothing).
    if (answer.images.length === 0) throw malformedResponse(this.id, 'the response lists no image');

    // No more than asked for: only those are charged (the gateway holds the charge to n), and an
    // answer listing more — a broken upstream's hundreds — had every one downloaded at once for
    // b64_json, up to 64 MiB each, and relayed.
    const urls = answer.images.slice(0, call.n).map((img: unknown) => {
      const url = isObject(img) ? asString(img.url) : undefined;
      if (url === undefined) throw malformedResponse(this.id, 'an image has no `url`');
      return url;
    });
    let data: JsonObject[];
    try {
      data = await Promise.all(urls.map(async (url) => (b64 ? { b64_json: await this.base64Of(url, ctx.signal) } : { url })));
    } catch (err) {
      // fal made (and billed) the images; only handing them over failed.
      throw new BilledFailure(err instanceof Error ? err : new Error(String(err)), { promptTokens: 0, outputTokens: 0, images: urls.length });
    }
    const body: JsonObject = { created: Math.floor(Date.now() / 1000), data };
    if (answer.seed !== undefined) body.seed = answer.seed;
    return { body, usage: { promptTokens: 0, outputTokens: 0, images: data.length } };
  }

  /** A data URI's payload as base64; a model that ignored sync_mode gets its file downloaded. */
  private async base64Of(url: string, signal: AbortSignal | undefined): Promise<string> {
    if (url.startsWith('data:')) {
      const comma = url.indexOf(',');
      const meta = url.slice(5, comma);
      const payload = url.slice(comma + 1);
      if (meta.endsWith(';base64')) return payload;
      try {
        return Buffer.from(decodeURIComponent(payload), 'latin1').toString('base64');
      } catch {
        throw malformedResponse(this.id, 'an image is a data URI that does not decode');
      }
    }
    // The URL comes from the upstream's answer, and the file goes back to the caller: fetched from
    // anywhere, an answer naming http://169.254.169.254/… or an internal service would hand its
    // content out. fal's files are on its https CDN; plain http only from baseUrl's own host.
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      throw malformedResponse(this.id, 'an image URL is not a URL');
    }
    if (target.protocol !== 'https:' && !(target.protocol === 'http:' && target.hostname === this.baseHost)) {
      throw malformedResponse(this.id, `an image URL is not https (${target.protocol}//${target.host}), so it is not downloaded`);
    }
    const res = await this.client.request({ provider: this.id, method: 'GET', url, headers: {}, signal });
    if (res.status < 200 || res.status >= 300) {
      await res.dump();
      throw malformedResponse(this.id, `an image could not be downloaded (HTTP ${res.status})`);
    }
    const parts: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      parts.push(chunk);
      size += chunk.length;
      if (size > MAX_ANSWER_BYTES) {
        res.cancel();
        throw malformedResponse(this.id, `an image to download is longer than ${MAX_ANSWER_BYTES / 1024 / 1024} MiB`);
      }
    }
    return Buffer.concat(parts).toString('base64');
  }
}

export const falProviderType: ProviderType = {
  type: 'fal',
  kinds: ['image'],
  create: ({ config, client }) => new FalProvider(config, client),
};
