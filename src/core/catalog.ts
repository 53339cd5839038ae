// The model catalog: what the gateway serves, looked up by the client's model id.
import type { ModelConfig } from '../config/schema.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { ModelKind } from './types.js';

export class Catalog {
  private readonly byId: ReadonlyMap<string, ModelConfig>;

  constructor(readonly models: readonly ModelConfig[]) {
    this.byId = new Map(models.map((m) => [m.id, m]));
  }

  get(id: string): ModelConfig | undefined {
    return this.byId.get(id);
  }

  /** The model a request names, which must be of the endpoint's kind. */
  resolve<K extends ModelKind>(id: string, kind: K, path: string): Extract<ModelConfig, { kind: K }> {
    const model = this.byId.get(id);
    if (!model) throw new GatewayError('model_not_found', { vars: { model: id }, param: 'model' });
    if (model.kind !== kind) {
      throw new GatewayError('model_kind_mismatch', {
        vars: { model: id, kind: model.kind, expected: kind, path },
        param: 'model',
      });
    }
    return model as Extract<ModelConfig, { kind: K }>;
  }
}
