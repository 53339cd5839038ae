// The request path, one method per endpoint, all the same shape:
//   validate → resolve model and provider → (shape) → worst-case cost → admit (reserve)
//   → upstream call → settle with the actual cost (or release on failure) → ledger.
// HTTP objects never reach here: routes hand in a parsed body and a context, and get back a body,
// headers and the credits charged (or a stream of SSE payloads).
import type { ChatModelConfig, EmbeddingModelConfig, ImageModelConfig, ModelConfig } from '../config/schema.js';
import { GatewayError, UpstreamHttpError, notRetryable } from '../errors/gateway-error.js';
import type { Clock } from '../lib/clock.js';
import { JsonText } from '../lib/json-text.js';
import { BilledFailure, type CallContext, type ChatStreamEvent, type Provider } from '../providers/provider.js';
import { malformedResponse } from '../providers/upstream-error.js';
import type { Ledger, OwedCharge, UsageRecord, UsageStatus } from '../storage/ports.js';
import type { Catalog } from './catalog.js';
import { capOutput, countCompletionOutput, countedUsageChunk, audioUse, deltaReasoning, deltaText, keptForCount, outputAllowance, predictionTokens, usableCredits } from './chat-output.js';
import type { ClientLink } from './client-link.js';
import { checkModelSize, normaliseImageRequest, pricedSize } from './images.js';
import type { Admission, Meter, Principal } from './metering.js';
import type { ShapeOutcome } from './shaping.js';
import { NO_AUDIO, type Pricing } from './pricing.js';
import { receiptOf, type ReceiptDrain } from './receipt-drain.js';
import { fallsBack, isRateLimit, RouteCooldown, routesOf, type Route } from './routes.js';
import { embeddingRequest, imageRequest, parseBody, parseChatBody } from './requests.js';
import { checkServiceTier } from './service-tier.js';
import { checkMediaUrls } from './media-urls.js';
import { countPrompt, inModelTokens } from './prompt-count.js';
import { countChatPromptParts, countEmbeddingInputs, countText, hasNonTextParts } from './tokens.js';
import type { ImageSize, JsonObject, Usage } from './types.js';

export interface RequestContext {
  requestId: string;
  principal: Principal;
  /** The HTTP client: whether it has disconnected. */
  client: ClientLink;
  /** The route, for messages (`/v1/chat/completions`). */
  path: string;
}

export interface Completed {
  /** The answer's JSON, `meta` included; the HTTP layer sends its text. */
  body: JsonText;
  credits: number;
  headers: Record<string, string>;
}

/** Where a stream's events go (the HTTP layer's response). */
export interface EventSink {
  /** Sends one SSE `data:` payload; returns a promise only when the client is slow to read (backpressure). */
  send(data: string): void | Promise<void>;
  /** Sends the error event that ends a stream which failed after it started. */
  fail(err: unknown): void | Promise<void>;
}

export interface StreamStarted {
  headers: Record<string, string>;
  /**
   * Sends the SSE `data:` payloads in order, ending with `[DONE]`, then settles and records; call
   * it once. Resolves when all of that is done, however the stream ended (a client that left
   * included: see relay). Never rejects for an upstream failure, which goes out as an error event.
   * Resolves to the credits charged (for the request log).
   */
  pipe(sink: EventSink): Promise<number>;
}

export interface GatewayLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface GatewayDeps {
  catalog: Catalog;
  pricing: Pricing;
  providers: ReadonlyMap<string, Provider>;
  meter: Meter;
  ledger: Ledger;
  clock: Clock;
  logger: GatewayLogger;
  /** After a client leaves mid-stream, how long to keep reading upstream for its usage, ms. */
  drainUsageMs: number;
  /** Told of every record after it is appended (metrics). */
  onRecord?: (record: UsageRecord) => void;
  /** How long a route that failed without doing the work is tried after the model's others, ms (core/routes.ts). */
  fallbackCooldownMs?: number;
  /** Told when a route failed without doing the work and the next one is tried (metrics). */
  onFallback?: (model: string, provider: string) => void;
  /**
   * Present when the counter store keeps receipts (a shared store): settlements then keep their
   * ledger record as a receipt, and the drain forgets it once the ledger holds it.
   */
  receipts?: ReceiptDrain;
}

