// Whether a plan serves a model at all, for the `available` flag of /v1/models and the Playground's
// model list (SPEC §6: "with a key, each model also says whether this key's plan may use it"). It
// reads the plan's rules as admission and shaping apply them, for the cheapest request the model
// can take: a model every request of which is refused is not available, whatever the counters say.
import type { ResolvedPlan } from '../config/plans.js';
import type { ImageModelConfig, ModelConfig, Rule } from '../config/schema.js';
import { parseSize, type Pricing } from './pricing.js';
import { ruleApplies } from './shaping.js';
import type { Surface } from './types.js';

/**
 * The credits of the cheapest image the rules let through (one image, the smallest priced size
 * within every `image_sizes` rule), or undefined when they let none through: dall-e-3 under the
 * free tier's 512x512, whose smallest size is 1024x1024.
 */
function cheapestImage(model: ImageModelConfig, rules: readonly Rule[], pricing: Pricing): number | undefined {
  // A model without `sizes` takes any size, so some size fits every limit; its one price covers
  // every size up to a megapixel (or it is its defaultSize's).
  if (model.sizes.length === 0) return pricing.imageUnitCredits(model, undefined);
  const limits = rules.flatMap((r) => ('shape' in r && r.shape === 'image_sizes' ? [parseSize(r.maxSize!)] : []));
  let cheapest: number | undefined;
  for (const size of model.sizes.map(parseSize)) {
    if (!limits.every((max) => size.width <= max.width && size.height <= max.height)) continue;
    const credits = pricing.imageUnitCredits(model, size);
    if (credits !== undefined && (cheapest === undefined || credits < cheapest)) cheapest = credits;
  }
  return cheapest;
}

/**
 * Whether any request for `model` on `surface` can pass `plan`: not a Pro model kept from the API,
 * no count limit of 0, and — for an image model — a size the plan allows, at a cost within its
 * request-cost ceiling and its credit limits (a request that alone is over a limit passes in no
 * window). A prepaid balance is not the plan's: an empty one is topped up, not unavailable.
 */
export function planServes(plan: ResolvedPlan, surface: Surface, model: ModelConfig, pricing: Pricing): boolean {
  if (model.pro && surface === 'api' && !plan.proModelsViaApi) return false;
  const rules = plan.rules.filter((r) => ruleApplies(r, surface, model));
  if (rules.some((r) => 'measure' in r && r.measure !== 'credits' && r.limit < 1)) return false;
  if (model.kind !== 'image') return true;
  const cheapest = cheapestImage(model, rules, pricing);
  if (cheapest === undefined) return false;
  return !rules.some((r) => (('shape' in r && r.shape === 'max_request_cost') || ('measure' in r && r.measure === 'credits')) && cheapest > r.limit!);
}
