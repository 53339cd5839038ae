import { describe, expect, it } from 'vitest';
import { JsonText } from '../../lib/json-text.js';
import { encodeFloatEmbeddings } from './base64-embeddings.js';

/** What openai-node's toFloat32Array makes of an embedding. */
const decode = (b64: string) => {
  const buf = Buffer.from(b64, 'base64');
  return Array.from(new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4));
};

describe('encodeFloatEmbeddings', () => {
  it('encodes every float embedding as little-endian float32 base64, as OpenAI does', () => {
    const body = JsonText.parse(
      '{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5,-0.25,1e-3]},{"object":"embedding","index":1,"embedding":[2,3]}],"usage":{"prompt_tokens":2}}',
    )!;
    encodeFloatEmbeddings(body);
    const data = body.toJSON().data as Array<{ embedding: string; index: number }>;
    expect(data.map((d) => d.index)).toEqual([0, 1]);
    expect(decode(data[0]!.embedding)).toEqual([0.5, -0.25, Math.fround(1e-3)]);
    expect(decode(data[1]!.embedding)).toEqual([2, 3]);
    expect(body.toJSON().usage).toEqual({ prompt_tokens: 2 });
  });

  it('leaves a base64 answer as its text (no parse, no rewrite)', () => {
    const text = '{"object":"list","data":[{"object":"embedding","index":0,"embedding":"AAAAPwAAgL4="}],"model":"m"}';
    const body = JsonText.parse(text)!;
    encodeFloatEmbeddings(body);
    expect(body.toString()).toBe(text);
  });

  it('an empty list, or one without embeddings, is left alone', () => {
    for (const text of ['{"data":[]}', '{"data":[{"object":"embedding"}]}', '{"object":"list"}']) {
      const body = JsonText.parse(text)!;
      encodeFloatEmbeddings(body);
      expect(body.toString()).toBe(text);
    }
  });
});
