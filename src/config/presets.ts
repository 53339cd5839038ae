// The built-in plans. `free-tier` is SPEC §3 written as data, rule for rule; every number and
// model list here is a default an operator can override in tollgate.yaml by rule id.
import type { Rule } from './schema.js';

/** The seed's "only 1 image generated at a time" models. */
export const ONE_IMAGE_MODELS = [
  'flux/schnell',
  'flux-pro',
  'flux-pro/v1.1',
  'flux-pro/v1.1-ultra',
  'flux/dev',
  'flux/dev/image-to-image',
  'flux-realism',
  'stable-diffusion-v3-medium',
  'stable-diffusion-v35-large',
  'recraft-v3',
];

/** The seed's "limited to a resolution of 512x512" models. */
export const LOW_RESOLUTION_MODELS = ['dall-e-2', 'dall-e-3'];

export interface PresetPlan {
  rules: Rule[];
  prepaid: boolean;
  proModelsViaApi: boolean;
}

export const presets: Record<'free-tier' | 'pay-as-you-go', PresetPlan> = {
  'free-tier': {
    prepaid: false,
    proModelsViaApi: true,
    rules: [
      // 50,000 credits per UTC day per account, all models, API and Playground together.
      { id: 'api_token', measure: 'credits', limit: 50_000, window: 'day', scope: 'account' },
      // 10 requests per regular (non-Pro) model per day in the Playground.
      { id: 'playground_requests', measure: 'requests', limit: 10, window: 'day', scope: 'account+model', surfaces: ['playground'], models: { pro: false } },
      // One Playground request at a time.
      { id: 'playground_concurrency', measure: 'concurrent', limit: 1, scope: 'account', surfaces: ['playground'] },
      { id: 'max_output_tokens', shape: 'max_output_tokens', limit: 512, onExceed: 'clamp', surfaces: ['api'], models: { kinds: ['chat'] } },
      { id: 'image_input', shape: 'image_input', onExceed: 'reject', surfaces: ['api'], models: { kinds: ['chat'] } },
      { id: 'images_per_request', shape: 'images_per_request', limit: 1, onExceed: 'reject', surfaces: ['api'], models: { ids: ONE_IMAGE_MODELS } },
      { id: 'image_resolution', shape: 'image_sizes', maxSize: '512x512', onExceed: 'reject', surfaces: ['api'], models: { ids: LOW_RESOLUTION_MODELS } },
      { id: 'image_cost', shape: 'max_request_cost', limit: 512, onExceed: 'reject', surfaces: ['api'], models: { kinds: ['image'] } },
    ],
  },
  // No daily caps: requests spend the prepaid balance.
  'pay-as-you-go': { prepaid: true, proModelsViaApi: true, rules: [] },
};