export class Gateway {
  constructor(private readonly deps: GatewayDeps) {
    this.cooldown = new RouteCooldown(deps.clock, deps.fallbackCooldownMs ?? 0);
  }

  /** Each catalog model's routes (core/routes.ts), built on first use: config is frozen. */
  private readonly routes = new WeakMap<ModelConfig, readonly Route[]>();
  private readonly cooldown: RouteCooldown;

  private routesFor<M extends ModelConfig>(model: M): readonly Route<M>[] {
    let routes = this.routes.get(model);
    if (routes === undefined) {
      routes = routesOf(model, this.deps.providers);
      this.routes.set(model, routes);
    }
    return routes as readonly Route<M>[];
  }

  /**
   * Calls the first route, and each next one while the one before failed without doing any work
   * (fallsBack); the last failure is the client's, unless an earlier route was rate-limited and the
   * last failed without doing the work too: then the rate limit, whose Retry-After tells the client
   * when a retry can succeed. (A primary's 429 with its fallback unreachable answered a 502 naming
   * the fallback, which the SDKs retry at once; and 429 or 502 by the cooldown's order of the moment.)
   * One route: the call itself, no extra await.
   */
  private async onRoutes<M extends ModelConfig, T>(ctx: RequestContext, configured: readonly Route<M>[], call: (route: Route<M>) => Promise<T>): Promise<T> {
    const routes = configured.length === 1 ? configured : this.cooldown.order(configured);
    let rateLimited: UpstreamHttpError | undefined;
    for (let i = 0; ; i++) {
      const route = routes[i]!;
      const next = routes[i + 1];
      if (next === undefined) {
        if (rateLimited === undefined) return call(route);
        try {
          return await call(route);
        } catch (err) {
          if (!fallsBack(err) || isRateLimit(err)) throw err;
          // The caller gets the rate limit, so this failure is not the 502 whose line tells the
          // operator what to mend (a fallback's wrong key): said here, or nowhere.
          this.failedOver(ctx, route, err, { answer: 'the earlier rate limit' }, 'upstream failed without doing the work; answering the earlier rate limit');
          throw rateLimited;
        }
      }
      try {
        return await call(route);
      } catch (err) {
        if (!fallsBack(err)) throw err;
        if (rateLimited === undefined && isRateLimit(err)) rateLimited = err;
        this.failedOver(ctx, route, err, { next: next.provider.id }, 'upstream failed without doing the work; trying the next provider');
        this.cooldown.failed(route);
        this.deps.onFallback?.(route.model.id, route.provider.id);
      }
    }
  }

  /**
   * Logs a route's failure that is not the caller's answer. The provider refused the gateway's own
   * key or quota: only the operator can mend it, and the 502's error line (http/app.ts) never comes:
   * an error, not a warning.
   */
  private failedOver(ctx: RequestContext, route: Route, err: unknown, then: Record<string, string>, msg: string): void {
    const operators = err instanceof GatewayError && (err.code === 'upstream_auth_failed' || err.code === 'upstream_quota_exhausted');
    (operators ? this.deps.logger.error : this.deps.logger.warn).call(
      this.deps.logger,
      { requestId: ctx.requestId, model: route.model.id, provider: route.provider.id, ...then, err: errorSummary(err) },
      msg,
    );
  }

  private recordOf(
    ctx: RequestContext,
    model: ModelConfig,
    usage: Usage,
    credits: number,
    status: UsageStatus,
    httpStatus: number,
    /** When the request was admitted: the day its counters are on is the day it is recorded on. */
    at: number,
    /** The provider whose answer was served and charged (UsageRecord.provider); null when none was. */
    provider: string | null,
  ): UsageRecord {
    return {
      requestId: ctx.requestId,
      accountId: ctx.principal.account.id,
      keyId: ctx.principal.key?.id ?? null,
      model: model.id,
      surface: ctx.principal.surface,
      promptTokens: usage.promptTokens,
      outputTokens: usage.outputTokens,
      credits,
      status,
      httpStatus,
      createdAt: new Date(at).toISOString(),
      provider,
    };
  }

