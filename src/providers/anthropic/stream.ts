// Anthropic's stream events as OpenAI chat.completion.chunk objects, one event at a time
// (https://docs.anthropic.com/en/docs/build-with-claude/streaming): message_start, then per content
// block a content_block_start, its deltas and a content_block_stop, then message_delta (stop reason,
// cumulative usage) and message_stop; `ping` anywhere, `error` when the upstream fails mid-way.
// Every chunk carries the message's id and one `created`; the last is the usage chunk
// (`choices: []`) that core meters by, as OpenAI sends it with `stream_options.include_usage`.
import type { JsonObject } from '../../core/types.js';
import { isObject } from '../../lib/is-object.js';
import type { SseEvent } from '../../lib/sse.js';
import type { ChatStreamEvent } from '../provider.js';
import { buildError, malformedResponse, maskFields, type ErrorFields } from '../upstream-error.js';
import { eventObject } from '../common.js';
import { finishReason, readUsage } from './response.js';

export class StreamTranslator {
  private id: unknown = null;
  /**
   * Each tool_use block by the block's index: its place among the tool calls (OpenAI's `index`),
   * the input its start carried, and whether any of its arguments went out yet.
   */
  private readonly tools = new Map<number, { place: number; input: unknown; sent: boolean }>();
  /** Usage as the events so far told it: message_start's, then each message_delta's counts over it. */
  private readonly usage: JsonObject = {};
  private started = false;
  /** message_delta said why the answer stopped: it is whole, with or without message_stop. */
  finished = false;
  /** message_stop came: nothing follows. */
  stopped = false;

  constructor(
    private readonly modelId: string,
    private readonly created: number,
    private readonly provider: string,
    private readonly parseError: (json: unknown) => ErrorFields,
    private readonly mask: (text: string) => string,
  ) {}

  /** The chunk an event becomes; undefined for one that carries nothing for the client (ping, most block stops, unknown types). */
  event(ev: SseEvent): ChatStreamEvent | undefined {
    const data = eventObject(ev, this.provider);
    const type = data.type ?? ev.event;
    if (type === 'error' || ev.event === 'error') {
      // The stream already answered 200; the failure came mid-way, so it is a bad gateway (as the
      // openai adapter answers its mid-stream errors). An overloaded_error here "would normally
      // correspond to an HTTP 529" (the streaming guide): Anthropic did not finish the work.
      const fields = maskFields(this.parseError(data), this.mask);
      throw buildError(502, this.provider, { ...fields, message: fields.message ?? 'The upstream failed mid-stream.' });
    }
    if (type !== 'message_start' && !this.started && type !== 'ping') throw malformedResponse(this.provider, `the stream began with ${String(type)}, not message_start`);
    switch (type) {
      case 'message_start': {
        const message = isObject(data.message) ? data.message : undefined;
        if (message === undefined) throw malformedResponse(this.provider, 'message_start carries no message');
        this.started = true;
        this.id = message.id ?? null;
        this.merge(message.usage);
        return this.chunk({ role: 'assistant', content: '' });
      }
      case 'content_block_start': {
        const block = isObject(data.content_block) ? data.content_block : {};
        if (block.type === 'tool_use' && typeof data.index === 'number') {
          const place = this.tools.size;
          this.tools.set(data.index, { place, input: block.input, sent: false });
          return this.chunk({ tool_calls: [{ index: place, id: block.id, type: 'function', function: { name: block.name, arguments: '' } }] });
        }
        // A text block may start with text already (the guide's are empty; nothing says they must be).
        if (block.type === 'text' && typeof block.text === 'string' && block.text !== '') return this.chunk({ content: block.text });
        return undefined;
      }
      case 'content_block_delta': {
        const delta = isObject(data.delta) ? data.delta : {};
        if (delta.type === 'text_delta' && typeof delta.text === 'string') return this.chunk({ content: delta.text });
        // DeepSeek's name for reasoning beside the answer, which core counts as output (chat-output.ts deltaReasoning).
        if (delta.type === 'thinking_delta' && typeof delta.thinking === 'string') return this.chunk({ reasoning_content: delta.thinking });
        if (delta.type === 'input_json_delta' && typeof delta.partial_json === 'string' && delta.partial_json !== '') {
          const tool = typeof data.index === 'number' ? this.tools.get(data.index) : undefined;
          if (tool === undefined) return undefined;
          tool.sent = true;
          return this.chunk({ tool_calls: [{ index: tool.place, function: { arguments: delta.partial_json } }] });
        }
        // signature_delta (a thinking block's integrity check), citations: nothing an OpenAI client reads.
        return undefined;
      }
      case 'content_block_stop': {
        // A call to a tool without parameters streams only an empty partial_json: its arguments
        // would be '' where OpenAI (and this adapter's JSON answer) give '{}', and a client's
        // JSON.parse of them throws. Its start's input (`{}`) stands for them.
        const tool = typeof data.index === 'number' ? this.tools.get(data.index) : undefined;
        if (tool === undefined || tool.sent) return undefined;
        tool.sent = true;
        return this.chunk({ tool_calls: [{ index: tool.place, function: { arguments: JSON.stringify(isObject(tool.input) ? tool.input : {}) } }] });
      }
      case 'message_delta': {
        this.merge(data.usage);
        const delta = isObject(data.delta) ? data.delta : {};
        if (delta.stop_reason === undefined || delta.stop_reason === null) return undefined;
        this.finished = true;
        return this.chunk({}, finishReason(delta.stop_reason));
      }
      case 'message_stop':
        this.stopped = true;
        return this.usageChunk();
      default:
        // ping, and event types Anthropic may add ("handle unknown event types gracefully").
        return undefined;
    }
  }

  /** The usage chunk, when the events told a usable usage; the stream's end calls it when message_stop never came. */
  usageChunk(): ChatStreamEvent | undefined {
    const read = readUsage(this.usage);
    if (read === undefined) return undefined;
    return { chunk: { ...this.head(), choices: [], usage: read.openai }, usage: read.usage };
  }

  /** message_delta's usage is cumulative and may repeat message_start's counts: the later count stands. */
  private merge(u: unknown): void {
    if (!isObject(u)) return;
    for (const [k, v] of Object.entries(u)) if (typeof v === 'number') this.usage[k] = v;
  }

  private head(): JsonObject {
    return { id: this.id, object: 'chat.completion.chunk', created: this.created, model: this.modelId };
  }

  private chunk(delta: JsonObject, finish: string | null = null): ChatStreamEvent {
    return { chunk: { ...this.head(), choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] } };
  }
}
