// Shape rules (SPEC §3, §4): constraints on the request itself, applied before anything is
// estimated or reserved — clamp what may be clamped, refuse what may not. The worst-case cost is
// computed from the shaped request, so a clamp also bounds the reservation.
import type { ModelConfig, Rule, ShapeRule } from '../config/schema.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { ImageCall } from '../providers/provider.js';
import { parseSize, sizeKey } from './pricing.js';
import type { ImageSize, JsonObject, Surface } from './types.js';

export type ShapeTarget =
  | { kind: 'chat'; body: JsonObject }
  | { kind: 'embedding'; body: JsonObject }
  | {
      kind: 'image';
      call: ImageCall;
      size: ImageSize;
      /** Credits for one image of a size (the request's quality), to name only sizes the plan's cost ceiling lets through. */
      unitCredits?: (size: ImageSize) => number | undefined;
    };

export interface ShapeOutcome {
  /** `x-tollgate-clamped` values, e.g. `max_tokens=512`. */
  clamped: string[];
  /** The image size after shaping (may be clamped). */
  size?: ImageSize;
}

/** Does a rule govern this surface and model? Every given filter must match. */
export function ruleApplies(rule: Rule, surface: Surface, model: ModelConfig): boolean {
  if (rule.surfaces && !rule.surfaces.includes(surface)) return false;
  const m = rule.models;
  if (m) {
    if (m.ids && !m.ids.includes(model.id)) return false;
    if (m.kinds && !m.kinds.includes(model.kind)) return false;
    if (m.pro !== undefined && m.pro !== model.pro) return false;
  }
  return true;
}

/**
 * The parts the `image_input` rule refuses. A video is frames of images, billed per frame by the
 * servers that take it (vLLM's `video_url`): left out, a free key sent video where no image passed,
 * reserved as a few tokens of JSON.
 */
const IMAGE_PART_TYPES = new Set(['image_url', 'input_image', 'image', 'video_url']);
const OUTPUT_FIELDS = ['max_tokens', 'max_completion_tokens'] as const;
/** The name `x-tollgate-clamped` gives an output cap, in either field. */
export const OUTPUT_CAP = 'max_tokens';

function shapeChat(rule: ShapeRule, model: ModelConfig, body: JsonObject, clamped: string[]): void {
  if (rule.shape === 'max_output_tokens') {
    const limit = rule.limit!;
    const present = OUTPUT_FIELDS.filter((f) => body[f] !== undefined && body[f] !== null);
    let cut = false;
    for (const field of present) {
      if ((body[field] as number) <= limit) continue;
      if (rule.onExceed === 'reject') {
        throw new GatewayError('max_output_tokens_exceeded', { vars: { rule: rule.id, limit }, param: field });
      }
      body[field] = limit;
      cut = true;
    }
    // Absent means "as long as the model allows": cap it, in the field the model's server reads
    // (outputLimitField: max_tokens, which every OpenAI-compatible server understands, unless the
    // model refuses it).
    if (present.length === 0) {
      const field = model.kind === 'chat' ? model.outputLimitField : 'max_tokens';
      body[field] = limit;
      cut = true;
    }
    // SPEC §3 names the output cap `max_tokens=512` whichever field carried it: the caller knows
    // which one it sent, and a literal client of the contract checks that one header value.
    if (cut) clamped.push(`${OUTPUT_CAP}=${limit}`);
    return;
  }
  if (rule.shape === 'image_input') {
    const messages = Array.isArray(body.messages) ? body.messages : [];
    messages.forEach((m, i) => {
      const content = (m as { content?: unknown }).content;
      if (!Array.isArray(content)) return;
      content.forEach((part, j) => {
        if (IMAGE_PART_TYPES.has((part as { type?: string }).type ?? '')) {
          throw new GatewayError('image_input_not_allowed', { vars: { rule: rule.id }, param: `messages[${i}].content[${j}]` });
        }
      });
    });
  }
}

/** What a size refusal may offer: the sizes a plan allows whose images also fit the plan's cost ceiling (max_request_cost). */
interface SizeAdvice {
  ceiling: number | undefined;
  unitCredits: ((size: ImageSize) => number | undefined) | undefined;
  /** What lifts the plan's refusal: a payment method (the default plan), or only the operator. */
  lift: string;
}

