import { readFileSync } from 'node:fs';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFakeOpenAI, FAKE_CONTENT, FAKE_PNG_B64, fakeEmbedding, type FakeOpenAI } from '../../../test/helpers/fake-openai.js';
import { modelSchema, type ModelConfig, type ProviderConfig } from '../../config/schema.js';
import { GatewayError, UpstreamHttpError } from '../../errors/gateway-error.js';
import { createUpstreamClient } from '../../upstream/client.js';
import type { UpstreamClient } from '../../upstream/types.js';
import type { CallContext, ChatStreamEvent, ImageCall, Provider } from '../provider.js';
import { MAX_ANSWER_BYTES } from '../upstream-error.js';
import { openaiProviderType } from './index.js';
import { rejection } from '../../../test/helpers/rejection.js';

const chatModel = modelSchema.parse({
  id: 'fast-chat',
  kind: 'chat',
  provider: 'oai',
  upstream: 'gpt-4o-mini',
  price: { input: 0.15, output: 0.6 },
});
const plainChatModel = modelSchema.parse({ id: 'gpt-4.1', kind: 'chat', provider: 'oai', price: { input: 1, output: 1 } });
const embedModel = modelSchema.parse({
  id: 'embed',
  kind: 'embedding',
  provider: 'oai',
  upstream: 'text-embedding-3-small',
  price: { input: 0.02 },
});
const imageModel = modelSchema.parse({ id: 'dall-e-3', kind: 'image', provider: 'oai', price: { perImage: 0.04 } });

let fake: FakeOpenAI;
let client: UpstreamClient;
let provider: Provider;

const config = (over: Partial<ProviderConfig> = {}): ProviderConfig => ({
  id: 'oai',
  type: 'openai',
  baseUrl: fake.url,
  apiKey: 'sk-test',
  headers: { 'OpenAI-Organization': 'org-42' },
  ...over,
});
const ctx = (signal = new AbortController().signal): CallContext => ({ requestId: 'req-1', signal });
const lastBody = () => fake.requests.at(-1)!.body as Record<string, unknown>;

/** A stream read until it fails: the events that came first, and the failure. */
async function readUntilFailure(events: AsyncIterable<ChatStreamEvent>): Promise<{ seen: ChatStreamEvent[]; err: unknown }> {
  const seen: ChatStreamEvent[] = [];
  const err = await rejection((async () => {
    for await (const e of events) seen.push(e);
  })());
  return { seen, err };
}

