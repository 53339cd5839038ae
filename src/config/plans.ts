// Resolves configured plans into complete rule lists: a preset's rules, each overridable by id
// with a partial rule, plus the plan's own rules. Run at config load so a bad plan fails the start.
import { presets } from './presets.js';
import { measureRule, shapeRule, type MeasureRule, type PlanConfig, type Rule } from './schema.js';

/** Shapes that can only refuse: nothing in a request can be cut down to pass them. */
const REJECT_ONLY = new Set(['image_input', 'max_request_cost']);

export interface ResolvedPlan {
  name: string;
  rules: readonly Rule[];
  prepaid: boolean;
  proModelsViaApi: boolean;
}

export function resolvePlans(plans: Readonly<Record<string, PlanConfig>>): { plans: Map<string, ResolvedPlan>; problems: string[] } {
  const resolved = new Map<string, ResolvedPlan>();
  const problems: string[] = [];
  for (const [name, plan] of Object.entries(plans)) {
    const preset = plan.preset ? presets[plan.preset] : undefined;
    const rules: Rule[] = preset ? preset.rules.map((r) => ({ ...r })) : [];
    const own = new Map<string, number>();
    plan.rules.forEach((entry, i) => {
      const at = `plans.${name}.rules[${i}]`;
      // Overriding a preset's rule is what an id already there means; twice in the plan's own list
      // it is a mistake, and the later entry would silently merge into the earlier.
      const first = own.get(entry.id);
      if (first !== undefined) {
        problems.push(`${at}.id: duplicate rule id '${entry.id}' (also rules[${first}])`);
        return;
      }
      own.set(entry.id, i);
      const index = rules.findIndex((r) => r.id === entry.id);
      const candidate = index >= 0 ? { ...rules[index], ...entry } : entry;
      // Parsed against its own kind, so each problem is named (a union only says "Invalid input").
      const parsed = ('shape' in candidate ? shapeRule : measureRule).safeParse(candidate);
      if (!parsed.success) {
        for (const issue of parsed.error.issues) {
          problems.push(`${at}${issue.path.map((seg) => (typeof seg === 'number' ? `[${seg}]` : `.${String(seg)}`)).join('')}: ${issue.message}`);
        }
        return;
      }
      const rule: Rule = parsed.data;
      if ('measure' in rule && rule.measure !== 'concurrent' && rule.window === undefined) {
        problems.push(`${at}.window: a ${rule.measure} rule needs a window (minute, hour, day, month, lifetime)`);
      }
      if ('shape' in rule) {
        const needsLimit = rule.shape === 'max_output_tokens' || rule.shape === 'images_per_request' || rule.shape === 'max_request_cost';
        if (needsLimit && rule.limit === undefined) problems.push(`${at}.limit: a ${rule.shape} rule needs a limit`);
        // 0 output tokens or 0 images is no request at all (upstreams refuse max_tokens 0; n 0 is no image).
        if ((rule.shape === 'max_output_tokens' || rule.shape === 'images_per_request') && rule.limit === 0) {
          problems.push(`${at}.limit: the ${rule.shape} shape needs a limit of at least 1`);
        }
        if (REJECT_ONLY.has(rule.shape) && rule.onExceed === 'clamp') {
          problems.push(`${at}.onExceed: the ${rule.shape} shape cannot be clamped, only rejected`);
        }
        if (rule.shape === 'image_sizes' && rule.maxSize === undefined) problems.push(`${at}.maxSize: an image_sizes rule needs maxSize`);
      }
      // An id of the preset's is overridden in place.
      if (index >= 0) rules[index] = rule;
      else rules.push(rule);
    });
    resolved.set(name, {
      name,
      rules,
      prepaid: plan.prepaid ?? preset?.prepaid ?? false,
      proModelsViaApi: plan.proModelsViaApi ?? preset?.proModelsViaApi ?? true,
    });
  }
  problems.push(...sharedCounterProblems(plans, resolved));
  return { plans: resolved, problems };
}

/**
 * A counter's key is the rule's id, scope and window, not its plan: an account moving between
 * plans keeps the use its rules of the same id counted (a free account's `api_token` credits follow
 * it to a plan that overrides the number). So one id must count one thing in every plan: a credits
 * rule and a requests rule of one id, scope and window would be one counter, and an account moved
 * from one to the other found its credits counted as requests (120 credits used: "all 100
 * requests per day" spent, without one request made).
 */
function sharedCounterProblems(plans: Readonly<Record<string, PlanConfig>>, resolved: ReadonlyMap<string, ResolvedPlan>): string[] {
  const problems: string[] = [];
  const first = new Map<string, { plan: string; rule: MeasureRule }>();
  for (const [name, plan] of resolved) {
    for (const rule of plan.rules) {
      if (!('measure' in rule) || rule.measure === 'concurrent') continue;
      const counter = `${rule.id} ${rule.scope} ${rule.window ?? ''}`;
      const seen = first.get(counter);
      if (!seen) {
        first.set(counter, { plan: name, rule });
        continue;
      }
      if (seen.rule.measure === rule.measure) continue;
      const own = plans[name]!.rules.findIndex((entry) => entry.id === rule.id);
      problems.push(
        `plans.${name}.${own >= 0 ? `rules[${own}]` : 'preset'}.measure: rule '${rule.id}' counts ${rule.measure} here but ${seen.rule.measure} in plan '${seen.plan}', ` +
          `with the same scope and window, so both would be one counter (an account changing plan keeps a rule's use by id): give one of them another id`,
      );
    }
  }
  return problems;
}