  /**
   * True once the ledger holds the record (and `owed`, with it); a failed append is logged (failing
   * the request too would not un-spend it).
   */
  private async append(record: UsageRecord, owed?: OwedCharge): Promise<boolean> {
    try {
      if (owed) await this.deps.ledger.owed!.append(record, owed);
      else await this.deps.ledger.append(record);
      this.deps.onRecord?.(record);
      return true;
    } catch (err) {
      // The upstream already served the request; failing the response would not un-spend it.
      this.deps.logger.error({ err, requestId: record.requestId, receiptKept: this.deps.receipts !== undefined }, 'ledger append failed');
      return false;
    }
  }

  /** Settles the admission to `credits` and records the request, so that neither lands without the other. */
  private async settleAndRecord(admission: Admission, record: UsageRecord): Promise<void> {
    const { receipts } = this.deps;
    if (!receipts) {
      // The embedded store commits both on one connection: both in flight at once, so a request
      // waits for one group commit instead of two in a row.
      await Promise.all([admission.settle(record.credits), this.append(record)]);
      return;
    }
    // A shared store: the settlement keeps the record as a receipt, atomically, before the
    // ledger is written — a process killed in between leaves the receipt for another to write.
    // If the store cannot be reached, the charge it could not take is written with the record
    // instead (keep), so that a process killed before the store is back leaves it to another too.
    const { owed } = this.deps.ledger;
    let written: boolean | undefined;
    const keep = owed && (async (charge: OwedCharge) => (written = await this.append(record, charge)));
    await admission.settle(record.credits, receiptOf(record, this.deps.clock.now()), keep);
    // Tried with the charge and failed: the meter holds the charge, and its settlement will keep
    // the record as a receipt once the store answers; the same append again would only fail again.
    written ??= await this.append(record);
    if (written) receipts.recorded(record.requestId);
  }

  /**
   * Runs one non-streaming call between admission and settlement, on the model's routes (onRoutes):
   * `call` is one route's call.
   */
  private async run<M extends ModelConfig>(
    ctx: RequestContext,
    model: M,
    shaped: ShapeOutcome,
    worstCaseCredits: number,
    routes: readonly Route<M>[],
    call: (route: Route<M>, upstream: CallContext) => Promise<{ body: JsonText; usage: Usage }>,
    price: (usage: Usage) => number,
  ): Promise<Completed> {
    const at = this.deps.clock.now();
    const admission = await this.deps.meter.admit({ requestId: ctx.requestId, principal: ctx.principal, model, worstCaseCredits, at });
    // Not tied to the client: once admitted, the upstream call runs to its end (bounded by the
    // upstream timeouts) and is charged, because the provider charges for it either way.
    const upstream: CallContext = { requestId: ctx.requestId };
    /** The provider of the route called last: once a call returned, or failed billed, the one that did the work. */
    let provider: string | null = null;
    let result: { body: JsonText; usage: Usage };
    try {
      result = await this.onRoutes(ctx, routes, (route) => {
        provider = route.provider.id;
        return call(route, upstream);
      });
    } catch (err) {
      if (err instanceof BilledFailure) {
        // The upstream did (and billed) the work before the call failed: charge it, answer the error.
        const credits = this.chargeable(ctx, price(err.usage), worstCaseCredits);
        await this.settleAndRecord(admission, this.recordOf(ctx, model, err.usage, credits, 'error', statusOf(err.error), at, provider));
        // Charged: a retry by the client's SDK would be charged again.
        throw err.error instanceof GatewayError || err.error instanceof UpstreamHttpError ? withLimitHeaders(notRetryable(err.error), admission) : err.error;
      }
      // Nothing served, nothing charged: no provider's invoice holds it.
      await admission.release();
      await this.append(this.recordOf(ctx, model, { promptTokens: 0, outputTokens: 0 }, 0, 'error', statusOf(err), at, null));
      throw withLimitHeaders(err, admission);
    }
    const credits = this.chargeable(ctx, price(result.usage), worstCaseCredits);
    const gone = ctx.client.gone;
    await this.settleAndRecord(admission, this.recordOf(ctx, model, result.usage, credits, gone ? 'aborted' : 'ok', gone ? 499 : 200, at, provider));
    result.body.set('meta', { usage: { credits_used: credits } });
    return { body: result.body, credits, headers: responseHeaders(admission, shaped) };
  }