async function collect(events: AsyncIterable<ChatStreamEvent>): Promise<ChatStreamEvent[]> {
  const out: ChatStreamEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

const imageCall = (over: Partial<ImageCall> = {}): ImageCall => ({
  model: imageModel,
  prompt: 'a red fox',
  n: 1,
  size: undefined,
  sizePreset: undefined,
  responseFormat: undefined,
  imageUrl: undefined,
  extra: {},
  ...over,
});

beforeAll(async () => {
  fake = await startFakeOpenAI();
  client = createUpstreamClient({
    connectTimeoutMs: 1_000,
    firstByteTimeoutMs: 400,
    totalTimeoutMs: 10_000,
    idleTimeoutMs: 400,
    connectionsPerOrigin: 8,
  });
  provider = openaiProviderType.create({ config: config(), client });
});
beforeEach(() => {
  fake.requests.length = 0;
});
afterAll(async () => {
  await client.close();
  await fake.close();
});

describe('openai provider: chat', () => {
  it('substitutes the upstream model, passes every other field through and sends auth and config headers', async () => {
    const body = {
      model: 'fast-chat',
      messages: [{ role: 'user', content: 'hi' }],
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: {} } } }],
      response_format: { type: 'json_object' },
      seed: 7,
      some_future_field: { nested: [1, 2] },
    };
    await provider.chat({ model: chatModel, body }, ctx());
    const req = fake.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/v1/chat/completions');
    expect(req.headers.authorization).toBe('Bearer sk-test');
    expect(req.headers['openai-organization']).toBe('org-42');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.body).toEqual({ ...body, model: 'gpt-4o-mini' });
    expect(body.model).toBe('fast-chat'); // the caller's object is not mutated
  });

  it('uses the model id when no upstream name is configured', async () => {
    await provider.chat({ model: plainChatModel, body: { model: 'gpt-4.1', messages: [] } }, ctx());
    expect(lastBody().model).toBe('gpt-4.1');
  });

  it("rewrites the response's model to the gateway id and maps usage", async () => {
    const { body: text, usage } = await provider.chat({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx());
    const body = JSON.parse(text.toString()) as Record<string, unknown>;
    expect(body.model).toBe('fast-chat');
    expect(body.object).toBe('chat.completion');
    expect((body.choices as { message: { content: string } }[])[0]!.message.content).toBe(FAKE_CONTENT);
    expect(usage).toEqual({ promptTokens: 12, outputTokens: 7 });
  });

  it('maps the cached part of the prompt, all of it included, and drops a report of more than the prompt', async () => {
    const answer = (usage: unknown) => ({ id: 'x', object: 'chat.completion', model: 'gpt-4o-mini', choices: [], usage });
    const usageOf = async () => (await provider.chat({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx())).usage;
    fake.enqueue({ kind: 'json', body: answer({ prompt_tokens: 1_024, completion_tokens: 7, prompt_tokens_details: { cached_tokens: 1_024 } }) });
    expect(await usageOf()).toEqual({ promptTokens: 1_024, outputTokens: 7, cachedPromptTokens: 1_024 });
    fake.enqueue({ kind: 'json', body: answer({ prompt_tokens: 1_024, completion_tokens: 7, prompt_cache_hit_tokens: 1_025 }) });
    expect(await usageOf()).toEqual({ promptTokens: 1_024, outputTokens: 7 });
    // OpenRouter's count of the tokens written to the cache (priced at cacheWriteInput).
    fake.enqueue({ kind: 'json', body: answer({ prompt_tokens: 3_210, completion_tokens: 7, prompt_tokens_details: { cached_tokens: 3_000, cache_write_tokens: 200 } }) });
    expect(await usageOf()).toEqual({ promptTokens: 3_210, outputTokens: 7, cachedPromptTokens: 3_000, cacheWritePromptTokens: 200 });
  });

  it('charges the reasoning an answer counts only in total_tokens (xAI, Gemini) as output', async () => {
    const answer = (usage: unknown) => ({ id: 'x', object: 'chat.completion', model: 'gpt-4o-mini', choices: [], usage });
    const usageOf = async () => (await provider.chat({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx())).usage;
    // xAI: completion_tokens is the visible text, reasoning_tokens come on top of it.
    fake.enqueue({ kind: 'json', body: answer({ prompt_tokens: 32, completion_tokens: 9, total_tokens: 135, completion_tokens_details: { reasoning_tokens: 94 } }) });
    expect(await usageOf()).toEqual({ promptTokens: 32, outputTokens: 103 });
    // No completion_tokens at all: what the total says past the prompt.
    fake.enqueue({ kind: 'json', body: answer({ prompt_tokens: 9, total_tokens: 17 }) });
    expect(await usageOf()).toEqual({ promptTokens: 9, outputTokens: 8 });
    // A total below prompt + completion (a broken report) does not lower the completion count.
    fake.enqueue({ kind: 'json', body: answer({ prompt_tokens: 9, completion_tokens: 8, total_tokens: 10 }) });
    expect(await usageOf()).toEqual({ promptTokens: 9, outputTokens: 8 });
  });

  it('holds an absurd count to 2^53 − 1, which every ledger column holds', async () => {
    fake.enqueue({ kind: 'json', body: { id: 'x', object: 'chat.completion', model: 'gpt-4o-mini', choices: [], usage: { prompt_tokens: 1e20, completion_tokens: 2e30, total_tokens: 3e30 } } });
    const { usage } = await provider.chat({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx());
    expect(usage).toEqual({ promptTokens: Number.MAX_SAFE_INTEGER, outputTokens: Number.MAX_SAFE_INTEGER });
  });

  it('reports undefined usage when the upstream sends none', async () => {
    fake.enqueue({ kind: 'json', body: { id: 'x', object: 'chat.completion', model: 'gpt-4o-mini', choices: [] } });
    const { usage } = await provider.chat({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx());
    expect(usage).toBeUndefined();
  });
});

describe('openai provider: chatStream', () => {
  it('always asks for usage upstream, keeping the client stream_options', async () => {
    const stream = await provider.chatStream(
      { model: chatModel, body: { model: 'fast-chat', messages: [], stream: true, stream_options: { extra_flag: 1 } } },
      ctx(),
    );
    await collect(stream.events);
    expect(lastBody()).toMatchObject({ model: 'gpt-4o-mini', stream: true, stream_options: { extra_flag: 1, include_usage: true } });
  });

  it('yields every chunk in order with the gateway model, usage on the usage chunk, and ends at [DONE]', async () => {
    const stream = await provider.chatStream({ model: chatModel, body: { model: 'fast-chat', messages: [], stream: true } }, ctx());
    const events = await collect(stream.events);
    const text = events.map((e) => (e.chunk.choices as { delta?: { content?: string } }[])[0]?.delta?.content ?? '').join('');
    expect(text).toBe(FAKE_CONTENT);
    expect(events.every((e) => e.chunk.model === 'fast-chat')).toBe(true);
    expect(events).toHaveLength(9);
    const withUsage = events.filter((e) => e.usage);
    expect(withUsage).toHaveLength(1);
    expect(withUsage[0]).toBe(events.at(-1));
    expect(withUsage[0]!.usage).toEqual({ promptTokens: 12, outputTokens: 7 });
    expect(withUsage[0]!.chunk.choices).toEqual([]);
  });

  it('an upstream that refuses stream_options (Mistral: 422 extra_forbidden) is asked again without it, and never sent it again', async () => {
    const p = openaiProviderType.create({ config: config(), client });
    const refusal = {
      object: 'error',
      message: { detail: [{ type: 'extra_forbidden', loc: ['body', 'stream_options', 'include_usage'], msg: 'Extra inputs are not permitted', input: true }] },
      type: 'invalid_request_error',
      param: null,
      code: null,
    };
    fake.enqueue({ kind: 'json', status: 422, body: refusal });
    const body = { model: 'fast-chat', messages: [], stream: true, stream_options: { include_usage: true } };
    const events = await collect((await p.chatStream({ model: chatModel, body }, ctx())).events);
    expect(events.map((e) => (e.chunk.choices as { delta?: { content?: string } }[])[0]?.delta?.content ?? '').join('')).toBe(FAKE_CONTENT);
    expect(fake.requests.map((r) => (r.body as Record<string, unknown>).stream_options)).toEqual([{ include_usage: true }, undefined]);
    await collect((await p.chatStream({ model: chatModel, body }, ctx())).events);
    expect(fake.requests).toHaveLength(3);
    expect(lastBody()).not.toHaveProperty('stream_options');
    expect(lastBody()).toMatchObject({ model: 'gpt-4o-mini', stream: true });
    // Sent without the field now: an error that still names it is not the field's, and is not asked twice.
    fake.enqueue({ kind: 'json', status: 422, body: refusal });
    expect(((await rejection(p.chatStream({ model: chatModel, body }, ctx()))) as UpstreamHttpError).status).toBe(422);
    expect(fake.requests).toHaveLength(4);
  });

  it('an error naming stream_options that the request without it gets again is passed on, and usage is still asked for after', async () => {
    // Only an upstream that accepts the request once the field is gone has refused the field: an
    // error that merely names it (a client's own bad input failing again) must not switch usage off.
    const p = openaiProviderType.create({ config: config(), client });
    const named = { error: { message: "Invalid input near 'stream_options'", type: 'invalid_request_error', param: null, code: null } };
    fake.enqueue({ kind: 'json', status: 400, body: named });
    fake.enqueue({ kind: 'json', status: 400, body: named });
    const body = { model: 'fast-chat', messages: [], stream: true };
    expect(((await rejection(p.chatStream({ model: chatModel, body }, ctx()))) as UpstreamHttpError).status).toBe(400);
    expect(fake.requests).toHaveLength(2);
    await collect((await p.chatStream({ model: chatModel, body }, ctx())).events);
    expect(lastBody().stream_options).toEqual({ include_usage: true });
  });

  it("an error about another member of the client's stream_options passes on, and stream_options stays", async () => {
    const p = openaiProviderType.create({ config: config(), client });
    fake.enqueue({ kind: 'json', status: 400, body: { error: { message: 'stream_options.continuous_usage_stats: Input should be a valid boolean', type: 'invalid_request_error', param: null, code: null } } });
    const body = { model: 'fast-chat', messages: [], stream: true, stream_options: { continuous_usage_stats: 5 } };
    const err = await rejection(p.chatStream({ model: chatModel, body }, ctx()));
    expect((err as UpstreamHttpError).status).toBe(400);
    expect(fake.requests).toHaveLength(1);
    await collect((await p.chatStream({ model: chatModel, body }, ctx())).events);
    expect(lastBody().stream_options).toEqual({ continuous_usage_stats: 5, include_usage: true });
  });

  it('hands over the data as sent (raw) only for chunks it left unchanged and that fit on one line', async () => {
    const same = '{"object":"chat.completion.chunk","model":"gpt-4.1","choices":[{"index":0,"delta":{"content":"a"}}]}';
    const renamed = '{"object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[]}';
    // Two data lines: the event's data is the two joined with \n.
    const twoLines = '{"object":"chat.completion.chunk",\ndata: "model":"gpt-4.1","choices":[]}';
    fake.enqueue({ kind: 'sse', events: [same, renamed, twoLines, '[DONE]'] });
    const stream = await provider.chatStream({ model: plainChatModel, body: { model: 'gpt-4.1', messages: [] } }, ctx());
    const events = await collect(stream.events);
    expect(events.map((e) => e.raw)).toEqual([same, undefined, undefined]);
    expect(events.map((e) => e.chunk.model)).toEqual(['gpt-4.1', 'gpt-4.1', 'gpt-4.1']);
  });

  it('places tool-call deltas sent without an index (Gemini) one after another, per choice, and leaves placed ones alone', async () => {
    const call = (choice: number, id: string, name: string, index?: number) => ({ ...(index !== undefined && { index }), id, type: 'function', function: { name, arguments: '{}' } });
    const chunk = (choice: number, calls: object[]) => JSON.stringify({ object: 'chat.completion.chunk', model: 'fast-chat', choices: [{ index: choice, delta: { role: 'assistant', tool_calls: calls } }] });
    const placed = chunk(0, [call(0, 'call_p', 'p', 0)]);
    fake.enqueue({ kind: 'sse', events: [chunk(0, [call(0, 'call_a', 'a')]), chunk(1, [call(1, 'call_x', 'x')]), chunk(0, [call(0, 'call_b', 'b'), call(0, 'call_c', 'c')]), placed, '[DONE]'] });
    const stream = await provider.chatStream({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx());
    const events = await collect(stream.events);
    const places = events.map((e) => (e.chunk.choices as { index: number; delta: { tool_calls: { id: string; index: number }[] } }[]).map((c) => [c.index, c.delta.tool_calls.map((t) => `${t.id}@${t.index}`)]));
    expect(places).toEqual([[[0, ['call_a@0']]], [[1, ['call_x@0']]], [[0, ['call_b@1', 'call_c@2']]], [[0, ['call_p@0']]]]);
    // Changed chunks go out serialised again; one left as sent keeps its text.
    expect(events.map((e) => e.raw)).toEqual([undefined, undefined, undefined, placed]);
  });

  it('yields chunks as they arrive, before the upstream finishes', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const chunk = (content: string) => JSON.stringify({ object: 'chat.completion.chunk', model: 'gpt-4o-mini', choices: [{ index: 0, delta: { content } }] });
    fake.enqueue({ kind: 'sse', events: [chunk('a'), chunk('b'), chunk('c'), '[DONE]'], holdBeforeIndex: 2, release: gate });
    const stream = await provider.chatStream({ model: chatModel, body: { model: 'fast-chat', messages: [], stream: true } }, ctx());
    const it = stream.events[Symbol.asyncIterator]();
    const first = await it.next();
    const second = await it.next();
    expect([first.value, second.value].map((e: ChatStreamEvent) => (e.chunk.choices as { delta: { content: string } }[])[0]!.delta.content)).toEqual(['a', 'b']);
    release();
    expect(((await it.next()).value as ChatStreamEvent).chunk.model).toBe('fast-chat');
    expect((await it.next()).done).toBe(true);
  });

  it('ignores data after [DONE]', async () => {
    fake.enqueue({ kind: 'sse', events: ['{"choices":[]}', '[DONE]', '{"choices":[{"delta":{"content":"late"}}]}'] });
    const stream = await provider.chatStream({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx());
    expect(await collect(stream.events)).toHaveLength(1);
  });

  it('ends at [DONE] though the upstream holds its body open after it', async () => {
    fake.enqueue({ kind: 'sse', events: ['{"choices":[]}', '[DONE]', '{"choices":[]}'], holdBeforeIndex: 2, release: new Promise(() => {}) });
    const stream = await provider.chatStream({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx());
    const started = performance.now();
    expect(await collect(stream.events)).toHaveLength(1);
    // At once, not after the 400 ms idle limit (which failed the whole answer).
    expect(performance.now() - started).toBeLessThan(300);
    stream.close();
  });

  it('reads away what an upstream sends after [DONE], so its connection serves the next call', async () => {
    // One connection: left paused with the unread rest, it would hold the next call until the total timeout.
    const one = createUpstreamClient({ connectTimeoutMs: 1_000, firstByteTimeoutMs: 5_000, totalTimeoutMs: 10_000, idleTimeoutMs: 5_000, connectionsPerOrigin: 1 });
    try {
      const p = openaiProviderType.create({ config: config(), client: one });
      fake.enqueue({ kind: 'sse', events: ['{"choices":[]}', '[DONE]', ...Array<string>(40).fill('{"choices":[]}')], intervalMs: 2 });
      const stream = await p.chatStream({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx());
      expect(await collect(stream.events)).toHaveLength(1);
      stream.close();
      const started = performance.now();
      await p.chat({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx());
      expect(performance.now() - started).toBeLessThan(2_000);
    } finally {
      await one.close();
    }
  });

  it('a stream cut off (no [DONE], no finish_reason) is an error after what came; one with a finish_reason is whole', async () => {
    const part = '{"choices":[{"index":0,"delta":{"content":"par"},"finish_reason":null}]}';
    // Some servers write an empty finish_reason on every chunk: no reason is no finish either.
    const blank = '{"choices":[{"index":0,"delta":{"content":"tial"},"finish_reason":""}]}';
    fake.enqueue({ kind: 'sse', events: [part, blank] });
    let stream = await provider.chatStream({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx());
    const { seen, err } = await readUntilFailure(stream.events);
    expect(seen).toHaveLength(2);
    expect(err).toMatchObject({ status: 502, body: { error: { code: 'invalid_upstream_response' } } });
    expect((err as UpstreamHttpError).body.error.message).toMatch(/ended before \[DONE\]/);
    // Some compatible servers omit [DONE]: a finish_reason says the answer is whole.
    fake.enqueue({ kind: 'sse', events: [part, '{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'] });
    stream = await provider.chatStream({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx());
    expect(await collect(stream.events)).toHaveLength(2);
  });

  it('an event longer than a whole answer may be is an error once that much came, not held until the total timeout', async () => {
    const part = '{"choices":[{"index":0,"delta":{"content":"par"},"finish_reason":null}]}';
    // Held open after it: an upstream writing without end had the decoder keep every byte (the
    // process out of memory within two minutes).
    fake.enqueue({ kind: 'sse', events: [part, 'x'.repeat(MAX_ANSWER_BYTES + 1024 * 1024), '[DONE]'], holdBeforeIndex: 2, release: new Promise(() => {}) });
    const stream = await provider.chatStream({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx());
    const { seen, err } = await readUntilFailure(stream.events);
    stream.close();
    expect(seen).toHaveLength(1);
    expect(err).toMatchObject({ status: 502, body: { error: { code: 'invalid_upstream_response' } } });
    expect((err as UpstreamHttpError).body.error.message).toMatch(/a stream event is longer than 64 MiB/);
  });

  it("reads Groq's usage from x_groq on the finish chunk when no usage chunk comes, as one usage chunk before [DONE]", async () => {
    // https://github.com/vercel/ai/issues/1651: Groq's stream puts its count in `x_groq.usage`.
    fake.enqueue({ kind: 'transcript', text: readFileSync(new URL('../../../test/fixtures/openai/groq-x-groq-usage.sse', import.meta.url), 'utf8') });
    const stream = await provider.chatStream({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx());
    const events = await collect(stream.events);
    expect(events).toHaveLength(4);
    // The finish chunk goes out as sent; the count follows in a chunk of its own, OpenAI's usage chunk.
    expect(events[2]!.usage).toBeUndefined();
    expect(events[2]!.chunk.x_groq).toMatchObject({ usage: { prompt_tokens: 23 } });
    expect(events[3]!.usage).toEqual({ promptTokens: 23, outputTokens: 19 });
    expect(events[3]!.chunk).toMatchObject({ id: 'chatcmpl-8566e76f-7ded-47d7-a2ca-d212098af00c', object: 'chat.completion.chunk', created: 1716131679, model: 'fast-chat', choices: [] });
    expect(events[3]!.chunk.usage).toMatchObject({ prompt_tokens: 23, completion_tokens: 19, total_tokens: 42 });
  });

  it("a stream with both Groq's x_groq.usage and a usage chunk yields the usage chunk alone", async () => {
    const finish = JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'up', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], x_groq: { id: 'req_1', usage: { prompt_tokens: 23, completion_tokens: 19, total_tokens: 42 } } });
    const usageChunk = JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'up', choices: [], usage: { prompt_tokens: 23, completion_tokens: 19, total_tokens: 42 } });
    fake.enqueue({ kind: 'sse', events: [finish, usageChunk, '[DONE]'] });
    const stream = await provider.chatStream({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx());
    const events = await collect(stream.events);
    expect(events.map((e) => e.usage)).toEqual([undefined, { promptTokens: 23, outputTokens: 19 }]);
  });

  it('drops usage it cannot read from a chunk (the gateway counts instead), and keeps usage: null as sent', async () => {
    const nulled = '{"object":"chat.completion.chunk","model":"fast-chat","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}],"usage":null}';
    const bad = '{"object":"chat.completion.chunk","model":"fast-chat","choices":[],"usage":{"prompt_tokens":-5,"completion_tokens":"many"}}';
    fake.enqueue({ kind: 'sse', events: [nulled, bad, '[DONE]'] });
    const stream = await provider.chatStream({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx());
    const events = await collect(stream.events);
    expect(events[0]!.raw).toBe(nulled);
    expect(events[1]).toEqual({ chunk: { object: 'chat.completion.chunk', model: 'fast-chat', choices: [] }, raw: undefined });
  });

  it('a server that ignores stream and answers the whole completion as JSON is relayed as its chunks', async () => {
    fake.enqueue({
      kind: 'json',
      body: {
        id: 'chatcmpl-1', object: 'chat.completion', created: 7, model: 'gpt-4o-mini',
        choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{}' } }] }, finish_reason: 'tool_calls' }],
        usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
      },
    });
    const stream = await provider.chatStream({ model: chatModel, body: { model: 'fast-chat', messages: [], stream: true } }, ctx());
    const events = await collect(stream.events);
    expect(events.map((e) => e.chunk)).toEqual([
      {
        id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 7, model: 'fast-chat',
        choices: [{ index: 0, delta: { role: 'assistant', content: null, tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'f', arguments: '{}' } }] }, logprobs: null, finish_reason: 'tool_calls' }],
      },
      { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 7, model: 'fast-chat', choices: [], usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 } },
    ]);
    expect(events[1]!.usage).toEqual({ promptTokens: 5, outputTokens: 3 });
  });

  it('a whole completion relayed as chunks says why it stopped, with stop when the server named no reason', async () => {
    fake.enqueue({ kind: 'json', body: { id: 'c', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'hi' } }] } });
    const stream = await provider.chatStream({ model: chatModel, body: { model: 'fast-chat', messages: [], stream: true } }, ctx());
    const events = await collect(stream.events);
    expect(events).toHaveLength(1);
    expect((events[0]!.chunk.choices as { finish_reason: unknown }[])[0]!.finish_reason).toBe('stop');
  });

  it('throws an UpstreamHttpError from the iterator on a mid-stream error object', async () => {
    fake.enqueue({
      kind: 'sse',
      events: ['{"choices":[{"index":0,"delta":{"content":"par"}}]}', '{"error":{"message":"The server is overloaded","type":"server_error","param":null,"code":"overloaded"}}'],
    });
    const stream = await provider.chatStream({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx());
    const { seen, err } = await readUntilFailure(stream.events);
    expect(seen).toHaveLength(1);
    expect(err).toBeInstanceOf(UpstreamHttpError);
    const e = err as UpstreamHttpError;
    expect(e.status).toBe(502);
    expect(e.provider).toBe('oai');
    expect(e.body.error).toEqual({ message: 'The server is overloaded', type: 'server_error', code: 'overloaded', param: null });
  });

  it("a mid-stream error as vLLM's top-level error object (`object: \"error\"`, no `error` member) is an error, not a chunk before [DONE]", async () => {
    // vLLM builds whose ErrorResponse is flat write it so, then [DONE]: relayed as a chunk, the
    // stream ended as a whole answer and was charged as one.
    const vllm = JSON.stringify({ object: 'error', message: 'CUDA out of memory', type: 'InternalServerError', param: null, code: 500 });
    fake.enqueue({ kind: 'sse', events: ['{"choices":[{"index":0,"delta":{"content":"par"}}]}', vllm, '[DONE]'] });
    const stream = await provider.chatStream({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx());
    const { seen, err } = await readUntilFailure(stream.events);
    expect(seen).toHaveLength(1);
    expect(err).toMatchObject({ status: 502, body: { error: { message: 'CUDA out of memory', type: 'InternalServerError', code: '500' } } });
  });

  it("a mid-stream error in Google's list (`[{\"error\": …}]`) is read for its message, not called not-an-object", async () => {
    const google = JSON.stringify([{ error: { code: 503, message: 'The model is overloaded. Please try again later.', status: 'UNAVAILABLE' } }]);
    fake.enqueue({ kind: 'sse', events: ['{"choices":[{"index":0,"delta":{"content":"par"}}]}', google] });
    const stream = await provider.chatStream({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx());
    const { seen, err } = await readUntilFailure(stream.events);
    expect(seen).toHaveLength(1);
    expect(err).toMatchObject({ status: 502, body: { error: { message: 'The model is overloaded. Please try again later.' } } });
  });

  it('a chunk whose `error` member is null (or another empty value) is a chunk, as the official SDKs read it', async () => {
    // openai-node's Stream throws only for a truthy `data.error` (core/streaming.ts); a server that
    // serialises a nullable `error` on every chunk streams fine straight to the SDK.
    const chunk = (error: unknown, delta: object, finish: string | null = null) =>
      JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'up', choices: [{ index: 0, delta, finish_reason: finish }], error });
    fake.enqueue({ kind: 'sse', events: [chunk(null, { content: 'hi' }), chunk('', {}, 'stop'), '[DONE]'] });
    const stream = await provider.chatStream({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx());
    const events = await collect(stream.events);
    expect(events.map((e) => (e.chunk.choices as { delta: { content?: string } }[])[0]!.delta.content)).toEqual(['hi', undefined]);
  });

  it('an `event: error` is an error though its data has no `error` member, not a chunk relayed before [DONE]', async () => {
    // The fake writes `data: <event>\n\n`: the first event carries the named error event after it.
    fake.enqueue({ kind: 'sse', events: ['{"choices":[]}\n\nevent: error\ndata: {"message":"The model is overloaded"}', '[DONE]'] });
    const stream = await provider.chatStream({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx());
    const { seen, err } = await readUntilFailure(stream.events);
    expect(seen).toHaveLength(1);
    expect(err).toMatchObject({ status: 502, body: { error: { message: 'The model is overloaded' } } });
  });

  it('rejects a stream whose event is not JSON', async () => {
    fake.enqueue({ kind: 'sse', events: ['not json'] });
    const stream = await provider.chatStream({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx());
    const err = await rejection(collect(stream.events));
    expect(err).toBeInstanceOf(UpstreamHttpError);
    expect((err as UpstreamHttpError).status).toBe(502);
  });

  it('rejects chatStream itself when the upstream answers an error status', async () => {
    fake.enqueue({ kind: 'json', status: 400, body: { error: { message: 'bad tools', type: 'invalid_request_error', param: 'tools', code: null } } });
    const err = await rejection(provider.chatStream({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx()));
    expect(err).toBeInstanceOf(UpstreamHttpError);
    expect((err as UpstreamHttpError).body.error.param).toBe('tools');
  });

  it('close() aborts the upstream call', async () => {
    fake.enqueue({ kind: 'sse', events: ['{"choices":[]}', '{"choices":[]}'], holdBeforeIndex: 1, release: new Promise(() => {}) });
    const stream = await provider.chatStream({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx());
    const it = stream.events[Symbol.asyncIterator]();
    await it.next();
    stream.close();
    stream.close();
    const err = await rejection(it.next());
    expect((err as Error).name).toBe('AbortError');
  });

  it("the caller's abort mid-stream surfaces as its reason", async () => {
    fake.enqueue({ kind: 'sse', events: ['{"choices":[]}', '{"choices":[]}'], holdBeforeIndex: 1, release: new Promise(() => {}) });
    const ac = new AbortController();
    const stream = await provider.chatStream({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx(ac.signal));
    const it = stream.events[Symbol.asyncIterator]();
    await it.next();
    const reason = new Error('client disconnected');
    ac.abort(reason);
    expect(await rejection(it.next())).toBe(reason);
  });

  it('a stream that goes silent fails with upstream_timeout (idle)', async () => {
    fake.enqueue({ kind: 'sse', events: ['{"choices":[]}', '[DONE]'], holdBeforeIndex: 1, release: new Promise(() => {}) });
    const stream = await provider.chatStream({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx());
    const err = await rejection(collect(stream.events));
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe('upstream_timeout');
    expect((err as GatewayError).vars.phase).toBe('idle');
  });
});

describe('openai provider: error answers', () => {
  const call = () => provider.chat({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx());

  it.each([
    {
      name: 'OpenAI error object',
      behaviour: { kind: 'json' as const, status: 429, body: { error: { message: 'Rate limit reached', type: 'requests', param: null, code: 'rate_limit_exceeded' } } },
      error: { message: 'Rate limit reached', type: 'requests', code: 'rate_limit_exceeded', param: null },
    },
    {
      name: 'error object with missing fields and a numeric code',
      behaviour: { kind: 'json' as const, status: 422, body: { error: { message: 'Unprocessable', code: 422 } } },
      error: { message: 'Unprocessable', type: 'invalid_request_error', code: '422', param: null },
    },
    {
      name: 'Ollama-style error string',
      behaviour: { kind: 'json' as const, status: 404, body: { error: 'model "llama9" not found' } },
      error: { message: 'model "llama9" not found', type: 'not_found_error', code: null, param: null },
    },
    {
      name: 'FastAPI/vLLM detail',
      behaviour: { kind: 'json' as const, status: 400, body: { detail: 'max_tokens is too large' } },
      error: { message: 'max_tokens is too large', type: 'invalid_request_error', code: null, param: null },
    },
    {
      name: 'FastAPI validation list (422)',
      behaviour: {
        kind: 'json' as const,
        status: 422,
        body: { detail: [{ loc: ['body', 'messages', 0, 'content'], msg: 'Field required', type: 'missing' }, { loc: ['body', 'temperature'], msg: 'Input should be a valid number', type: 'float_parsing' }] },
      },
      error: { message: 'messages.0.content: Field required; temperature: Input should be a valid number', type: 'invalid_request_error', code: 'missing', param: 'messages.0.content' },
    },
    {
      name: 'Mistral validation error (the list under message)',
      behaviour: {
        kind: 'json' as const,
        status: 422,
        body: {
          object: 'error',
          message: { detail: [{ type: 'extra_forbidden', loc: ['body', 'stream_options', 'include_usage'], msg: 'Extra inputs are not permitted', input: true }] },
          type: 'invalid_request_error',
          param: null,
          code: null,
        },
      },
      error: { message: 'stream_options.include_usage: Extra inputs are not permitted', type: 'invalid_request_error', code: 'extra_forbidden', param: 'stream_options.include_usage' },
    },
    {
      name: "Mistral's error object (type and code beside the message)",
      // https://github.com/tmc/langchaingo/issues/1233
      behaviour: { kind: 'json' as const, status: 400, body: { object: 'error', message: 'Invalid model: mistral-huge', type: 'invalid_model', param: null, code: '1500' } },
      error: { message: 'Invalid model: mistral-huge', type: 'invalid_model', code: '1500', param: null },
    },
    {
      name: "Gemini's error inside a list",
      behaviour: {
        kind: 'json' as const,
        status: 400,
        body: [{ error: { code: 400, message: 'Invalid JSON payload received. Unknown name "web_search_options": Cannot find field.', status: 'INVALID_ARGUMENT' } }],
      },
      error: { message: 'Invalid JSON payload received. Unknown name "web_search_options": Cannot find field.', type: 'invalid_request_error', code: '400', param: null },
    },
    {
      name: 'HTML page from a proxy',
      behaviour: { kind: 'text' as const, status: 502, body: '<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>' },
      error: { message: '502 Bad Gateway 502 Bad Gateway nginx', type: 'api_error', code: null, param: null },
    },
    {
      name: 'empty body',
      behaviour: { kind: 'text' as const, status: 503, body: '' },
      error: { message: 'The upstream answered HTTP 503 with an empty body.', type: 'api_error', code: null, param: null },
    },
    {
      name: 'JSON of an unknown shape',
      behaviour: { kind: 'json' as const, status: 500, body: { oops: true } },
      error: { message: '{"oops":true}', type: 'api_error', code: null, param: null },
    },
  ])('normalises $name, keeping the status', async ({ behaviour, error }) => {
    fake.enqueue(behaviour);
    const err = await rejection(call());
    expect(err).toBeInstanceOf(UpstreamHttpError);
    expect((err as UpstreamHttpError).status).toBe(behaviour.status);
    expect((err as UpstreamHttpError).body).toEqual({ error });
  });

  it.each([401, 403])('a %i (the gateway’s own key refused) is upstream_auth_failed, the answer kept only as the cause', async (status) => {
    fake.enqueue({ kind: 'json', status, body: { error: { message: 'Incorrect API key provided: sk-abc*****wxyz', code: 'invalid_api_key' } } });
    const err = await rejection(call());
    expect(err).toMatchObject({ code: 'upstream_auth_failed', status: 502, vars: { provider: 'oai', upstreamStatus: status } });
    expect(String((err as Error).cause)).toContain('Incorrect API key');
  });

  it('a 200 carrying an error object (vLLM behind RunPod) is that error, with the status its code names', async () => {
    const vllm = { object: 'error', message: 'The model `llama9` does not exist.', type: 'NotFoundError', param: null, code: 404 };
    fake.enqueue({ kind: 'json', status: 200, body: vllm });
    let err = await rejection(call());
    expect(err).toBeInstanceOf(UpstreamHttpError);
    expect((err as UpstreamHttpError).status).toBe(404);
    expect((err as UpstreamHttpError).body.error).toEqual({ message: 'The model `llama9` does not exist.', type: 'NotFoundError', code: '404', param: null });
    // The provider took the call: no fallback is given it (core/routes.ts fallsBack).
    expect((err as UpstreamHttpError).taken).toBe(true);
    fake.enqueue({ kind: 'json', status: 200, body: vllm });
    err = await rejection(provider.chatStream({ model: chatModel, body: { model: 'fast-chat', messages: [], stream: true } }, ctx()));
    expect((err as UpstreamHttpError).status).toBe(404);
    fake.enqueue({ kind: 'json', status: 200, body: { error: { message: 'overloaded', type: 'server_error' } } });
    err = await rejection(provider.embed({ model: embedModel, body: { model: 'embed', input: 'a' } }, ctx()));
    expect(err).toMatchObject({ status: 502, body: { error: { message: 'overloaded', type: 'server_error' } } });
    fake.enqueue({ kind: 'json', status: 200, body: { error: { message: 'Incorrect API key provided: sk-abc*****wxyz', code: 401 } } });
    expect(await rejection(call())).toMatchObject({ code: 'upstream_auth_failed', status: 502 });
  });

  it("a 200 carrying a 403 error object is the gateway's own key refused (upstream_auth_failed), not the caller's 403", async () => {
    fake.enqueue({ kind: 'json', status: 200, body: { error: { message: 'Project sk-abc does not have access to model gpt-4o-mini', code: 403 } } });
    expect(await rejection(call())).toMatchObject({ code: 'upstream_auth_failed', status: 502 });
  });

  it('asks for no content coding, and refuses a compressed answer by its coding rather than reading it as JSON or text', async () => {
    await call();
    expect(fake.requests[0]!.headers['accept-encoding']).toBe('identity');
    const json = (status: number, body: unknown, coding = 'gzip') => ({
      kind: 'raw' as const,
      status,
      headers: { 'content-type': 'application/json', 'content-encoding': coding },
      body: coding === 'br' ? brotliCompressSync(JSON.stringify(body)) : gzipSync(JSON.stringify(body)),
    });
    fake.enqueue(json(200, { id: 'x', object: 'chat.completion', choices: [], usage: { prompt_tokens: 1, completion_tokens: 1 } }));
    let err = await rejection(call());
    expect(err).toMatchObject({ status: 502, body: { error: { code: 'invalid_upstream_response' } } });
    expect((err as UpstreamHttpError).body.error.message).toMatch(/Content-Encoding: gzip/);
    // An error answer keeps its status (a 429 is still a rate limit), and its message says why it was not read.
    fake.enqueue(json(429, { error: { message: 'Rate limit reached', type: 'requests', code: 'rate_limit_exceeded' } }, 'br'));
    err = await rejection(call());
    expect((err as UpstreamHttpError).status).toBe(429);
    expect((err as UpstreamHttpError).body.error.message).toBe('The upstream answered HTTP 429 with a body in Content-Encoding: br, which the gateway does not decode.');
    fake.enqueue({ kind: 'raw', status: 200, headers: { 'content-type': 'text/event-stream', 'content-encoding': 'gzip' }, body: gzipSync('data: {"choices":[]}\n\ndata: [DONE]\n\n') });
    err = await rejection(provider.chatStream({ model: chatModel, body: { model: 'fast-chat', messages: [], stream: true } }, ctx()));
    expect((err as UpstreamHttpError).body.error.message).toMatch(/Content-Encoding: gzip/);
    // `identity` is no coding at all.
    fake.enqueue({ kind: 'raw', status: 200, headers: { 'content-type': 'application/json', 'content-encoding': 'identity' }, body: Buffer.from(JSON.stringify({ id: 'x', object: 'chat.completion', choices: [] })) });
    expect((await call()).usage).toBeUndefined();
  });

  it('a 200 that is not JSON is a 502 invalid_upstream_response', async () => {
    fake.enqueue({ kind: 'text', status: 200, body: 'surprise' });
    const err = await rejection(call());
    expect((err as UpstreamHttpError).status).toBe(502);
    expect((err as UpstreamHttpError).body.error.code).toBe('invalid_upstream_response');
  });
});

describe('openai provider: transport failures', () => {
  const call = (p = provider) => p.chat({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx());

  it('a stream that never starts is upstream_timeout (first byte): its head comes at once from a live upstream', async () => {
    fake.enqueue({ kind: 'hang' });
    const err = await rejection(provider.chatStream({ model: chatModel, body: { model: 'fast-chat', messages: [], stream: true } }, ctx()));
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe('upstream_timeout');
    expect((err as GatewayError).vars).toEqual({ provider: 'oai', timeoutMs: 400, phase: 'first byte' });
  });

  it('a non-streaming answer is waited for past the first-byte limit (OpenAI writes its head with the whole answer), up to the total one', async () => {
    const slow = await startFakeOpenAI({ delayMs: 1_000 });
    try {
      const p = openaiProviderType.create({ config: { ...config(), baseUrl: slow.url }, client });
      expect((await call(p)).usage).toBeDefined();
      const bounded = createUpstreamClient({ connectTimeoutMs: 1_000, firstByteTimeoutMs: 400, totalTimeoutMs: 600, idleTimeoutMs: 400, connectionsPerOrigin: 1 });
      const err = await rejection(call(openaiProviderType.create({ config: { ...config(), baseUrl: slow.url }, client: bounded })));
      expect((err as GatewayError).vars).toEqual({ provider: 'oai', timeoutMs: 600, phase: 'total' });
    } finally {
      await slow.close();
    }
  });

  it('a dropped connection is upstream_unavailable', async () => {
    fake.enqueue({ kind: 'destroy' });
    const err = await rejection(call());
    expect((err as GatewayError).code).toBe('upstream_unavailable');
  });

  it('a refused connection is upstream_unavailable', async () => {
    const gone = await startFakeOpenAI();
    await gone.close();
    const p = openaiProviderType.create({ config: { ...config(), baseUrl: gone.url }, client });
    const err = await rejection(call(p));
    expect((err as GatewayError).code).toBe('upstream_unavailable');
    expect((err as GatewayError).vars).toEqual({ provider: 'oai', detail: 'connection refused', stage: 'connect' });
  });
});

describe('openai provider: embeddings and images', () => {
  it('embeds with the upstream model and reports prompt tokens', async () => {
    const { body: text, usage } = await provider.embed(
      { model: embedModel, body: { model: 'embed', input: ['a', 'b', 'c'], dimensions: 8 } },
      ctx(),
    );
    const body = JSON.parse(text.toString()) as Record<string, unknown>;
    expect(fake.requests[0]!.path).toBe('/v1/embeddings');
    expect(lastBody()).toEqual({ model: 'text-embedding-3-small', input: ['a', 'b', 'c'], dimensions: 8 });
    expect(body.model).toBe('embed');
    expect((body.data as { embedding: number[] }[])[1]!.embedding).toEqual(fakeEmbedding(1));
    expect(usage).toEqual({ promptTokens: 12, outputTokens: 0 });
  });

  it('charges embeddings for their input only, and a fractional count rounds up', async () => {
    // An embedding has no output: a completion count some compatible servers add is not charged.
    fake.enqueue({ kind: 'json', body: { object: 'list', data: [], model: 'x', usage: { prompt_tokens: 3.2, completion_tokens: 5, total_tokens: 8.2 } } });
    const { usage } = await provider.embed({ model: embedModel, body: { model: 'embed', input: 'a' } }, ctx());
    expect(usage).toEqual({ promptTokens: 4, outputTokens: 0 });
  });

  it('sends n, size as WxH, response_format and extra fields for images', async () => {
    const { body, usage } = await provider.generateImage(
      imageCall({ n: 2, size: { width: 1024, height: 1792 }, responseFormat: 'url', extra: { quality: 'hd', style: 'vivid' } }),
      ctx(),
    );
    expect(fake.requests[0]!.path).toBe('/v1/images/generations');
    expect(lastBody()).toEqual({ model: 'dall-e-3', prompt: 'a red fox', n: 2, size: '1024x1792', response_format: 'url', quality: 'hd', style: 'vivid' });
    expect(body.data).toEqual([{ url: 'https://fake.example/img-0.png' }, { url: 'https://fake.example/img-1.png' }]);
    expect(typeof body.created).toBe('number');
    expect(usage).toEqual({ promptTokens: 0, outputTokens: 0, images: 2 });
  });

  it('omits size and response_format when not given, and passes b64_json through', async () => {
    await provider.generateImage(imageCall(), ctx());
    expect(lastBody()).toEqual({ model: 'dall-e-3', prompt: 'a red fox', n: 1 });
    const { body } = await provider.generateImage(imageCall({ responseFormat: 'b64_json' }), ctx());
    expect(body.data).toEqual([{ b64_json: FAKE_PNG_B64 }]);
  });

  it('counts the images the upstream actually produced', async () => {
    fake.enqueue({ kind: 'json', body: { created: 1, data: [{ url: 'https://x/1.png' }] } });
    const { usage } = await provider.generateImage(imageCall({ n: 3 }), ctx());
    expect(usage.images).toBe(1);
  });

  it('a 200 that lists no image is invalid_upstream_response (nothing to relay or charge)', async () => {
    fake.enqueue({ kind: 'json', body: { created: 1, data: [] } });
    await expect(provider.generateImage(imageCall(), ctx())).rejects.toMatchObject({ status: 502, body: { error: { code: 'invalid_upstream_response' } } });
  });
});

describe('openai provider: configuration', () => {
  it('is configured only with an API key, and sends no Authorization without one', async () => {
    expect(provider.configured).toBe(true);
    const keyless = openaiProviderType.create({ config: config({ apiKey: undefined, headers: {} }), client });
    expect(keyless.configured).toBe(false);
    expect(openaiProviderType.create({ config: config({ apiKey: '' }), client }).configured).toBe(false);
    await keyless.chat({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx());
    expect(fake.requests[0]!.headers.authorization).toBeUndefined();
  });

  it('tolerates a trailing slash in baseUrl', async () => {
    const p = openaiProviderType.create({ config: config({ baseUrl: `${fake.url}/` }), client });
    await p.chat({ model: chatModel, body: { model: 'fast-chat', messages: [] } }, ctx());
    expect(fake.requests[0]!.path).toBe('/v1/chat/completions');
  });
});
