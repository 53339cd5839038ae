// The one config schema (SPEC §10). Every default carries its unit in a comment. Parsing happens
// once at start (config/load.ts); the result is deep-frozen and passed down, never re-read.
import { isIP } from 'node:net';
import { z } from 'zod';

/**
 * What the gateway calls or links to: http or https. WHATWG URL parsing accepts any scheme, so
 * `localhost:11434/v1` (the scheme forgotten) passed as a URL of scheme `localhost:` and every call
 * to that provider failed with a 500.
 */
/** Not the URL itself: it may hold a password. The client libraries threw a stack trace at start instead. */
const NOT_A_URL = 'not a valid URL (check the port, 0-65535, and that reserved characters in the user or password are percent-encoded)';
/**
 * Whether pg can read `u`: it parses as a URL, or — pg's own fallback (pg-connection-string) — it
 * does with a placeholder for an empty host after the credentials, `user:pass@/db?host=/socket/dir`:
 * a Unix socket, which URL alone refuses ("credentials without a host").
 */
const postgresUrlParses = (u: string) => URL.canParse(u) || URL.canParse(u.replace('@/', '@socket/'));
const httpUrl = () => z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' });

/**
 * A secret sent as `Authorization: Bearer <secret>` (admin.token, server.metricsToken): one with
 * whitespace in it — a CR left by an env file written on Windows, a trailing space, a phrase — can
 * never be sent, so the API it guards refused every call with nothing at start to say why.
 */
const bearerSecret = () =>
  z
    .string()
    .refine((s) => !/\s/.test(s), { message: 'holds whitespace (a space, tab, CR or newline), which an Authorization: Bearer header cannot carry: no caller could ever present it' })
    .default('');

const sizeString = z.string().regex(/^\d+x\d+$/, 'a size is WIDTHxHEIGHT, e.g. 512x512');
const usdPerMillionTokens = z.number().nonnegative();

const chatPrice = z
  .strictObject({
    input: usdPerMillionTokens,
    output: usdPerMillionTokens,
    /**
     * Prompt tokens the upstream served from its prompt cache, which OpenAI, DeepSeek and others
     * bill at a discount (gpt-4o-mini: 0.075 against 0.15). Absent: they cost `input`.
     */
    cachedInput: usdPerMillionTokens.optional(),
    /**
     * Prompt tokens the upstream wrote to its prompt cache, which Anthropic bills at a premium
     * (1.25 × input for its 5-minute cache: claude-sonnet-4-5 3.75 against 3), as `usage` reports
     * them (`cache_creation_input_tokens`). Absent: they cost `input`. The worst case then prices
     * every prompt token at the dearer of the two, since any of them may be written.
     */
    cacheWriteInput: usdPerMillionTokens.optional(),
    /**
     * Audio tokens, which OpenAI's audio models bill at their own rates (gpt-4o-audio-preview: 40
     * in, 80 out, against 2.50 / 10 for text): `input_audio` parts of a prompt and the audio of an
     * answer asked for with `modalities: ["audio"]`, as `usage` reports them
     * (`prompt_tokens_details.audio_tokens`, `completion_tokens_details.audio_tokens`). Absent:
     * they cost `input` / `output`.
     */
    audioInput: usdPerMillionTokens.optional(),
    audioOutput: usdPerMillionTokens.optional(),
    /**
     * USD per call on top of the tokens: the fee some models add to every request (OpenAI's search
     * models: a web search per call, $25–30 per 1,000; Perplexity's request fee). In the worst case
     * and in every charge of a call the upstream answered. Absent: none.
     */
    perRequest: z.number().nonnegative().optional(),
  })
  // The worst case prices every prompt token at `input`: a dearer cached price could pass it.
  .refine((p) => p.cachedInput === undefined || p.cachedInput <= p.input, { message: 'cachedInput must not be above input', path: ['cachedInput'] });
const embeddingPrice = z.strictObject({ input: usdPerMillionTokens });
const imagePrice = z.strictObject({
  /** USD per image: one number for every size, or one per `WxH` size. */
  /** USD per image: one number, or by size (`1024x1024`) and by size and quality (`1024x1024/hd`). */
  perImage: z.union([
    z.number().nonnegative(),
    z.record(z.string().regex(/^\d+x\d+(\/[a-z]+)?$/, 'a size is WIDTHxHEIGHT, optionally /QUALITY: 1024x1024 or 1024x1024/hd'), z.number().nonnegative()),
  ]),
});