  /** The credits to charge for an actual cost (what settlement and the ledger must both record). */
  private chargeable(ctx: RequestContext, credits: number, worstCase: number): number {
    if (usableCredits(credits, worstCase) !== credits) {
      // Only a broken price or usage gets here; charge the reservation rather than fail to settle.
      this.deps.logger.error({ requestId: ctx.requestId, credits }, 'unusable actual cost; charging the worst case');
      credits = worstCase;
    }
    if (credits > worstCase) {
      this.deps.logger.warn({ requestId: ctx.requestId, credits, worstCase }, 'actual cost above the reserved worst case');
    }
    return credits;
  }

  /**
   * What a chat request, streamed or not, is before its upstream call: validated, its model and
   * provider, shaped by the plan and capped at the model's ceiling, its prompt counted, the output
   * it allows and the worst case that prices both.
   */
  private async prepareChat(ctx: RequestContext, rawBody: unknown) {
    const body = parseChatBody(rawBody);
    const model = this.deps.catalog.resolve(body.model, 'chat', ctx.path);
    const routes = this.routesFor(model);
    checkServiceTier(model, body);
    checkMediaUrls(model, body);
    const shaped = this.deps.meter.shape(ctx.principal, model, { kind: 'chat', body });
    capOutput(model, body, shaped.clamped);
    // The context window holds text-only messages to it; tool definitions and a response schema
    // are counted as their JSON (more than OpenAI counts them), so they do not decide a refusal.
    const context = model.contextTokens !== undefined && !hasNonTextParts(body) ? model.contextTokens : Number.POSITIVE_INFINITY;
    let inMessages = 0;
    const promptTokens = await this.countPrompt(ctx, model, (cap) => {
      const counted = countChatPromptParts(body, model.imageInputTokens, cap, context);
      inMessages = counted.messages;
      return counted.total;
    });
    if (inMessages > context) throw new GatewayError('context_length_exceeded', { vars: { limit: context }, param: 'messages' });
    // A prediction's unused tokens are billed as output too (chat-output.ts predictionTokens):
    // counted as far as the plan's ceiling or the balance could pay for them, or the context window holds them.
    const allowance = outputAllowance(model, body) + (body.prediction === undefined ? 0 : await this.predictionAllowance(ctx, model, body));
    // Prompt at the input price plus the most output the request allows at the output price (the
    // audio prices where the model has them and the request uses audio: chat-output.ts audioUse).
    const audio = model.price.audioInput === undefined && model.price.audioOutput === undefined ? NO_AUDIO : audioUse(body);
    const worstCase = this.deps.pricing.chatWorstCase(model, promptTokens, allowance, audio);
    return { body, model, routes, shaped, promptTokens, allowance, worstCase };
  }

  async chat(ctx: RequestContext, rawBody: unknown): Promise<Completed> {
    const { body, model, routes, shaped, promptTokens, allowance, worstCase } = await this.prepareChat(ctx, rawBody);
    return this.run(
      ctx,
      model,
      shaped,
      worstCase,
      routes,
      async (route, upstream) => {
        const r = await route.provider.chat({ model: route.model, body }, upstream);
        const usage = r.usage ?? { promptTokens, outputTokens: countCompletionOutput(r.body) };
        return { body: r.body, usage: { ...usage, outputTokens: this.chargedOutput(ctx, usage.outputTokens, allowance) } };
      },
      (u) => this.deps.pricing.chatCredits(model, u),
    );
  }

