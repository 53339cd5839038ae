// Resolves configured plans into complete rule lists: a preset's rules, each overridable by id
// with a partial rule, plus the plan's own rules. Run at config load so a bad plan fails the start.
import { presets } from './presets.js';
import { ruleSchema, type PlanConfig, type Rule } from './schema.js';

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
    plan.rules.forEach((entry, i) => {
      const at = rules.findIndex((r) => r.id === entry.id);
      const candidate = at >= 0 ? { ...rules[at], ...entry } : entry;
      const parsed = ruleSchema.safeParse(candidate);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        problems.push(`plans.${name}.rules[${i}]${issue.path.length ? `.${issue.path.join('.')}` : ''}: ${issue.message}`);
        return;
      }
      const rule = parsed.data;
      if ('measure' in rule && rule.measure !== 'concurrent' && rule.window === undefined) {
        problems.push(`plans.${name}.rules[${i}].window: a ${rule.measure} rule needs a window (minute, hour, day, month, lifetime)`);
      }
      if ('shape' in rule) {
        const needsLimit = rule.shape === 'max_output_tokens' || rule.shape === 'images_per_request' || rule.shape === 'max_request_cost';
        if (needsLimit && rule.limit === undefined) problems.push(`plans.${name}.rules[${i}].limit: a ${rule.shape} rule needs a limit`);
        if (rule.shape === 'image_sizes' && rule.maxSize === undefined) problems.push(`plans.${name}.rules[${i}].maxSize: an image_sizes rule needs maxSize`);
      }
      // An id already in the list (from the preset or an earlier entry) is overridden in place.
      if (at >= 0) rules[at] = rule;
      else rules.push(rule);
    });
    resolved.set(name, {
      name,
      rules,
      prepaid: plan.prepaid ?? preset?.prepaid ?? false,
      proModelsViaApi: plan.proModelsViaApi ?? preset?.proModelsViaApi ?? true,
    });
  }
  return { plans: resolved, problems };
}
