// Embeddings asked for as base64 and answered as floats, encoded as asked. The openai SDKs ask
// for base64 by default (openai-node v5 on, openai-python with numpy) and decode whatever
// `embedding` holds as base64 without a check (openai-node resources/embeddings.ts). Servers
// that ignore `encoding_format` (text-embeddings-inference, infinity, Ollama behind LiteLLM) answer
// float arrays: passed on, the SDK turned 1,024 floats into 256 meaningless ones, silently.
// https://github.com/huggingface/text-embeddings-inference/issues/288
import type { JsonText } from '../../lib/json-text.js';
import { isObject } from '../../lib/is-object.js';

/**
 * Whether the first embedding's value is an array: one look at the first item, no parse — an
 * upstream answers every item in one format, and a base64 answer (OpenAI's own, the common case)
 * passes untouched. The `object` member's `"embedding",` is no key: a colon must follow.
 */
function answeredFloats(data: string): boolean {
  return /"embedding"\s*:\s*(.)/.exec(data)?.[1] === '[';
}

/** Little-endian float32s in base64, as OpenAI encodes an embedding. */
function base64Of(vector: readonly number[]): string {
  const buf = Buffer.allocUnsafe(vector.length * 4);
  for (let i = 0; i < vector.length; i++) buf.writeFloatLE(vector[i]!, i * 4);
  return buf.toString('base64');
}

/** Re-encodes an answer's float embeddings as base64, in place; an answer in base64 is left as it is. */
export function encodeFloatEmbeddings(body: JsonText): void {
  const text = body.textOf('data');
  if (text === undefined || !answeredFloats(text)) return;
  const data = body.get('data');
  if (!Array.isArray(data)) return;
  for (const item of data) {
    if (isObject(item) && Array.isArray(item.embedding) && item.embedding.every((x) => typeof x === 'number')) {
      item.embedding = base64Of(item.embedding as number[]);
    }
  }
  body.set('data', data);
}