  async embed(ctx: RequestContext, rawBody: unknown): Promise<Completed> {
    const body = parseBody(embeddingRequest, rawBody);
    const model = this.deps.catalog.resolve(body.model, 'embedding', ctx.path);
    const routes = this.routesFor(model);
    const shaped = this.deps.meter.shape(ctx.principal, model, { kind: 'embedding', body });
    // Before counting: 2.4 million short strings took the free tier's count ~0.9 s of event loop,
    // for a request OpenAI refuses past 2,048 inputs anyway. A lone token array is one input.
    const inputs = Array.isArray(body.input) && typeof body.input[0] !== 'number' ? body.input.length : 1;
    if (model.maxInputs !== undefined && inputs > model.maxInputs) {
      throw new GatewayError('invalid_request', { vars: { detail: `input: ${model.id} embeds at most ${model.maxInputs} inputs per request; this one has ${inputs}` }, param: 'input' });
    }
    // Each input must fit the model's window (contextTokens): counted no further than that, and
    // refused here rather than sent to a provider that refuses it.
    const perInput = model.contextTokens ?? Number.POSITIVE_INFINITY;
    let tooLong: number | undefined;
    const promptTokens = await this.countPrompt(
      ctx,
      model,
      (cap) => {
        const counted = countEmbeddingInputs(body.input, cap, perInput);
        tooLong = counted.tooLong;
        return counted.tokens;
      },
      inputs,
    );
    if (tooLong !== undefined) {
      const which = typeof body.input === 'string' || (Array.isArray(body.input) && typeof body.input[0] === 'number') ? 'input' : `input[${tooLong}]`;
      throw new GatewayError('invalid_request', { vars: { detail: `${which}: ${model.id} embeds at most ${perInput} tokens per input; this one has more` }, param: 'input' });
    }
    return this.run(
      ctx,
      model,
      shaped,
      this.deps.pricing.embeddingCredits(model, promptTokens),
      routes,
      async (route, upstream) => {
        const r = await route.provider.embed({ model: route.model, body }, upstream);
        return { body: r.body, usage: r.usage ?? { promptTokens, outputTokens: 0 } };
      },
      (u) => this.deps.pricing.embeddingCharge(model, u.promptTokens),
    );
  }

  async image(ctx: RequestContext, rawBody: unknown): Promise<Completed> {
    const body = parseBody(imageRequest, rawBody);
    const model: ImageModelConfig = this.deps.catalog.resolve(body.model, 'image', ctx.path);
    const routes = this.routesFor(model);
    const call = normaliseImageRequest(model, body);
    const quality = typeof call.extra.quality === 'string' ? call.extra.quality.toLowerCase() : undefined;
    const unitCredits = (s: ImageSize) => this.deps.pricing.imageUnitCredits(model, s, quality);
    const shaped = this.deps.meter.shape(ctx.principal, model, { kind: 'image', call, size: pricedSize(model, call), unitCredits });
    checkModelSize(model, call);
    const size = shaped.size ?? pricedSize(model, call);
    // The size priced is the size sent: left out, the upstream makes its own default, which may
    // cost more than (or, on the free tier, be larger than) the model's defaultSize checked here.
    if (call.size === undefined && typeof model.price.perImage !== 'number') call.size = size;
    const unit = this.deps.pricing.imageUnitCredits(model, size, quality);
    if (unit === undefined) {
      throw new GatewayError('invalid_request', {
        vars: { detail: `${model.id} has no price for size ${size.width}x${size.height}` },
        param: call.params?.size ?? (call.sizePreset !== undefined ? 'image_size' : 'size'),
      });
    }
    return this.run(
      ctx,
      model,
      shaped,
      unit * call.n,
      routes,
      async (route, upstream) => {
        const r = await route.provider.generateImage(route.model === model ? call : { ...call, model: route.model }, upstream);
        return { body: JsonText.of(r.body), usage: r.usage };
      },
      // Never more images than asked for are charged, whatever the upstream returned.
      (u) => unit * Math.min(u.images ?? 0, call.n),
    );
  }