const modelBase = {
  id: z.string().min(1),
  provider: z.string().min(1),
  /** The upstream's model id; defaults to `id`. */
  upstream: z.string().min(1).optional(),
  /** Pro models (SPEC §3): badged in the Playground, outside the per-model daily request count. */
  pro: z.boolean().default(false),
  /** Who owns the model, as `/v1/models` reports it; defaults to the provider id. */
  ownedBy: z.string().optional(),
  /**
   * Other providers serving the same model, tried in order when the one before failed without
   * doing any work: unreachable, its key or quota refused, 429 or 5xx (core/routes.ts). The model's
   * price and one reservation cover every try. `upstream` defaults to the model's.
   */
  fallbacks: z
    .array(z.strictObject({ provider: z.string().min(1), upstream: z.string().min(1).optional() }))
    .max(8)
    .optional(),
};

/**
 * How a prompt's count before the call becomes the model's own tokens. Prompts are counted in
 * OpenAI's encodings (o200k_base for chat, cl100k_base for embeddings); a model whose tokenizer
 * splits text finer (a 32,000-token vocabulary: Llama 2, Mistral 7B), or whose server adds a chat
 * template's preamble (tool instructions on vLLM: 100–200 tokens), bills more than was counted,
 * and its settlement then charges past the reservation: concurrent requests could pass a limit
 * by the difference. The count is multiplied by the factor, plus the overhead, before it prices the
 * reservation (and the charge, when the upstream reports no usage); an embedding model's overhead
 * is per input (the special tokens a server adds to each). The context window check
 * (contextTokens) uses the count itself. Settlement logs 'actual cost above the reserved worst
 * case' wherever these are too low.
 */
const promptEstimate = {
  promptTokenFactor: z.number().min(1).max(10).default(1),
  promptOverheadTokens: z.number().int().nonnegative().max(1_000_000).default(0),
};

const chatModel = z.strictObject({
  ...modelBase,
  ...promptEstimate,
  kind: z.literal('chat'),
  /** Accepts image parts in messages. */
  vision: z.boolean().default(false),
  price: chatPrice,
  /** Output ceiling of the model itself, tokens; the worst case when a request names none. */
  maxOutputTokens: z.number().int().positive().default(16_384),
  /**
   * What one image part of a message can cost, tokens: the worst case reserved for it before the
   * upstream says. OpenAI's largest high-detail figure differs by model: 1,445 for gpt-4o (85 + 8
   * tiles × 170), 48,169 for gpt-4o-mini (2,833 + 8 × 5,667), 1,536 patches × a multiplier for the
   * gpt-4.1 family. Too low, a request with images is charged past its reservation.
   */
  imageInputTokens: z.number().int().nonnegative().default(1_445),
  /**
   * The field a plan's output cap is written into when the request names none. OpenAI's reasoning
   * models (o-series, gpt-5) refuse `max_tokens`; older compatible servers (Ollama, llama.cpp)
   * read nothing else.
   */
  outputLimitField: z.enum(['max_tokens', 'max_completion_tokens']).default('max_tokens'),
  /**
   * The model's context window, tokens: a prompt counted past it is refused with 400
   * context_length_exceeded before the upstream call, and counting stops there (9 MB of text
   * counted 215 ms in full, 15 ms to 128,000 tokens). Absent: no such check.
   */
  contextTokens: z.number().int().positive().optional(),
  /**
   * The `service_tier` values a request may name (absent or null always passes): `price` is one
   * tier's, and upstreams bill others at their own rates — OpenAI's `priority` at about 1.75× the
   * standard price (https://openai.com/api-priority-processing/), Groq's `performance` by contract.
   * Any other value is refused with 400 before anything is reserved. Default: the standard tiers
   * and the cheaper `flex` (OpenAI's `auto` and `default`, Groq's `on_demand`).
   */
  serviceTiers: z.array(z.string().min(1)).default(['auto', 'default', 'flex', 'on_demand']),
  /**
   * Media in a prompt by URL (`any`), or only inline as data: URIs (`inline`): for a server inside
   * the operator's network that fetches URLs itself (vLLM, llama.cpp, Ollama), where a URL lets any
   * key holder reach internal addresses through it (core/media-urls.ts).
   */
  mediaUrls: z.enum(['any', 'inline']).default('any'),
});

