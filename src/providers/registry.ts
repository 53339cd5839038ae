// The only list of provider types. Adding an upstream kind = a folder under providers/ plus one
// line here; nothing else in the codebase names a type.
import type { ProviderConfig } from '../config/schema.js';
import type { UpstreamClient } from '../upstream/types.js';
import { anthropicProviderType } from './anthropic/index.js';
import { falProviderType } from './fal/index.js';
import { openaiProviderType } from './openai/index.js';
import type { Provider, ProviderType } from './provider.js';

export const providerTypes: ReadonlyMap<string, ProviderType> = new Map(
  [openaiProviderType, falProviderType, anthropicProviderType].map((t) => [t.type, t] as const),
);

/** Builds every configured provider, keyed by provider id. Config load has already checked types. */
export function createProviders(configs: readonly ProviderConfig[], client: UpstreamClient): Map<string, Provider> {
  const providers = new Map<string, Provider>();
  for (const config of configs) {
    const type = providerTypes.get(config.type);
    if (type === undefined) {
      throw new Error(`provider '${config.id}' has unknown type '${config.type}'; known: ${[...providerTypes.keys()].join(', ')}`);
    }
    if (providers.has(config.id)) throw new Error(`provider id '${config.id}' is configured twice`);
    providers.set(config.id, type.create({ config, client }));
  }
  return providers;
}