function shapeImage(rule: ShapeRule, model: ModelConfig, call: ImageCall, size: ImageSize, clamped: string[], advice: SizeAdvice): ImageSize {
  if (rule.shape === 'images_per_request') {
    const limit = rule.limit!;
    if (call.n <= limit) return size;
    if (rule.onExceed === 'reject') {
      throw new GatewayError('too_many_images', { vars: { rule: rule.id, limit, model: model.id, n: call.n }, param: call.params?.count ?? 'n' });
    }
    call.n = limit;
    clamped.push(`n=${limit}`);
    return size;
  }
  if (rule.shape === 'image_sizes') {
    const max = parseSize(rule.maxSize!);
    const fits = (s: ImageSize) => s.width <= max.width && s.height <= max.height;
    const sizes = model.kind === 'image' ? model.sizes : [];
    // No `sizes` means the model takes any size: maxSize itself is then the largest allowed.
    const anySize = sizes.length === 0;
    const allowed = anySize ? [max] : sizes.map(parseSize).filter(fits);
    // A model with no size within maxSize cannot pass whatever size is asked for, a small one too.
    if (fits(size) && allowed.length > 0) return size;
    if (rule.onExceed === 'clamp' && allowed.length > 0) {
      const largest = allowed.reduce((a, b) => (b.width * b.height > a.width * a.height ? b : a));
      call.size = largest;
      call.sizePreset = undefined;
      clamped.push(`size=${sizeKey(largest)}`);
      return largest;
    }
    // Only sizes the cost ceiling lets through too: dall-e-2's 256x256 and 512x512 (32,000 and
    // 36,000 credits) were offered on the free tier, whose 512-credit ceiling refuses both.
    const { ceiling, unitCredits } = advice;
    const affordable =
      ceiling === undefined || unitCredits === undefined ? allowed : allowed.filter((s) => (unitCredits(s) ?? 0) * call.n <= ceiling);
    const detail =
      affordable.length > 0
        ? `Your plan allows ${model.id} images up to ${rule.maxSize}: use ${anySize ? `a size within ${rule.maxSize}` : `size ${affordable.map(sizeKey).join(' or ')}`} (the request asked for ${sizeKey(size)}).`
        : allowed.length > 0
          ? `${model.id} images within ${rule.maxSize}, the largest your plan allows (size ${allowed.map(sizeKey).join(' or ')}), cost more than the ` +
            `${ceiling!.toLocaleString('en-US')} credits your plan allows a request, so it cannot be used on this plan. ${advice.lift}`
          : `${model.id} has no size within ${rule.maxSize}, the largest your plan allows (its sizes are ${sizes.join(', ')}), ` +
            `so it cannot be used on this plan. ${advice.lift}`;
    throw new GatewayError('image_size_not_allowed', {
      vars: { rule: rule.id, detail },
      param: call.params?.size ?? (call.sizePreset !== undefined ? 'image_size' : 'size'),
    });
  }
  return size;
}

/** Applies every applicable shape rule except the cost ceiling (which needs the estimate). */
/** `paymentLifts`: whether a payment method lifts the account's plan (payment-lift.ts), for what a refusal advises. */
export function shapeRequest(rules: readonly Rule[], surface: Surface, model: ModelConfig, target: ShapeTarget, paymentLifts = true): ShapeOutcome {
  const clamped: string[] = [];
  let size = target.kind === 'image' ? target.size : undefined;
  let advice: SizeAdvice | undefined;
  for (const rule of rules) {
    if (!('shape' in rule) || rule.shape === 'max_request_cost' || !ruleApplies(rule, surface, model)) continue;
    if (target.kind === 'chat') shapeChat(rule, model, target.body, clamped);
    else if (target.kind === 'image') {
      advice ??= {
        ceiling: costCeiling(rules, surface, model),
        unitCredits: target.unitCredits,
        lift: paymentLifts ? 'Update your payment method to use it.' : 'Only the operator of this service can change that.',
      };
      size = shapeImage(rule, model, target.call, size!, clamped, advice);
    }
  }
  return size ? { clamped, size } : { clamped };
}

/** The lowest max_request_cost of the rules that apply, if any. */
function costCeiling(rules: readonly Rule[], surface: Surface, model: ModelConfig): number | undefined {
  let ceiling: number | undefined;
  for (const r of rules) {
    if ('shape' in r && r.shape === 'max_request_cost' && ruleApplies(r, surface, model)) ceiling = Math.min(ceiling ?? Infinity, r.limit!);
  }
  return ceiling;
}