  /**
   * Past how many prompt tokens counting can stop: no budget the request could be admitted under
   * pays for more (a free key sending 10 MB of text held the event loop 1.6 s to be refused).
   */
  private promptCap(ctx: RequestContext, model: ChatModelConfig | EmbeddingModelConfig): number {
    return this.deps.pricing.inputTokensOver(model, this.deps.meter.creditCeiling(ctx.principal, model));
  }

  /**
   * A prediction's tokens, counted as a prompt is (core/prompt-count.ts): a prepaid plan has no fixed
   * ceiling, so without the balance's bound a key with an empty balance had a 9 MB prediction
   * counted whole (~140 ms of the event loop) before its refusal.
   */
  private predictionAllowance(ctx: RequestContext, model: ChatModelConfig, body: JsonObject): Promise<number> {
    const ceiling = this.deps.meter.creditCeiling(ctx.principal, model);
    const cap = Math.min(this.deps.pricing.outputTokensOver(model, ceiling), model.contextTokens ?? Number.POSITIVE_INFINITY);
    return countPrompt((c) => predictionTokens(body, c), cap, async () => {
      const balance = await this.deps.meter.prepaidBalance(ctx.principal);
      return balance && { tokensOver: this.deps.pricing.outputTokensOver(model, balance.credits), refuse: balance.refuse };
    });
  }

  /**
   * The prompt's tokens, counted no further than its plan could pay for (core/prompt-count.ts), in
   * the model's own tokens: promptOverheadTokens is added `overheads` times (once per embedding
   * input: embedding servers add their special tokens to each).
   */
  private countPrompt(ctx: RequestContext, model: ChatModelConfig | EmbeddingModelConfig, count: (cap: number) => number, overheads = 1): Promise<number> {
    return countPrompt(inModelTokens(model.promptTokenFactor, model.promptOverheadTokens * overheads, count), this.promptCap(ctx, model), async () => {
      const balance = await this.deps.meter.prepaidBalance(ctx.principal);
      return balance && { tokensOver: this.deps.pricing.inputTokensOver(model, balance.credits), refuse: balance.refuse };
    });
  }

  /**
   * The output tokens to charge: what the upstream reports, but never past what the request
   * allowed it to write. An upstream that ignores max_tokens (a broken or misconfigured server)
   * would otherwise spend past the reservation, a plan's limit or a prepaid balance, without bound.
   */
  private chargedOutput(ctx: RequestContext, reported: number, allowance: number): number {
    if (reported <= allowance) return reported;
    this.deps.logger.warn({ requestId: ctx.requestId, reported, allowance }, 'the upstream wrote past the output limit it was sent; charging the limit');
    return allowance;
  }

  async chatStream(ctx: RequestContext, rawBody: unknown): Promise<StreamStarted> {
    const { body, model, routes, shaped, promptTokens, allowance, worstCase } = await this.prepareChat(ctx, rawBody);
    const at = this.deps.clock.now();
    const admission = await this.deps.meter.admit({ requestId: ctx.requestId, principal: ctx.principal, model, worstCaseCredits: worstCase, at });
    // Not tied to the client either: when the client leaves, the upstream stream is kept open for
    // up to drainUsageMs so its usage chunk can still be read (SPEC §7), then closed (relay).
    let stream;
    /** The provider of the route called last: once a stream started, the one serving it. */
    let provider = model.provider;
    try {
      stream = await this.onRoutes(ctx, routes, (route) => {
        provider = route.provider.id;
        return route.provider.chatStream({ model: route.model, body }, { requestId: ctx.requestId });
      });
    } catch (err) {
      // No stream started on any route: nothing served, nothing charged.
      await admission.release();
      await this.append(this.recordOf(ctx, model, { promptTokens: 0, outputTokens: 0 }, 0, 'error', statusOf(err), at, null));
      throw withLimitHeaders(err, admission);
    }
    const wantUsage = body.stream_options?.include_usage === true;
    return {
      headers: responseHeaders(admission, shaped),
      pipe: (sink) => this.relay(ctx, model, stream, { admission, at, promptTokens, worstCase, allowance, wantUsage, provider }, sink),
    };
  }

