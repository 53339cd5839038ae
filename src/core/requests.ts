// Request schemas of the public API. Known fields are checked for type; unknown fields pass
// through to the upstream untouched (loose objects), as an OpenAI-compatible gateway must.
import { z } from 'zod';
import { GatewayError } from '../errors/gateway-error.js';
import { isObject } from '../lib/is-object.js';
import { decodeCursor } from '../storage/cursor.js';
import { weakPassword, weakPasswordMessage } from './password-policy.js';

const MESSAGE_ROLES = ['system', 'developer', 'user', 'assistant', 'tool', 'function'] as const;

const message = z.looseObject({
  role: z.enum(MESSAGE_ROLES),
  content: z.union([z.string(), z.array(z.looseObject({ type: z.string() })), z.null()]).optional(),
  name: z.string().optional(),
});

const tokenLimit = z.number().int().positive().nullable().optional();

export const chatRequest = z.looseObject({
  model: z.string().min(1),
  messages: z.array(message).min(1),
  stream: z.boolean().nullable().optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullable().optional(),
  max_tokens: tokenLimit,
  max_completion_tokens: tokenLimit,
  n: z.number().int().min(1).max(128).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().min(0).max(1).nullable().optional(),
  tools: z.array(z.looseObject({ type: z.string() })).optional(),
  // llama.cpp's server reads n_predict before max_tokens: passed through, it would let a request
  // write past the output cap and the worst case reserved for it.
  n_predict: z.never({ error: 'not accepted: set the output limit with max_tokens or max_completion_tokens' }).optional(),
});

/** A token id as the schema's `z.number().int()` takes it. */
const tokenId = (v: unknown) => Number.isSafeInteger(v);

/**
 * An embeddings `input`: a non-empty string, or a non-empty array of non-empty strings, of token
 * ids, or of non-empty token arrays (OpenAI refuses an empty string: it has nothing to embed, and
 * passed on it cost a round trip to a 400 the provider words its own way). Checked by hand in one pass: as a zod union of those four shapes, each branch that
 * did not match walked the whole array and made an issue per element first — 2.4 million token
 * arrays (a 9.6 MB body, any valid key) held the event loop 18 s before anything was counted.
 */
export function embeddingInputOk(v: unknown): v is string | string[] | number[] | number[][] {
  if (typeof v === 'string') return v.length > 0;
  if (!Array.isArray(v) || v.length === 0) return false;
  const first: unknown = v[0];
  if (typeof first === 'string') return v.every((x) => typeof x === 'string' && x.length > 0);
  if (typeof first === 'number') return v.every(tokenId);
  return v.every((x) => Array.isArray(x) && x.length > 0 && x.every(tokenId));
}

export const embeddingRequest = z.looseObject({
  model: z.string().min(1),
  input: z.custom<string | string[] | number[] | number[][]>(embeddingInputOk, {
    error: 'expected a non-empty string, or a non-empty array of non-empty strings, of token ids (integers) or of non-empty token arrays',
  }),
  encoding_format: z.enum(['float', 'base64']).optional(),
  dimensions: z.number().int().positive().optional(),
});

const falSizePresets = ['square_hd', 'square', 'portrait_4_3', 'portrait_16_9', 'landscape_4_3', 'landscape_16_9'] as const;

/** The longest side a custom image size may have (fal's flux models take up to 14,142 px). */
const MAX_IMAGE_SIDE = 14_142;

function sidesInBounds(size: string): boolean {
  return size.split('x').every((side) => intIn(Number(side), 1, MAX_IMAGE_SIDE));
}

/**
 * An optional field OpenAI's images API also takes as null, read as absent: the SDKs' own types
 * allow it (`n?: number | null`), and clients generated from its OpenAPI spec send null for unset.
 */
const orNull = <T extends z.ZodType>(schema: T) => schema.nullish().transform((v) => v ?? undefined);

