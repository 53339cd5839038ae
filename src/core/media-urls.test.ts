import { describe, expect, it } from 'vitest';
import { modelSchema, type ChatModelConfig } from '../config/schema.js';
import { GatewayError } from '../errors/gateway-error.js';
import { checkMediaUrls } from './media-urls.js';

const model = (mediaUrls?: 'any' | 'inline') =>
  modelSchema.parse({ id: 'qwen-vl', kind: 'chat', provider: 'vllm', vision: true, price: { input: 1, output: 1 }, ...(mediaUrls && { mediaUrls }) }) as ChatModelConfig;
const ask = (...parts: unknown[]) => ({ model: 'qwen-vl', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: parts }] });
const refusal = (m: ChatModelConfig, body: Record<string, unknown>) => {
  try {
    checkMediaUrls(m, body);
  } catch (err) {
    return err as GatewayError;
  }
  return undefined;
};

describe('checkMediaUrls (catalog mediaUrls)', () => {
  const png = 'data:image/png;base64,iVBORw0KGgo=';
  const internal = 'http://169.254.169.254/latest/meta-data/';

  it('refuses media by URL in every part shape a server fetches, naming the part', () => {
    const inline = model('inline');
    for (const part of [
      { type: 'image_url', image_url: { url: internal } },
      { type: 'image_url', image_url: internal },
      { type: 'input_image', image_url: internal },
      { type: 'video_url', video_url: { url: 'http://10.0.0.5:8080/admin' } },
      { type: 'audio_url', audio_url: { url: 'file:///etc/passwd' } },
      { type: 'image', source: { type: 'url', url: 'https://example.com/a.png' } },
      { type: 'image_url', image_url: { url: 42 } },
    ]) {
      const err = refusal(inline, ask({ type: 'text', text: 'what is this?' }, part));
      expect(err, JSON.stringify(part)).toBeInstanceOf(GatewayError);
      expect(err!.code).toBe('invalid_request');
      expect(err!.param).toBe('messages[1].content[1]');
    }
  });

  it('takes media inline (data: URIs), text, and parts without a reference', () => {
    const inline = model('inline');
    expect(refusal(inline, ask({ type: 'image_url', image_url: { url: png, detail: 'low' } }, { type: 'input_image', image_url: png }))).toBeUndefined();
    expect(refusal(inline, ask({ type: 'text', text: 'http://169.254.169.254/ is only text here' }))).toBeUndefined();
    expect(refusal(inline, ask({ type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } }))).toBeUndefined();
    expect(refusal(inline, { model: 'qwen-vl', messages: [{ role: 'user', content: 'plain' }, null] })).toBeUndefined();
  });

  it('leaves URLs alone by default (mediaUrls: any): OpenAI fetches them from the internet', () => {
    expect(model().mediaUrls).toBe('any');
    expect(refusal(model(), ask({ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }))).toBeUndefined();
  });
});
