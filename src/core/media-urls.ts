// Media in a chat prompt given by URL, for models whose server must not fetch URLs (catalog
// `mediaUrls: inline`). A self-hosted server inside the operator's network (vLLM, llama.cpp,
// Ollama) downloads an image_url itself, from where it runs: any key holder could make it fetch
// an internal address (a cloud metadata endpoint, an admin port) — vLLM's CVE-2025-6242 is this,
// and its `--allowed-media-domains` the server's own answer. OpenAI fetches from the internet and
// needs none of this (`mediaUrls: any`, the default).
import type { ChatModelConfig } from '../config/schema.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { JsonObject } from './types.js';

/** Part types that carry media by reference: OpenAI's, the Responses API's, vLLM's, Anthropic's shape. */
const MEDIA_PARTS = new Set(['image_url', 'input_image', 'video_url', 'audio_url', 'image']);

/** The reference a media part names: `part[type]` as a string or `{ url }`, or `source.url`. */
function referenceOf(part: Record<string, unknown>, type: string): unknown {
  const own = part[type];
  if (typeof own === 'string') return own;
  if (own !== null && typeof own === 'object' && 'url' in own) return (own as { url?: unknown }).url;
  if (type === 'input_image') return part.image_url;
  const source = part.source;
  if (source !== null && typeof source === 'object' && 'url' in source) return (source as { url?: unknown }).url;
  return undefined;
}

/** Refuses a media part given by anything but a `data:` URI, when the model takes inline media only. */
export function checkMediaUrls(model: ChatModelConfig, body: JsonObject): void {
  if (model.mediaUrls !== 'inline' || !Array.isArray(body.messages)) return;
  body.messages.forEach((m, i) => {
    const content = (m as { content?: unknown } | null)?.content;
    if (!Array.isArray(content)) return;
    content.forEach((part, j) => {
      if (part === null || typeof part !== 'object') return;
      const type = (part as { type?: unknown }).type;
      if (typeof type !== 'string' || !MEDIA_PARTS.has(type)) return;
      const ref = referenceOf(part as Record<string, unknown>, type);
      if (ref === undefined || (typeof ref === 'string' && ref.startsWith('data:'))) return;
      throw new GatewayError('invalid_request', {
        vars: { detail: `messages[${i}].content[${j}]: ${model.id} takes media inline only, as a data: URI (data:image/png;base64,…), not by URL` },
        param: `messages[${i}].content[${j}]`,
      });
    });
  });
}