export const imageRequest = z.looseObject({
  model: z.string().min(1),
  prompt: z.string().min(1),
  n: orNull(z.number().int().min(1).max(10)),
  num_images: z.number().int().min(1).max(10).optional(),
  // Bounded like image_size: a model with any size allowed priced 99999999999x99999999999 at
  // 5.7e19 credits (past what a counter holds exactly) and sent it upstream.
  size: orNull(
    z
      .string()
      .regex(/^\d+x\d+$/, 'expected WIDTHxHEIGHT, e.g. 512x512')
      .refine(sidesInBounds, `each side must be 1 to ${MAX_IMAGE_SIDE} pixels`),
  ),
  image_size: z
    .union([z.enum(falSizePresets), z.strictObject({ width: z.number().int().positive().max(MAX_IMAGE_SIDE), height: z.number().int().positive().max(MAX_IMAGE_SIDE) })])
    .optional(),
  response_format: orNull(z.enum(['url', 'b64_json'])),
  image_url: z.string().min(1).optional(),
});

/** fal's named sizes, in pixels (fal.ai ImageSize presets). */
export const falSizePresetPixels: Record<(typeof falSizePresets)[number], { width: number; height: number }> = {
  square_hd: { width: 1024, height: 1024 },
  square: { width: 512, height: 512 },
  portrait_4_3: { width: 768, height: 1024 },
  portrait_16_9: { width: 576, height: 1024 },
  landscape_4_3: { width: 1024, height: 768 },
  landscape_16_9: { width: 1024, height: 576 },
};

export type ChatRequest = z.infer<typeof chatRequest>;
export type EmbeddingRequest = z.infer<typeof embeddingRequest>;
export type ImageRequest = z.infer<typeof imageRequest>;

// The chat body checked by hand, for the request path. zod's parse of a loose object copies it and
// every message, and runs each field through a chain of checks: checking by hand cost 4.9 % less
// CPU per request at saturation (bench/README.md). This accepts exactly what `chatRequest` accepts
// (a test compares the two on 743 bodies) and hands the body back as it is, so the request path
// may change the parsed request body itself (shaping clamps max_tokens). Anything it refuses goes
// to zod, whose issue names the field at fault, so errors are written in one place.
const ROLES: ReadonlySet<string> = new Set(MESSAGE_ROLES);

const absent = (v: unknown) => v === undefined || v === null;
const intIn = (v: unknown, min: number, max: number) => Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
const numberIn = (v: unknown, min: number, max: number) => typeof v === 'number' && v >= min && v <= max;
const typedParts = (v: unknown) => Array.isArray(v) && v.every((p) => isObject(p) && typeof p.type === 'string');

function messageOk(m: unknown): boolean {
  if (!isObject(m) || typeof m.role !== 'string' || !ROLES.has(m.role)) return false;
  const c = m.content;
  if (!(c === undefined || c === null || typeof c === 'string' || typedParts(c))) return false;
  return m.name === undefined || typeof m.name === 'string';
}

export function chatBodyOk(b: Record<string, unknown>): boolean {
  const so = b.stream_options;
  return (
    typeof b.model === 'string' &&
    b.model.length > 0 &&
    Array.isArray(b.messages) &&
    b.messages.length > 0 &&
    b.messages.every(messageOk) &&
    (absent(b.stream) || typeof b.stream === 'boolean') &&
    (absent(so) || (isObject(so) && (so.include_usage === undefined || typeof so.include_usage === 'boolean'))) &&
    (absent(b.max_tokens) || intIn(b.max_tokens, 1, Number.MAX_SAFE_INTEGER)) &&
    (absent(b.max_completion_tokens) || intIn(b.max_completion_tokens, 1, Number.MAX_SAFE_INTEGER)) &&
    (absent(b.n) || intIn(b.n, 1, 128)) &&
    (absent(b.temperature) || numberIn(b.temperature, 0, 2)) &&
    (absent(b.top_p) || numberIn(b.top_p, 0, 1)) &&
    (b.tools === undefined || typedParts(b.tools)) &&
    b.n_predict === undefined
  );
}

