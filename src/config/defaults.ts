// The built-in catalog used when the config names no providers or models: the seed's image models
// and common chat and embedding models at their providers' public list prices (USD, checked when
// written; operators should pin their own prices in tollgate.yaml). `${VAR:-}` leaves a provider
// without a key when the variable is unset: its models answer 503 provider_not_configured.
import type { ConfigInput } from './schema.js';

type Providers = NonNullable<ConfigInput['providers']>;
type Models = NonNullable<ConfigInput['models']>;

export const defaultProviders: Providers = [
  { id: 'openai', type: 'openai', baseUrl: 'https://api.openai.com/v1', apiKey: '${OPENAI_API_KEY:-}' },
  { id: 'fal', type: 'fal', baseUrl: 'https://fal.run', apiKey: '${FAL_KEY:-}' },
];

/** `cachedInput`: OpenAI's price for prompt tokens its prompt cache served (price.cachedInput). */
const chat = (id: string, input: number, cachedInput: number, output: number, extra: { vision?: boolean; pro?: boolean; maxOutputTokens?: number; imageInputTokens?: number; contextTokens?: number } = {}) =>
  ({ id, kind: 'chat', provider: 'openai', ownedBy: 'openai', price: { input, cachedInput, output }, ...extra }) as const;

/** A fal image model priced per image (fal prices most of these per megapixel; 1 MP ≈ 1024x1024). */
const fal = (id: string, upstream: string, perImage: number, extra: { pro?: boolean; imageToImage?: boolean } = {}) =>
  ({ id, kind: 'image', provider: 'fal', upstream, ownedBy: 'fal', price: { perImage }, defaultSize: '1024x1024', ...extra }) as const;

export const defaultModels: Models = [
  // Images in a prompt, at most (OpenAI's vision pricing): gpt-4o-mini bills an image ~33× gpt-4o's
  // tokens (2,833 + 5,667 per tile, 8 tiles); the gpt-4.1 family 1,536 patches × 1 / 1.62 / 2.46.
  // Context windows: 128,000 tokens for gpt-4o and gpt-4o-mini, 1,047,576 for the gpt-4.1 family.
  chat('gpt-4o-mini', 0.15, 0.075, 0.6, { vision: true, imageInputTokens: 48_169, contextTokens: 128_000 }),
  chat('gpt-4o', 2.5, 1.25, 10, { vision: true, pro: true, contextTokens: 128_000 }),
  // The gpt-4.1 family writes up to 32,768 tokens (the schema's default ceiling is 16,384).
  chat('gpt-4.1-mini', 0.4, 0.1, 1.6, { vision: true, maxOutputTokens: 32_768, imageInputTokens: 2_489, contextTokens: 1_047_576 }),
  chat('gpt-4.1-nano', 0.1, 0.025, 0.4, { vision: true, maxOutputTokens: 32_768, imageInputTokens: 3_779, contextTokens: 1_047_576 }),
  chat('gpt-4.1', 2, 0.5, 8, { vision: true, pro: true, maxOutputTokens: 32_768, imageInputTokens: 1_536, contextTokens: 1_047_576 }),
  // OpenAI embeds at most 2,048 inputs per request.
  { id: 'text-embedding-3-small', kind: 'embedding', provider: 'openai', ownedBy: 'openai', price: { input: 0.02 }, maxInputs: 2048, contextTokens: 8192 },
  { id: 'text-embedding-3-large', kind: 'embedding', provider: 'openai', ownedBy: 'openai', price: { input: 0.13 }, maxInputs: 2048, contextTokens: 8192 },
  {
    id: 'dall-e-2', kind: 'image', provider: 'openai', ownedBy: 'openai',
    sizes: ['256x256', '512x512', '1024x1024'], defaultSize: '1024x1024',
    price: { perImage: { '256x256': 0.016, '512x512': 0.018, '1024x1024': 0.02 } },
  },
  {
    id: 'dall-e-3', kind: 'image', provider: 'openai', ownedBy: 'openai',
    sizes: ['1024x1024', '1024x1792', '1792x1024'], defaultSize: '1024x1024',
    // OpenAI's prices: standard, and hd at its own price per size.
    price: { perImage: { '1024x1024': 0.04, '1024x1792': 0.08, '1792x1024': 0.08, '1024x1024/hd': 0.08, '1024x1792/hd': 0.12, '1792x1024/hd': 0.12 } },
  },
  // The ten models of the seed's "one image at a time" list, served by fal.
  fal('flux/schnell', 'fal-ai/flux/schnell', 0.003),
  fal('flux-pro', 'fal-ai/flux-pro', 0.05, { pro: true }),
  fal('flux-pro/v1.1', 'fal-ai/flux-pro/v1.1', 0.04, { pro: true }),
  fal('flux-pro/v1.1-ultra', 'fal-ai/flux-pro/v1.1-ultra', 0.06, { pro: true }),
  fal('flux/dev', 'fal-ai/flux/dev', 0.025),
  fal('flux/dev/image-to-image', 'fal-ai/flux/dev/image-to-image', 0.025, { imageToImage: true }),
  fal('flux-realism', 'fal-ai/flux-realism', 0.025),
  fal('stable-diffusion-v3-medium', 'fal-ai/stable-diffusion-v3-medium', 0.035),
  fal('stable-diffusion-v35-large', 'fal-ai/stable-diffusion-v35-large', 0.065),
  fal('recraft-v3', 'fal-ai/recraft-v3', 0.04),
];

/** What `npm start` runs with no config file: everything else comes from the schema defaults. */
export const defaultConfig: ConfigInput = {
  server: { metricsToken: '${TOLLGATE_METRICS_TOKEN:-}' },
  admin: { token: '${TOLLGATE_ADMIN_TOKEN:-}' },
  web: { sessionSecret: '${TOLLGATE_SESSION_SECRET:-}' },
};