  /**
   * Relays upstream chunks to the client as they come. Upstream is always asked for usage; the
   * usage chunk is shown only when the client asked for it, and then carries the credits charged.
   * When the client has gone, it stops sending, drains the upstream for its usage (bounded), and
   * ends. Its finally block settles and records exactly once, however the stream ended. A loop
   * pushing into the sink rather than a generator the HTTP layer pulls from: one async hop less
   * per event.
   */
  private async relay(
    ctx: RequestContext,
    model: ChatModelConfig,
    stream: { events: AsyncIterable<ChatStreamEvent>; close(): void },
    held: Held,
    sink: EventSink,
  ): Promise<number> {
    const { admission, at, promptTokens, worstCase, allowance, wantUsage, provider } = held;
    // Text past this length is past any output the request allowed (no token of o200k_base is
    // longer than 128 characters, 128 spaces; JSON mode can write whitespace up to the limit):
    // an upstream writing on regardless is cut off, not relayed without end.
    const maxText = allowance * 128 + 4096;
    let usage: Usage | undefined;
    let creditsCharged = 0;
    let producedText = '';
    /** Reasoning written beside the text (deltaReasoning): billed output too, counted with it. */
    let reasoningText = '';
    const countedOutput = () => countText(reasoningText) + countText(producedText);
    /** The upstream's stream ended well and everything before [DONE] went out. */
    let complete = false;
    let status: UsageStatus = 'ok';
    let httpStatus = 200;
    let drainTimer: NodeJS.Timeout | undefined;
    /** The drain ran out and the gateway closed the upstream itself: what ends the loop then is no upstream failure. */
    let drained = false;
    /** The upstream failed after the client had left (the drain reads on). */
    let failedUnseen = false;
    const onClientGone = () => {
      drainTimer = setTimeout(() => {
        drained = true;
        stream.close();
      }, this.deps.drainUsageMs);
    };
    const stopListening = ctx.client.onGone(onClientGone);
    /** The latest chunk: its id and created for a usage chunk made here. */
    let last: JsonObject | undefined;
    try {
      for await (const event of stream.events) {
        const chunk = event.chunk;
        last = chunk;
        producedText += deltaText(chunk);
        reasoningText = keptForCount(reasoningText, deltaReasoning(chunk), maxText);
        if (producedText.length > maxText) throw malformedResponse(provider, `the stream went on past the output limit (${allowance} tokens)`);
        if (event.usage) {
          usage = event.usage;
          if (ctx.client.gone) break;
          // What the settlement below charges (it logs what it corrects; this does not).
          const credits = usableCredits(this.deps.pricing.chatCredits(model, { ...usage, outputTokens: Math.min(usage.outputTokens, allowance) }), worstCase);
          if (wantUsage) {
            chunk.meta = { usage: { credits_used: credits } };
          } else {
            const choices = chunk.choices;
            if (!Array.isArray(choices) || choices.length === 0) continue;
            delete chunk.usage;
          }
        }
        // A usage chunk was changed above; any other one the adapter left as sent goes out as sent.
        if (!ctx.client.gone) {
          const slow = sink.send(event.usage === undefined && event.raw !== undefined ? event.raw : JSON.stringify(chunk));
          if (slow) await slow; // only under backpressure: no extra hop per event otherwise
        }
      }
      if (!ctx.client.gone) {
        if (wantUsage && usage === undefined) {
          // The client asked for the final usage chunk and the upstream sent none (older servers
          // ignore stream_options): it gets the counted usage, which is what is charged below.
          usage = { promptTokens, outputTokens: countedOutput() };
          await sink.send(JSON.stringify(countedUsageChunk(last, model.id, usage, this.deps.pricing.chatCredits(model, { promptTokens: usage.promptTokens, outputTokens: Math.min(usage.outputTokens, allowance) }))));
        }
        // [DONE] waits for the settlement below: a client holding the whole answer has its record
        // (a crash in between would leave a complete stream with no charge and no ledger row).
        complete = true;
      }
    } catch (err) {
      if (ctx.client.gone) failedUnseen = !drained;
      else {
        status = 'error';
        httpStatus = statusOf(err);
        this.deps.logger.warn({ err, requestId: ctx.requestId }, 'stream failed after it started');
        try {
          await sink.fail(err);
        } catch {
          // The client is gone too; the finally block still settles.
        }
      }
    } finally {
      clearTimeout(drainTimer);
      stopListening();
      stream.close();
      if (ctx.client.gone) {
        status = 'aborted';
        httpStatus = 499;
      }
      // No output and no usage: nothing was produced.
      if ((status === 'error' || failedUnseen) && producedText === '' && reasoningText === '' && usage === undefined) {
        // SPEC §7: an upstream error or timeout before any output releases everything, whether or
        // not the client is still there. (A client that left while the upstream still worked is
        // charged the prompt once the drain runs out: the upstream had taken the request.)
        await admission.release();
        await this.append(this.recordOf(ctx, model, { promptTokens: 0, outputTokens: 0 }, 0, status, httpStatus, at, null));
      } else {
        // Without upstream usage (the drain ran out, or the upstream never sends it) charge the
        // prompt plus the output the upstream produced, counted with the tokenizer.
        const counted = usage ?? { promptTokens, outputTokens: countedOutput() };
        const charged = { ...counted, outputTokens: this.chargedOutput(ctx, counted.outputTokens, allowance) };
        creditsCharged = this.chargeable(ctx, this.deps.pricing.chatCredits(model, charged), worstCase);
        // Charged for what the serving provider produced (its invoice has it), whoever ended the stream.
        await this.settleAndRecord(admission, this.recordOf(ctx, model, charged, creditsCharged, status, httpStatus, at, provider));
      }
    }
    if (complete && !ctx.client.gone) {
      try {
        await sink.send('[DONE]');
      } catch {
        // The client left at the last moment; it is settled either way.
      }
    }
    return creditsCharged;
  }
}