const embeddingModel = z.strictObject({
  ...modelBase,
  ...promptEstimate,
  kind: z.literal('embedding'),
  price: embeddingPrice,
  /**
   * The most inputs one request may embed (OpenAI's embedding models take 2,048): more is refused
   * with 400 before anything is counted. Absent: no such check (the upstream decides).
   */
  maxInputs: z.number().int().positive().optional(),
  /**
   * Tokens one input may hold (OpenAI's embedding models take 8,192): an input past it is refused
   * with 400 before the upstream call, and counting stops there — one 1 MB input of Hindi took
   * ~540 ms of the event loop to count in full. Absent: no such check.
   */
  contextTokens: z.number().int().positive().optional(),
});

const imageModel = z.strictObject({
  ...modelBase,
  kind: z.literal('image'),
  price: imagePrice,
  /** Sizes the model accepts, `WxH`; empty = any. */
  sizes: z.array(sizeString).default([]),
  /** Size priced and sent when the request names none, `WxH`. */
  defaultSize: sizeString.default('1024x1024'),
  /** Image-to-image: the request must carry `image_url`. */
  imageToImage: z.boolean().default(false),
});

export const modelSchema = z.discriminatedUnion('kind', [chatModel, embeddingModel, imageModel]);

export const providerSchema = z.strictObject({
  id: z.string().min(1),
  /** A provider type from providers/registry.ts (`openai`, `fal`, `anthropic`). Checked against the registry in load.ts. */
  type: z.string().min(1),
  // Credentials in the URL would be dropped without a word (the client sends origin and path only),
  // and the operator would see upstream_auth_failed with no reason: refused here instead.
  baseUrl: httpUrl().refine((u) => !/^[a-z]+:\/\/[^/?#]*@/i.test(u), 'credentials in the URL are not sent: use apiKey or headers (e.g. authorization: "Basic …")'),
  /** Empty or absent: the provider is listed but its models answer 503 provider_not_configured. */
  apiKey: z.string().optional(),
  /** Extra headers sent upstream on every call (e.g. OpenAI-Organization). */
  headers: z.record(z.string(), z.string()).default({}),
});

const windowSchema = z.enum(['minute', 'hour', 'day', 'month', 'lifetime']);
const surfaceSchema = z.enum(['api', 'playground']);

/** Which requests a rule applies to; every given filter must match. */
const ruleFilters = {
  surfaces: z.array(surfaceSchema).min(1).optional(),
  models: z
    .strictObject({
      ids: z.array(z.string()).optional(),
      kinds: z.array(z.enum(['chat', 'embedding', 'image'])).optional(),
      pro: z.boolean().optional(),
    })
    .optional(),
};

const PROXY_LIST_MESSAGE = 'a comma-separated list of IP addresses or CIDRs (10.0.0.0/8), or loopback / linklocal / uniquelocal';
const PROXY_PRESETS = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** What Fastify's trustProxy (proxy-addr) accepts as a string; anything else failed at listen. */
function isProxyList(text: string): boolean {
  return text.split(',').every((item) => {
    const entry = item.trim();
    if (PROXY_PRESETS.has(entry)) return true;
    const [address, prefix, extra] = entry.split('/');
    const family = isIP(address ?? '');
    if (family === 0 || extra !== undefined) return false;
    if (prefix === undefined) return true;
    if (!/^\d{1,3}$/.test(prefix)) return false;
    return Number(prefix) <= (family === 4 ? 32 : 128);
  });
}

/**
 * Names the limiter's own keys use beside the rules' counters (`tg:{account}:<rule id>…`): a rule
 * called `balance` counted into the prepaid balance, `resexp` broke the store's scripts.
 */
export const RESERVED_RULE_IDS: ReadonlySet<string> = new Set(['balance', 'receipts', 'resexp', 'cexp', 'res', 'done', 'session_epoch', 'stripe_session', 'keys_created', 'key_limit', 'key_limit_changes']);
const ruleId = z
  .string()
  .regex(/^[a-z][a-z0-9_]*$/, 'rule ids are snake_case')
  .refine((id) => !RESERVED_RULE_IDS.has(id), { message: `this rule id is reserved for the limiter's own keys (${[...RESERVED_RULE_IDS].join(', ')})` });

/** A counted limit: credits or requests per window, or requests in flight at once. */
export const measureRule = z.strictObject({
  id: ruleId,
  measure: z.enum(['credits', 'requests', 'concurrent']),
  limit: z.number().int().nonnegative(),
  /** Required for credits and requests; ignored for concurrent. */
  window: windowSchema.optional(),
  scope: z.enum(['account', 'key', 'account+model']).default('account'),
  ...ruleFilters,
});

/** A constraint on the request itself, checked (or applied) before anything is reserved. */
export const shapeRule = z.strictObject({
  id: ruleId,
  shape: z.enum(['max_output_tokens', 'image_input', 'images_per_request', 'image_sizes', 'max_request_cost']),
  /** Tokens (max_output_tokens), images (images_per_request) or credits (max_request_cost). */
  limit: z.number().int().nonnegative().optional(),
  /** image_sizes: the largest allowed size, `WxH`. */
  maxSize: z.string().regex(/^[1-9]\d*x[1-9]\d*$/, 'a size WxH, e.g. 512x512').optional(),
  onExceed: z.enum(['clamp', 'reject']).default('reject'),
  ...ruleFilters,
});

export const ruleSchema = z.union([measureRule, shapeRule]);

/** A rule in a plan that uses a preset: a full rule, or a partial one overriding a preset rule by id. */
const planRuleEntry = z.looseObject({ id: z.string() });

export const planSchema = z.strictObject({
  preset: z.enum(['free-tier', 'pay-as-you-go']).optional(),
  rules: z.array(planRuleEntry).default([]),
  /** Spends the account's prepaid credit balance; a request whose worst case does not fit is refused. */
  prepaid: z.boolean().optional(),
  /** May this plan call Pro models through the API? (SPEC §3 pro_models; default yes.) */
  proModelsViaApi: z.boolean().optional(),
});

export const configSchema = z.strictObject({
  server: z
    .strictObject({
      host: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65_535).default(8080),
      /**
       * Where users reach the gateway; used in error messages and links, which append their paths
       * (`/app/billing`): kept without a trailing slash, which made those `https://x.example//app/billing`.
       */
      publicUrl: httpUrl()
        .default('http://localhost:8080')
        .transform((u) => u.replace(/\/+$/, '')),
      /** Largest accepted request body, bytes (images sent inline need room). */
      // At least 1 KiB: below, every ordinary request is 413 (10 bytes passed, a unit slip for 10 MB).
      bodyLimitBytes: z.number().int().min(1024, 'at least 1024 bytes: a smaller limit refuses every ordinary request (the unit is bytes: 10485760 for 10 MiB)').default(10 * 1024 * 1024),
      /**
       * Whose X-Forwarded-* to believe (Fastify's trustProxy): false, the proxies' addresses or
       * CIDRs ("10.0.0.0/8,127.0.0.1"), or true — every hop, which lets a client choose its own
       * address for the per-address limits. (Fastify 5 reads a hop count as "trust none".)
       */
      trustProxy: z
        .preprocess((v) => (v === 'true' ? true : v === 'false' ? false : v), z.union([z.boolean(), z.string().refine(isProxyList, PROXY_LIST_MESSAGE)]))
        .default(false),
      /**
       * On SIGTERM / SIGINT, how long to go on serving with /readyz answering 503 before the stop
       * begins, ms (0: stop at once). A load balancer takes an instance out of rotation a probe
       * period or an endpoint update after the signal; an instance that stopped accepting at once
       * had its new connections refused meanwhile.
       */
      shutdownDelayMs: z.number().int().min(0).max(120_000).default(0),
      /**
       * Browser origins that may call /v1 (CORS, as OpenAI's API allows any): `*`, or exact origins
       * such as `https://app.example.com`; `[]` sends no CORS headers at all (http/cors.ts).
       */
      corsOrigins: z
        .array(z.union([z.literal('*'), z.string().regex(/^https?:\/\/[^/\s?#]+$/, 'an origin: scheme://host[:port], no path')]))
        .default(['*']),
      /**
       * Bearer token GET /metrics requires (Prometheus: `authorization: { credentials: … }`); empty:
       * open. Its counters are the operator's business (credits and requests by model).
       */
      metricsToken: bearerSecret(),
      /**
       * A stream that sends its client nothing for this long gets an SSE comment, ms; 0: never. A
       * reasoning model sends nothing while it thinks, often for minutes, and a proxy in front
       * (nginx's proxy_read_timeout, a load balancer's idle timeout: 60 s by default) cut the
       * stream meanwhile — its prompt charged, and again for each retry of the client's SDK.
       */
      sseKeepAliveMs: z.number().int().min(0).max(600_000).default(15_000),
    })
    .prefault({}),
  storage: z
    .strictObject({
      /** `sqlite:<path>` (`sqlite::memory:` for tests). A bare `sqlite:` names no file: refused here, not at open. */
      url: z
        .string()
        .regex(/^(sqlite:.|postgres(ql)?:\/\/)/, 'use sqlite:<path> or postgres://…')
        .refine((u) => u.startsWith('sqlite:') || postgresUrlParses(u), NOT_A_URL)
        .default('sqlite:./data/tollgate.db'),
      /** SQLite, serving process: how long writes may wait in the pending log before they are applied to the tables, ms (200: bench/README.md "Profile-driven changes"). */
      pendingApplyMs: z.number().int().min(1).max(60_000).default(200),
    })
    .prefault({}),
  limiter: z
    .strictObject({
      /** `embedded` (counters in this process's SQLite database) or `redis://host:6379` (shared by every instance). */
      url: z
        .string()
        .regex(/^(embedded$|rediss?:\/\/)/, 'use embedded or redis://host:port')
        .refine((u) => u === 'embedded' || URL.canParse(u), NOT_A_URL)
        .default('embedded'),
      /**
       * When the limiter cannot be reached: `closed` refuses requests with 503 limiter_unavailable;
       * `open` admits them unmetered, logs it, and charges their counters once it is back.
       */
      onUnavailable: z.enum(['closed', 'open']).default('closed'),
    })
    .prefault({}),
  admin: z
    .strictObject({
      /** Bearer token of the admin API; empty = the admin API refuses every call. */
      token: bearerSecret(),
    })
    .prefault({}),
  credits: z
    .strictObject({
      /** Credits per US dollar: the seed service's published rate is $1 = 2,000,000. */
      perUsd: z.number().positive().default(2_000_000),
    })
    .prefault({}),
  upstream: z
    .strictObject({
      /** TCP+TLS connect timeout, ms. */
      connectTimeoutMs: z.number().int().positive().default(10_000),
      /** Time from sending the request to the response headers (first byte), ms. */
      firstByteTimeoutMs: z.number().int().positive().default(60_000),
      /** Whole call including the body or stream, ms. */
      totalTimeoutMs: z.number().int().positive().default(600_000),
      /** Request sent → answer, for a call that does not stream, ms; absent: totalTimeoutMs alone. */
      answerTimeoutMs: z.number().int().positive().optional(),
      /** Longest silence between two body chunks of a stream, ms. */
      idleTimeoutMs: z.number().int().positive().default(60_000),
      /** Keep-alive connections per upstream origin. */
      connectionsPerOrigin: z.number().int().positive().default(128),
      /**
       * After a model's provider failed without doing the work, how long its fallbacks are tried
       * before it, ms (core/routes.ts); 0: always in the configured order.
       */
      fallbackCooldownMs: z.number().int().min(0).max(3_600_000).default(30_000),
    })
    .prefault({}),
  keys: z
    .strictObject({
      /**
       * How stale a cached key may be, ms: the credentials version is read this often. Revocation
       * reaches other instances within this plus that read, which the 100 ms left below the one
       * second SPEC §9 promises is for.
       */
      cacheTtlMs: z.number().int().min(0).max(900).default(500),
      /** Cached keys at most. */
      cacheSize: z.number().int().positive().default(10_000),
    })
    .prefault({}),
  logging: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    })
    .prefault({}),
  providers: z.array(providerSchema).default([]),
  models: z.array(modelSchema).default([]),
  /** Plans by name (SPEC §4). `{ preset }` starts from a built-in; `rules` add to it or override it by id. */
  plans: z.record(z.string(), planSchema).default({
    free: { preset: 'free-tier', rules: [], prepaid: false, proModelsViaApi: true },
    paid: { preset: 'pay-as-you-go', rules: [], prepaid: true, proModelsViaApi: true },
  }),
  metering: z
    .strictObject({
      /** A reservation or concurrency lease not renewed for this long is given back (crashed process), ms. */
      reservationTtlMs: z.number().int().min(1000).default(30_000),
      /** How often in-flight requests renew their reservations, ms (well under the TTL). */
      renewEveryMs: z.number().int().min(100).default(10_000),
      /** After a client leaves mid-stream, how long to keep reading upstream for its usage, ms. */
      drainUsageMs: z.number().int().min(0).default(2_000),
    })
    .prefault({}),
  defaultPlan: z.string().default('free'),
  web: z
    .strictObject({
      /**
       * HMAC-SHA256 key of session cookies, shared by every instance. Empty: a random one is made
       * at start (sessions then end on restart and work on one instance only; a warning is logged).
       */
      sessionSecret: z.string().default(''),
      /** How long a sign-in lasts, hours. */
      sessionTtlHours: z.number().positive().max(24 * 366).default(168),
      /** Sign-in attempts per email per minute (and 4× that per client address). */
      signinAttemptsPerMinute: z.number().int().positive().default(5),
      /**
       * Wrong sign-in attempts at one email from one client address per UTC hour. The minute's
       * limit alone let one address make 7,200 guesses a day at one account; this closes that
       * address for that email until the hour ends (the owner signs in from elsewhere).
       */
      signinFailuresPerHour: z.number().int().positive().default(20),
      /** A wrong email or password is answered only after this delay, ms. */
      wrongPasswordDelayMs: z.number().int().min(0).max(60_000).default(400),
      /**
       * Accounts one client address may create per hour. Each comes with the free tier's daily
       * budget, so unlimited sign-up is unlimited free credits (and scrypt work); 0 closes sign-up.
       */
      signupsPerHour: z.number().int().min(0).default(10),
      /**
       * API keys one account may create per UTC day in the web app (the admin API is not limited).
       * Unlimited, one free account made 300,000 in minutes, and each list of them (GET
       * /app/api/keys) then held the event loop 3.6 s; 0: only the operator creates keys.
       */
      keysPerDay: z.number().int().min(0).default(50),
      /**
       * Changes of its keys' credit limits one account may make per UTC day in the web app (the
       * admin API and the CLI are not limited). Each empties every instance's key cache (the limit
       * travels in it), so unlimited, one account alternating two limits kept them all empty.
       */
      keyLimitChangesPerDay: z.number().int().positive().default(50),
    })
    .prefault({}),
  billing: z
    .strictObject({
      /** The billing provider of the web app's Billing page: `manual` (core/billing.ts) or `stripe` (billing/stripe.ts). */
      provider: z.enum(['manual', 'stripe']).default('manual'),
      /** provider stripe: its keys (use ${ENV}) and the currency top-ups are charged in. */
      stripe: z
        .strictObject({
          /** A secret (sk_…) or restricted key with Checkout Sessions write access. */
          secretKey: z.string().default(''),
          /** The webhook endpoint's signing secret (whsec_…), for POST /app/api/billing/webhook. */
          webhookSecret: z.string().default(''),
          /** usd only: credits are priced in dollars (credits.perUsd), so a top-up is charged in them. */
          currency: z.literal('usd').default('usd'),
          apiBase: httpUrl().default('https://api.stripe.com'),
        })
        .prefault({}),
      /**
       * manual: whether signed-in users may credit their own balance from the Billing page (demos,
       * trusted teams). Off by default — with open sign-up anyone could mint credits; the operator
       * tops up with the admin API.
       */
      selfTopUp: z.boolean().default(false),
    })
    .prefault({}),
});

export type ConfigInput = z.input<typeof configSchema>;
export type Config = Readonly<z.output<typeof configSchema>>;
export type ModelConfig = z.output<typeof modelSchema>;
export type ChatModelConfig = Extract<ModelConfig, { kind: 'chat' }>;
export type EmbeddingModelConfig = Extract<ModelConfig, { kind: 'embedding' }>;
export type ImageModelConfig = Extract<ModelConfig, { kind: 'image' }>;
export type ProviderConfig = z.output<typeof providerSchema>;
export type Rule = z.output<typeof ruleSchema>;
export type MeasureRule = z.output<typeof measureRule>;
export type ShapeRule = z.output<typeof shapeRule>;
export type PlanConfig = z.output<typeof planSchema>;