/** A chat body as `parseBody(chatRequest, body)` returns it, without the copy; the same errors. */
export function parseChatBody(body: unknown): ChatRequest {
  if (isObject(body) && chatBodyOk(body)) return body as ChatRequest;
  return parseBody(chatRequest, body);
}

/**
 * Text a store keeps: PostgreSQL's text cannot hold U+0000, so text with it is bad input on every
 * store alike (it was a 500 on PostgreSQL, stored as sent on SQLite).
 */
const storedText = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .refine((s) => !s.includes('\u0000'), 'must not contain U+0000 (NUL)');

/** A name a store keeps (an API key's). */
export const storedName = storedText(100);

/** A ledger page's `next`, passed back as `before` (admin API, web app). */
export const usageCursor = z.string().refine(
  (s) => {
    try {
      decodeCursor(s);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'not a usage cursor: pass back a "next" value unchanged' },
);

/**
 * An API key's own credit limit (admin API, web app, CLI): credits per UTC day, per UTC month, or
 * in all; null removes it. At most 10^15, as a top-up: larger does not fit the stores exactly.
 */
export const keyLimit = z
  .strictObject({ credits: z.number().int().positive().max(1e15), window: z.enum(['day', 'month', 'lifetime']) })
  .nullable();

/** A key's expiry as the APIs take it: an ISO 8601 instant with its offset; null: never (key-settings.ts checks it is ahead). */
export const keyExpiry = z.iso.datetime({ offset: true }).nullable();

/** The models a key may call: 1 to 100 of the catalog's ids (key-settings.ts checks they exist); null: every model its plan allows. */
export const keyModels = z.array(z.string().min(1).max(256)).min(1).max(100).nullable();

/** A key's settings in a PATCH (admin API, web app): any of them, at least one. */
export const keyPatch = z
  .strictObject({ limit: keyLimit.optional(), expiresAt: keyExpiry.optional(), models: keyModels.optional() })
  .refine((p) => p.limit !== undefined || p.expiresAt !== undefined || p.models !== undefined, { message: 'give limit, expiresAt or models' });

/** The operator's note on why an account is suspended (admin API, CLI). */
export const suspensionReason = storedText(500);

/** A top-up's idempotency key (admin API's `Idempotency-Key` header, CLI): as Stripe's API takes them. */
export const idempotencyKeyPattern = /^[\x20-\x7e]{1,255}$/;

/** A web sign-in password being set (sign-up, or the operator through the admin API). */
export const newPassword = z
  .string()
  .min(8, 'at least 8 characters')
  .max(1024)
  .superRefine((password, ctx) => {
    const why = weakPassword(password);
    if (why !== null) ctx.addIssue({ code: 'custom', message: weakPasswordMessage(why) });
  });

/** `newPassword` of an account signing in with `email`: its address is refused as its password too. */
export function checkPasswordFor(password: string, email: string | null): void {
  const why = weakPassword(password, email);
  if (why !== null) throw new GatewayError('invalid_request', { vars: { detail: `password: ${weakPasswordMessage(why)}` }, param: 'password' });
}

function paramOf(path: readonly PropertyKey[]): string | null {
  if (path.length === 0) return null;
  return path.reduce<string>((acc, seg) => (typeof seg === 'number' ? `${acc}[${seg}]` : acc ? `${acc}.${String(seg)}` : String(seg)), '');
}

/** Parses a body or throws `invalid_request` naming the first field at fault. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  if (body === undefined) throw new GatewayError('invalid_request', { vars: { detail: 'the body is empty: send a JSON object' } });
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new GatewayError('invalid_request', { vars: { detail: 'the body must be a JSON object' } });
  }
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  // A key a strict schema does not take is reported on the object holding it: the key itself is
  // the field at fault (SPEC §5), as `stream` sent to the Playground, where the message names it.
  const param = paramOf(issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : issue.path);
  throw new GatewayError('invalid_request', { vars: { detail: param ? `${param}: ${issue.message}` : issue.message }, param });
}
