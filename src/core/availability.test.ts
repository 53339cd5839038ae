import { describe, expect, it } from 'vitest';
import type { ResolvedPlan } from '../config/plans.js';
import type { ModelConfig, Rule } from '../config/schema.js';
import { planServes } from './availability.js';
import { Pricing } from './pricing.js';

const pricing = new Pricing(2_000_000);
const plan = (rules: Rule[], proModelsViaApi = true): ResolvedPlan => ({ name: 'p', rules, prepaid: false, proModelsViaApi });
const image = (id: string, perImage: number | Record<string, number>, sizes: string[] = []) =>
  ({ id, kind: 'image', provider: 'x', pro: false, sizes, defaultSize: sizes[0] ?? '1024x1024', imageToImage: false, price: { perImage } }) as unknown as ModelConfig;
const chat = { id: 'c', kind: 'chat', provider: 'x', pro: false, price: { input: 1, output: 1 } } as unknown as ModelConfig;
const dalle2 = image('dall-e-2', { '256x256': 0.016, '512x512': 0.018, '1024x1024': 0.02 }, ['256x256', '512x512', '1024x1024']);
const dalle3 = image('dall-e-3', { '1024x1024': 0.04, '1792x1024': 0.08 }, ['1024x1024', '1792x1024']);
const within = (maxSize: string): Rule => ({ id: 'res', shape: 'image_sizes', maxSize, onExceed: 'reject' }) as Rule;
const ceiling = (limit: number): Rule => ({ id: 'cost', shape: 'max_request_cost', limit, onExceed: 'reject' }) as Rule;
const measure = (m: 'credits' | 'requests' | 'concurrent', limit: number, surfaces?: string[]): Rule => ({ id: m, measure: m, limit, window: 'day', scope: 'account', ...(surfaces && { surfaces }) }) as Rule;

describe('planServes', () => {
  it('serves every model on a plan without rules', () => {
    for (const m of [chat, dalle2, dalle3]) expect(planServes(plan([]), 'api', m, pricing)).toBe(true);
  });

  it('an image model with no size within the plan\'s largest is not served; one with a smaller size is', () => {
    expect(planServes(plan([within('512x512')]), 'api', dalle3, pricing)).toBe(false);
    expect(planServes(plan([within('512x512')]), 'api', dalle2, pricing)).toBe(true);
    // A model without sizes takes any size: some size fits.
    expect(planServes(plan([within('64x64')]), 'api', image('flux', 0.003), pricing)).toBe(true);
  });

  it('compares the cheapest allowed request with the cost ceiling and credit limits', () => {
    // dall-e-2's cheapest size is 32,000 credits.
    expect(planServes(plan([ceiling(32_000)]), 'api', dalle2, pricing)).toBe(true);
    expect(planServes(plan([ceiling(31_999)]), 'api', dalle2, pricing)).toBe(false);
    expect(planServes(plan([measure('credits', 31_999)]), 'api', dalle2, pricing)).toBe(false);
    // dall-e-3's cheapest size, 1024x1024, is 80,000 credits (1792x1024: 160,000).
    expect(planServes(plan([ceiling(80_000)]), 'api', dalle3, pricing)).toBe(true);
    expect(planServes(plan([ceiling(79_999)]), 'api', dalle3, pricing)).toBe(false);
    // A flat price: 0.003 USD = 6,000 credits for any size up to a megapixel.
    expect(planServes(plan([ceiling(5_999)]), 'api', image('flux', 0.003), pricing)).toBe(false);
    // A credit limit does not make a chat model unavailable: its cheapest request is a few credits.
    expect(planServes(plan([measure('credits', 10)]), 'api', chat, pricing)).toBe(true);
  });

  it('a request or concurrency limit of 0 serves nothing it covers', () => {
    expect(planServes(plan([measure('requests', 0)]), 'api', chat, pricing)).toBe(false);
    expect(planServes(plan([measure('concurrent', 0)]), 'api', dalle2, pricing)).toBe(false);
    expect(planServes(plan([measure('requests', 0, ['playground'])]), 'api', chat, pricing)).toBe(true);
  });

  it('reads only the rules of the surface asked about', () => {
    const apiOnly = { ...(ceiling(512) as object), surfaces: ['api'] } as Rule;
    expect(planServes(plan([apiOnly]), 'api', dalle2, pricing)).toBe(false);
    expect(planServes(plan([apiOnly]), 'playground', dalle2, pricing)).toBe(true);
  });

  it('keeps Pro models from the API when the plan says so', () => {
    const pro = { ...(chat as object), pro: true } as ModelConfig;
    expect(planServes(plan([], false), 'api', pro, pricing)).toBe(false);
    expect(planServes(plan([], false), 'playground', pro, pricing)).toBe(true);
  });
});
