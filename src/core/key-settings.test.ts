import { describe, expect, it } from 'vitest';
import { checkKeySettings } from './key-settings.js';

const now = Date.parse('2026-12-05T12:00:00Z');
const catalog = { get: (id: string) => (['gpt-4o-mini', 'flux/schnell'].includes(id) ? ({ id } as never) : undefined) };

describe('checkKeySettings', () => {
  it('keeps an expiry as its UTC instant and a model list without repeats, and passes the rest as given', () => {
    expect(checkKeySettings({ expiresAt: '2026-12-05T14:30:00+02:00', models: ['flux/schnell', 'gpt-4o-mini', 'flux/schnell'] }, now, catalog)).toEqual({
      expiresAt: '2026-12-05T12:30:00.000Z',
      models: ['flux/schnell', 'gpt-4o-mini'],
    });
    expect(checkKeySettings({ expiresAt: null, models: null, limit: null }, now, catalog)).toEqual({ expiresAt: null, models: null, limit: null });
    expect(checkKeySettings({}, now, catalog)).toEqual({});
  });

  it('refuses an expiry not after now or past the year 9999, and a model the catalog lacks, naming the field', () => {
    const refusal = (patch: object) => {
      try {
        checkKeySettings(patch, now, catalog);
      } catch (err) {
        return err;
      }
      return undefined;
    };
    expect(refusal({ expiresAt: '2026-12-05T12:00:00Z' })).toMatchObject({ code: 'invalid_request', param: 'expiresAt' });
    expect(refusal({ expiresAt: '2026-12-05T12:00:00.001Z' })).toBeUndefined();
    expect(refusal({ expiresAt: '9999-12-31T23:00:00-02:00' })).toMatchObject({ param: 'expiresAt' });
    expect(refusal({ models: ['gpt-4o-mini', 'nope'] })).toMatchObject({ param: 'models[1]', vars: { detail: "models[1]: no model 'nope'" } });
  });
});