/** Admission (rate-limit) headers plus the note of what shaping clamped. */
function responseHeaders(admission: Admission, shaped: ShapeOutcome): Record<string, string> {
  const headers = admission.headers();
  if (shaped.clamped.length > 0) headers['x-tollgate-clamped'] = shaped.clamped.join(', ');
  return headers;
}

/**
 * SPEC §6: every /v1 response carries the limit headers, an upstream's error answer after
 * admission included (with the reservation given back).
 */
function withLimitHeaders(err: unknown, admission: Admission): unknown {
  if (err instanceof GatewayError || err instanceof UpstreamHttpError) {
    const headers = admission.headers();
    for (const k in headers) err.headers[k] ??= headers[k]!;
  }
  return err;
}

/** What a stream's relay holds for its settlement. */
interface Held {
  admission: Admission;
  /** When it was admitted (its record's date). */
  at: number;
  promptTokens: number;
  worstCase: number;
  /** The most output tokens the request allows, all choices together (outputAllowance). */
  allowance: number;
  wantUsage: boolean;
  /** The provider serving the stream (its route's, a fallback's included): the record names it. */
  provider: string;
}

/** A failure as a log line shows it: status and code, not the message (an upstream's text). */
function errorSummary(err: unknown): { status: number; code: string | null } {
  if (err instanceof GatewayError) return { status: err.status, code: err.code };
  if (err instanceof UpstreamHttpError) return { status: err.status, code: err.body.error.code };
  return { status: 500, code: null };
}

function statusOf(err: unknown): number {
  if (err instanceof GatewayError || err instanceof UpstreamHttpError) return err.status;
  return 500;
}
