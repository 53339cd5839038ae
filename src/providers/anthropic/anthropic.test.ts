import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anthropicError, anthropicFixture, ANTHROPIC_KEY, FAKE_CLAUDE_TEXT, startFakeAnthropic, type FakeAnthropic } from '../../../test/helpers/fake-anthropic.js';
import { ConfigError, loadConfig } from '../../config/load.js';
import { modelSchema, type ProviderConfig } from '../../config/schema.js';
import type { JsonObject } from '../../core/types.js';
import { GatewayError, UpstreamHttpError } from '../../errors/gateway-error.js';
import { createUpstreamClient } from '../../upstream/client.js';
import type { UpstreamClient, UpstreamRequest, UpstreamResponse } from '../../upstream/types.js';
import type { ChatStreamEvent } from '../provider.js';
import { providerTypes } from '../registry.js';
import { anthropicProviderType, ANTHROPIC_VERSION } from './index.js';
import { toAnthropicRequest } from './request.js';
import { rejection } from '../../../test/helpers/rejection.js';

const model = modelSchema.parse({ id: 'claude', kind: 'chat', provider: 'anth', upstream: 'claude-sonnet-4-5', price: { input: 3, output: 15, cachedInput: 0.3 }, maxOutputTokens: 8192 });
const config = (over: Partial<ProviderConfig> = {}): ProviderConfig => ({ id: 'anth', type: 'anthropic', baseUrl: 'http://anthropic.test/v1/', apiKey: ANTHROPIC_KEY, headers: {}, ...over });
const user = (content: unknown) => ({ role: 'user', content });
const body = (over: JsonObject = {}): JsonObject => ({ model: 'claude', messages: [user('hi')], ...over });

/** An upstream client answering from a script, its body split as `split` says: the adapter's whole path without a network. */
function stubClient(answer: { status?: number; headers?: Record<string, string>; text: string }, split: (n: number) => number = (n) => n) {
  const requests: UpstreamRequest[] = [];
  const client: UpstreamClient = {
    async request(req) {
      requests.push(req);
      const bytes = new TextEncoder().encode(answer.text);
      const res: UpstreamResponse = {
        status: answer.status ?? 200,
        headers: { 'content-type': 'application/json', ...answer.headers },
        body: (async function* () {
          for (let i = 0; i < bytes.length; ) {
            const n = Math.max(1, split(bytes.length - i));
            yield bytes.slice(i, i + n);
            i += n;
          }
        })(),
        text: async () => answer.text,
        json: async () => JSON.parse(answer.text),
        dump: async () => {},
        cancel: () => {},
      };
      return res;
    },
    close: async () => {},
  };
  return { client, requests };
}

const sent = (req: UpstreamRequest) => JSON.parse(req.body!) as JsonObject;

/** A transcript's chunks through the provider, and the failure that ended it (if one did). */
async function streamOf(text: string, split?: (n: number) => number): Promise<{ events: ChatStreamEvent[]; err: unknown }> {
  const { client } = stubClient({ text, headers: { 'content-type': 'text/event-stream' } }, split);
  const provider = anthropicProviderType.create({ config: config(), client });
  const stream = await provider.chatStream({ model, body: body({ stream: true }) }, { requestId: 'r' });
  const events: ChatStreamEvent[] = [];
  let err: unknown;
  try {
    for await (const e of stream.events) events.push(e);
  } catch (e) {
    err = e;
  }
  return { events, err };
}

const deltas = (events: ChatStreamEvent[]) => events.map((e) => (e.chunk.choices as JsonObject[])[0]?.delta ?? null);
const finishes = (events: ChatStreamEvent[]) => events.map((e) => (e.chunk.choices as JsonObject[])[0]?.finish_reason ?? null);

describe('anthropic: request translation', () => {
  const cases: Array<[string, JsonObject, JsonObject]> = [
    ['model, max_tokens from the model ceiling when the request names none', body(), { model: 'claude-sonnet-4-5', max_tokens: 8192, messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] }],
    ['max_completion_tokens before max_tokens', body({ max_tokens: 100, max_completion_tokens: 50 }), { max_tokens: 50 }],
    ['max_tokens', body({ max_tokens: 100 }), { max_tokens: 100 }],
    [
      'system and developer messages joined into `system`, text parts joined',
      body({ messages: [{ role: 'system', content: 'Be brief.' }, { role: 'developer', content: [{ type: 'text', text: 'Use ' }, { type: 'text', text: 'French.' }] }, user('hi')] }),
      { system: 'Be brief.\n\nUse \n\nFrench.', messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] },
    ],
    [
      'a system part with cache_control keeps its blocks (the prompt-cache marker)',
      body({ messages: [{ role: 'system', content: [{ type: 'text', text: 'Long rules', cache_control: { type: 'ephemeral' } }] }, user('hi')] }),
      { system: [{ type: 'text', text: 'Long rules', cache_control: { type: 'ephemeral' } }] },
    ],
    [
      'user image parts: an https URL and a base64 data URI',
      body({ messages: [user([{ type: 'text', text: 'what is it?' }, { type: 'image_url', image_url: { url: 'https://img.test/cat.png', detail: 'high' } }, { type: 'image_url', image_url: { url: 'data:image/PNG;base64,iVBORw0K' } }])] }),
      {
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'what is it?' },
              { type: 'image', source: { type: 'url', url: 'https://img.test/cat.png' } },
              { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0K' } },
            ],
          },
        ],
      },
    ],
    [
      'assistant tool calls become tool_use blocks; tool results one user turn right after, then the next user text merged into it',
      body({
        messages: [
          user('weather in Paris and Rome?'),
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              { id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
              { id: 'toolu_2', type: 'function', function: { name: 'get_weather', arguments: '' } },
            ],
          },
          { role: 'tool', tool_call_id: 'toolu_1', content: '18C' },
          { role: 'tool', tool_call_id: 'toolu_2', content: [{ type: 'text', text: '21C' }] },
          user('and tomorrow?'),
        ],
      }),
      {
        messages: [
          { role: 'user', content: [{ type: 'text', text: 'weather in Paris and Rome?' }] },
          {
            role: 'assistant',
            content: [
              { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } },
              { type: 'tool_use', id: 'toolu_2', name: 'get_weather', input: {} },
            ],
          },
          {
            role: 'user',
            content: [
              { type: 'tool_result', tool_use_id: 'toolu_1', content: '18C' },
              { type: 'tool_result', tool_use_id: 'toolu_2', content: '21C' },
              { type: 'text', text: 'and tomorrow?' },
            ],
          },
        ],
      },
    ],
    [
      'assistant text and tool call in one turn',
      body({ messages: [user('q'), { role: 'assistant', content: 'Let me look.', tool_calls: [{ id: 't', type: 'function', function: { name: 'f', arguments: '{}' } }] }] }),
      { messages: [{ role: 'user', content: [{ type: 'text', text: 'q' }] }, { role: 'assistant', content: [{ type: 'text', text: 'Let me look.' }, { type: 'tool_use', id: 't', name: 'f', input: {} }] }] },
    ],
    ['temperature above Anthropic’s 1 is sent as 1', body({ temperature: 1.6 }), { temperature: 1 }],
    ['temperature within 0–1 as sent', body({ temperature: 0.3 }), { temperature: 0.3 }],
    ['top_p alone as sent', body({ top_p: 0.9 }), { top_p: 0.9 }],
    ['stop as a string', body({ stop: 'END' }), { stop_sequences: ['END'] }],
    ['stop as a list', body({ stop: ['a', 'b'] }), { stop_sequences: ['a', 'b'] }],
    ['a stop sequence with text around its newline as sent', body({ stop: ['\nUser:'] }), { stop_sequences: ['\nUser:'] }],
    ['user → metadata.user_id', body({ user: 'u-42' }), { metadata: { user_id: 'u-42' } }],
    ['Anthropic’s own top_k and thinking pass', body({ top_k: 5, thinking: { type: 'enabled', budget_tokens: 2000 } }), { top_k: 5, thinking: { type: 'enabled', budget_tokens: 2000 } }],
    [
      'tools and tool_choice auto',
      body({ tools: [{ type: 'function', function: { name: 'f', description: 'does f', parameters: { type: 'object', properties: { x: { type: 'number' } } } } }, { type: 'function', function: { name: 'g' } }], tool_choice: 'auto' }),
      {
        tools: [
          { name: 'f', description: 'does f', input_schema: { type: 'object', properties: { x: { type: 'number' } } } },
          { name: 'g', input_schema: { type: 'object', properties: {} } },
        ],
        tool_choice: { type: 'auto' },
      },
    ],
    [
      // Anthropic answers 400 "tools.0.custom.input_schema.type: Field required"; OpenAI takes such schemas.
      'a tool schema without a top-level type gets type object',
      body({ tools: [{ type: 'function', function: { name: 'f', parameters: { properties: { x: { type: 'number' } }, required: ['x'] } } }, { type: 'function', function: { name: 'g', parameters: {} } }] }),
      {
        tools: [
          { name: 'f', input_schema: { type: 'object', properties: { x: { type: 'number' } }, required: ['x'] } },
          { name: 'g', input_schema: { type: 'object' } },
        ],
      },
    ],
    ['tool_choice required → any', body({ tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: 'required' }), { tool_choice: { type: 'any' } }],
    ['tool_choice none', body({ tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: 'none', parallel_tool_calls: false }), { tool_choice: { type: 'none' } }],
    ['tool_choice naming a function → tool', body({ tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: { type: 'function', function: { name: 'f' } } }), { tool_choice: { type: 'tool', name: 'f' } }],
    ['parallel_tool_calls false → disable_parallel_tool_use', body({ tools: [{ type: 'function', function: { name: 'f' } }], parallel_tool_calls: false }), { tool_choice: { type: 'auto', disable_parallel_tool_use: true } }],
    ['stream', body({ stream: true }), { stream: true }],
  ];
  it.each(cases)('%s', (_name, input, expected) => {
    const out = toAnthropicRequest(model, input, input.stream === true);
    expect(out).toMatchObject(expected);
  });

  it('refuses a conversation of system messages alone (400 naming messages), which Anthropic would refuse as an empty list', () => {
    const err = (() => {
      try {
        toAnthropicRequest(model, body({ messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: '  ' }] }), false);
      } catch (e) {
        return e as { code: string; param: string };
      }
    })();
    expect(err).toMatchObject({ code: 'invalid_request', param: 'messages' });
  });

  it('drops the OpenAI-only hints Anthropic would refuse as unknown fields', () => {
    const out = toAnthropicRequest(
      model,
      body({ seed: 7, frequency_penalty: 1, presence_penalty: 1, logit_bias: { 1: 2 }, stream_options: { include_usage: true }, service_tier: 'auto', store: true, metadata: { a: 'b' }, n: 1, logprobs: false, top_logprobs: 2, response_format: { type: 'text' }, modalities: ['text'], prediction: { type: 'content', content: 'x' }, reasoning_effort: 'low' }),
      false,
    );
    expect(Object.keys(out).sort()).toEqual(['max_tokens', 'messages', 'model']);
  });

  it('sends no stop_sequences for a stop of null or an empty list', () => {
    expect(toAnthropicRequest(model, body({ stop: null }), false)).not.toHaveProperty('stop_sequences');
    expect(toAnthropicRequest(model, body({ stop: [] }), false)).not.toHaveProperty('stop_sequences');
  });

  it('sends temperature without top_p when both are set: Claude 4.5 and later refuse the two together', () => {
    const out = toAnthropicRequest(model, body({ temperature: 0.3, top_p: 0.9 }), false);
    expect(out.temperature).toBe(0.3);
    expect(out).not.toHaveProperty('top_p');
  });

  it('leaves tool_choice out without tools, and empty text out (Anthropic refuses empty text blocks)', () => {
    const out = toAnthropicRequest(model, body({ tool_choice: 'required', messages: [user('q'), { role: 'assistant', content: '' }, user([{ type: 'text', text: '' }, { type: 'text', text: 'again' }])] }), false);
    expect(out.tool_choice).toBeUndefined();
    expect(out.messages).toEqual([{ role: 'user', content: [{ type: 'text', text: 'q' }, { type: 'text', text: 'again' }] }]);
  });

  it('leaves whitespace-only text out too (Anthropic: "text content blocks must contain non-whitespace text")', () => {
    const out = toAnthropicRequest(
      model,
      body({
        messages: [
          { role: 'system', content: [{ type: 'text', text: ' \n' }] },
          user('q'),
          { role: 'assistant', content: '\n\n', tool_calls: [{ id: 't', type: 'function', function: { name: 'f', arguments: '{}' } }] },
          { role: 'tool', tool_call_id: 't', content: 'done' },
          user([{ type: 'text', text: '  ' }, { type: 'text', text: 'go on' }]),
          { role: 'assistant', content: [{ type: 'text', text: '\t' }] },
          user(' '),
        ],
      }),
      false,
    );
    expect(out.system).toBeUndefined();
    expect(out.messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'q' }] },
      { role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'f', input: {} }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: 'done' }, { type: 'text', text: 'go on' }] },
    ]);
  });

  it("keeps a tool message's whitespace parts in its text: they join the parts, and only a result that is all whitespace is left out", () => {
    const out = toAnthropicRequest(
      model,
      body({
        messages: [
          user('q'),
          { role: 'assistant', content: null, tool_calls: [{ id: 't', type: 'function', function: { name: 'f', arguments: '{}' } }] },
          { role: 'tool', tool_call_id: 't', content: [{ type: 'text', text: 'line 1' }, { type: 'text', text: '\n' }, { type: 'text', text: 'line 2' }] },
        ],
      }),
      false,
    );
    expect(out.messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'q' }] },
      { role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'f', input: {} }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: 'line 1\nline 2' }] },
    ]);
  });

  it('a data: URI typed image/jpg (a common misspelling) goes as image/jpeg, the name Anthropic takes', () => {
    const out = toAnthropicRequest(model, body({ messages: [user([{ type: 'image_url', image_url: { url: 'data:image/jpg;base64,/9j/4AAQ' } }])] }), false);
    expect(out.messages).toEqual([{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: '/9j/4AAQ' } }] }]);
  });

  const refusals: Array<[string, JsonObject, string]> = [
    ['n > 1', body({ n: 2 }), 'n'],
    ['JSON mode', body({ response_format: { type: 'json_object' } }), 'response_format'],
    ['a JSON schema', body({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: {} } } }), 'response_format'],
    ['logprobs', body({ logprobs: true }), 'logprobs'],
    ['audio out', body({ modalities: ['text', 'audio'] }), 'modalities'],
    ['audio options', body({ audio: { voice: 'alloy', format: 'mp3' } }), 'audio'],
    ['legacy functions', body({ functions: [{ name: 'f' }] }), 'functions'],
    ['an input_audio part', body({ messages: [user([{ type: 'input_audio', input_audio: { data: 'AAA', format: 'wav' } }])] }), 'messages[0].content[0]'],
    ['a file part', body({ messages: [user([{ type: 'text', text: 'read' }, { type: 'file', file: { file_id: 'f' } }])] }), 'messages[0].content[1]'],
    ['an image that is neither http(s) nor base64', body({ messages: [user([{ type: 'image_url', image_url: { url: 'ftp://x/cat.png' } }])] }), 'messages[0].content[0].image_url.url'],
    ['tool call arguments that are not JSON', body({ messages: [user('q'), { role: 'assistant', content: null, tool_calls: [{ id: 't', type: 'function', function: { name: 'f', arguments: '{bad' } }] }] }), 'messages[1].tool_calls[0].function.arguments'],
    ['tool call arguments that are not an object', body({ messages: [user('q'), { role: 'assistant', content: null, tool_calls: [{ id: 't', type: 'function', function: { name: 'f', arguments: '[1]' } }] }] }), 'messages[1].tool_calls[0].function.arguments'],
    ['a tool message without tool_call_id', body({ messages: [user('q'), { role: 'tool', content: 'x' }] }), 'messages[1].tool_call_id'],
    ['a legacy function message', body({ messages: [user('q'), { role: 'function', name: 'f', content: 'x' }] }), 'messages[1].role'],
    ['an image in a system message', body({ messages: [{ role: 'system', content: [{ type: 'image_url', image_url: { url: 'https://x/y.png' } }] }, user('q')] }), 'messages[0].content[0]'],
    ['a tool that is not a function', body({ tools: [{ type: 'web_search' }] }), 'tools[0]'],
    ['an unknown tool_choice', body({ tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: 'always' }), 'tool_choice'],
    // Anthropic bills a 1-hour cache write at 2 × input, above price.cacheWriteInput's 5-minute rate.
    ['a 1-hour cache on a text part', body({ messages: [user([{ type: 'text', text: 'long', cache_control: { type: 'ephemeral', ttl: '1h' } }])] }), 'messages[0].content[0].cache_control.ttl'],
    ['a 1-hour cache on a tool', body({ tools: [{ type: 'function', function: { name: 'f' }, cache_control: { type: 'ephemeral', ttl: '1h' } }] }), 'tools[0].cache_control.ttl'],
    // Anthropic: "stop_sequences: each stop sequence must contain non-whitespace", about a field the caller never sent.
    ['a stop sequence of only whitespace', body({ stop: '\n' }), 'stop'],
    ['an empty stop sequence in a list', body({ stop: ['END', ''] }), 'stop[1]'],
    ['a stop sequence that is not a string', body({ stop: ['END', 5] }), 'stop[1]'],
    ['a stop that is neither a string nor a list', body({ stop: 5 }), 'stop'],
    ['tool parameters that are not an object', body({ tools: [{ type: 'function', function: { name: 'f', parameters: ['x'] } }] }), 'tools[0].function.parameters'],
    ['tool parameters of a type other than object', body({ tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'string' } } }] }), 'tools[0].function.parameters.type'],
  ];
  it.each(refusals)('refuses %s with 400 invalid_request naming the field', (_name, input, param) => {
    let err: unknown;
    try {
      toAnthropicRequest(model, input, false);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GatewayError);
    expect(err).toMatchObject({ code: 'invalid_request', status: 400, param });
  });
});

describe('anthropic: the call', () => {
  it('posts to {baseUrl}/messages with x-api-key, anthropic-version and the configured headers, no Authorization', async () => {
    const { client, requests } = stubClient({ text: JSON.stringify({ id: 'msg_1', type: 'message', content: [], stop_reason: 'end_turn', usage: { input_tokens: 1, output_tokens: 1 } }) });
    const provider = anthropicProviderType.create({ config: config({ headers: { 'anthropic-beta': 'prompt-caching-2024-07-31' } }), client });
    await provider.chat({ model, body: body() }, { requestId: 'r' });
    const req = requests[0]!;
    expect(req.url).toBe('http://anthropic.test/v1/messages');
    expect(req.headers).toEqual({
      'content-type': 'application/json', 'accept-encoding': 'identity', 'x-api-key': ANTHROPIC_KEY, 'anthropic-version': ANTHROPIC_VERSION, 'anthropic-beta': 'prompt-caching-2024-07-31',
    });
    expect(req.wholeAnswer).toBe(true);
  });

  it('refuses a streamed answer in a content coding by its coding, not as a cut-off stream; an operator\'s accept-encoding stands', async () => {
    const { client } = stubClient({ text: 'compressed bytes', headers: { 'content-type': 'text/event-stream', 'content-encoding': 'gzip' } });
    const provider = anthropicProviderType.create({ config: config(), client });
    const err = await rejection(provider.chatStream({ model, body: body({ stream: true }) }, { requestId: 'r' }));
    expect(err).toMatchObject({ status: 502, body: { error: { code: 'invalid_upstream_response' } } });
    expect((err as UpstreamHttpError).body.error.message).toMatch(/Content-Encoding: gzip/);
    const own = stubClient({ text: JSON.stringify({ id: 'msg_1', type: 'message', content: [], stop_reason: 'end_turn', usage: { input_tokens: 1, output_tokens: 1 } }) });
    await anthropicProviderType.create({ config: config({ headers: { 'Accept-Encoding': 'gzip' } }), client: own.client }).chat({ model, body: body() }, { requestId: 'r' });
    expect(own.requests[0]!.headers).toMatchObject({ 'Accept-Encoding': 'gzip' });
    expect(own.requests[0]!.headers).not.toHaveProperty('accept-encoding');
  });

  it('an operator header names another API version', async () => {
    const { client, requests } = stubClient({ text: '{}' });
    const provider = anthropicProviderType.create({ config: config({ headers: { 'Anthropic-Version': '2099-01-01' } }), client });
    await rejection(provider.chat({ model, body: body() }, { requestId: 'r' }));
    expect(Object.entries(requests[0]!.headers).filter(([k]) => k.toLowerCase() === 'anthropic-version')).toEqual([['Anthropic-Version', '2099-01-01']]);
  });

  it('translates a Message: text joined, thinking as reasoning_content, tool_use as tool calls, usage with the cache', async () => {
    const message = {
      id: 'msg_01',
      type: 'message',
      role: 'assistant',
      model: 'claude-sonnet-4-5-20250929',
      content: [
        { type: 'thinking', thinking: 'The user wants weather.', signature: 'sig' },
        { type: 'text', text: 'Checking ' },
        { type: 'text', text: 'now.' },
        { type: 'tool_use', id: 'toolu_9', name: 'get_weather', input: { city: 'Paris' } },
      ],
      stop_reason: 'tool_use',
      stop_sequence: null,
      usage: { input_tokens: 10, cache_creation_input_tokens: 200, cache_read_input_tokens: 3000, output_tokens: 40 },
    };
    const { client } = stubClient({ text: JSON.stringify(message) });
    const provider = anthropicProviderType.create({ config: config(), client });
    const r = await provider.chat({ model, body: body() }, { requestId: 'r' });
    const out = JSON.parse(r.body.toString());
    expect(out).toMatchObject({
      id: 'msg_01',
      object: 'chat.completion',
      model: 'claude',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'Checking now.', reasoning_content: 'The user wants weather.', tool_calls: [{ id: 'toolu_9', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
          finish_reason: 'tool_calls',
        },
      ],
      usage: { prompt_tokens: 3210, completion_tokens: 40, total_tokens: 3250, prompt_tokens_details: { cached_tokens: 3000, cache_write_tokens: 200 } },
    });
    expect(Math.abs(out.created - Date.now() / 1000)).toBeLessThan(5);
    expect(r.usage).toEqual({ promptTokens: 3210, outputTokens: 40, cachedPromptTokens: 3000, cacheWritePromptTokens: 200 });
  });

  it.each([
    ['end_turn', 'stop'],
    ['stop_sequence', 'stop'],
    ['pause_turn', 'stop'],
    ['max_tokens', 'length'],
    ['tool_use', 'tool_calls'],
    ['refusal', 'content_filter'],
  ])('stop_reason %s → finish_reason %s, and no text is content null', async (stop, finish) => {
    const { client } = stubClient({ text: JSON.stringify({ id: 'm', type: 'message', content: [], stop_reason: stop, usage: { input_tokens: 1, output_tokens: 0 } }) });
    const provider = anthropicProviderType.create({ config: config(), client });
    const out = JSON.parse((await provider.chat({ model, body: body() }, { requestId: 'r' })).body.toString());
    expect(out.choices[0]).toMatchObject({ finish_reason: finish, message: { content: null } });
  });

  it('an answer without usage reports none (the gateway counts), and one without content is invalid', async () => {
    const none = stubClient({ text: JSON.stringify({ id: 'm', type: 'message', content: [{ type: 'text', text: 'x' }], stop_reason: 'end_turn' }) });
    expect((await anthropicProviderType.create({ config: config(), client: none.client }).chat({ model, body: body() }, { requestId: 'r' })).usage).toBeUndefined();
    const bad = stubClient({ text: JSON.stringify({ id: 'm', type: 'message' }) });
    const err = await rejection(anthropicProviderType.create({ config: config(), client: bad.client }).chat({ model, body: body() }, { requestId: 'r' }));
    expect(err).toMatchObject({ status: 502, body: { error: { code: 'invalid_upstream_response' } } });
  });

  it('a refused request is never sent', async () => {
    const { client, requests } = stubClient({ text: '{}' });
    await rejection(anthropicProviderType.create({ config: config(), client }).chat({ model, body: body({ n: 3 }) }, { requestId: 'r' }));
    expect(requests).toEqual([]);
  });

  it('serves chat only: embeddings and images are refused, and config refuses such a model on it', async () => {
    const provider = anthropicProviderType.create({ config: config(), client: stubClient({ text: '{}' }).client });
    await expect(provider.embed({ model, body: {} }, { requestId: 'r' })).rejects.toMatchObject({ code: 'invalid_request' });
    let problems: string[] = [];
    try {
      loadConfig({
        env: {},
        providerTypes,
        input: {
          providers: [{ id: 'anth', type: 'anthropic', baseUrl: 'https://api.anthropic.com/v1', apiKey: 'k' }],
          models: [{ id: 'emb', kind: 'embedding', provider: 'anth', price: { input: 1 } }],
        },
      });
    } catch (err) {
      if (err instanceof ConfigError) problems = err.problems;
    }
    expect(problems).toContainEqual(expect.stringMatching(/^models\[0\]\.provider: provider 'anth' serves chat models only, not embedding/));
  });
});

describe('anthropic: error answers', () => {
  const errorOf = async (status: number, json: unknown, headers: Record<string, string> = {}) => {
    const { client } = stubClient({ status, text: JSON.stringify(json), headers });
    return rejection(anthropicProviderType.create({ config: config(), client }).chat({ model, body: body() }, { requestId: 'r' }));
  };

  it('529 overloaded_error is a 503 (retryable, and the fallbacks take it), its type kept as the code', async () => {
    const err = await errorOf(529, anthropicError('overloaded_error', 'Overloaded'), { 'retry-after': '3' });
    expect(err).toBeInstanceOf(UpstreamHttpError);
    expect(err).toMatchObject({ status: 503, headers: { 'retry-after': '3' }, body: { error: { message: 'Overloaded', type: 'api_error', code: 'overloaded_error', param: null } } });
  });

  it('429 rate_limit_error passes as 429 with its Retry-After', async () => {
    const err = await errorOf(429, anthropicError('rate_limit_error', 'Number of request tokens has exceeded your per-minute rate limit'), { 'retry-after': '12' });
    expect(err).toMatchObject({ status: 429, headers: { 'retry-after': '12' }, body: { error: { type: 'rate_limit_error', code: 'rate_limit_error' } } });
  });

  it('400 invalid_request_error passes with its message', async () => {
    const err = await errorOf(400, anthropicError('invalid_request_error', 'messages: roles must alternate'));
    expect(err).toMatchObject({ status: 400, body: { error: { message: 'messages: roles must alternate', type: 'invalid_request_error', code: 'invalid_request_error' } } });
  });

  it.each([401, 403])("%i is the gateway's own key refused (upstream_auth_failed), never the caller's", async (status) => {
    const err = await errorOf(status, anthropicError(status === 401 ? 'authentication_error' : 'permission_error', `bad key ${ANTHROPIC_KEY}`));
    expect(err).toBeInstanceOf(GatewayError);
    expect(err).toMatchObject({ code: 'upstream_auth_failed' });
  });

  it("402 billing_error is the operator's account (upstream_quota_exhausted)", async () => {
    expect(await errorOf(402, anthropicError('billing_error', 'Your credit balance is too low'))).toMatchObject({ code: 'upstream_quota_exhausted' });
  });

  it('masks the key in a message that quotes it', async () => {
    const err = (await errorOf(400, anthropicError('invalid_request_error', `header x-api-key ${ANTHROPIC_KEY} is odd`))) as UpstreamHttpError;
    expect(err.body.error.message).toBe('header x-api-key [redacted] is odd');
  });
});

describe('anthropic: stream translation from recorded transcripts', () => {
  const head = { object: 'chat.completion.chunk', model: 'claude' };

  it('a text answer with a ping: role chunk, text deltas, finish_reason, then the usage chunk', async () => {
    const { events, err } = await streamOf(anthropicFixture('text.sse'));
    expect(err).toBeUndefined();
    expect(deltas(events)).toEqual([{ role: 'assistant', content: '' }, { content: 'Bonjour' }, { content: '! Ça va très' }, { content: ' bien — merci 🙂' }, {}, null]);
    expect(finishes(events)).toEqual([null, null, null, null, 'stop', null]);
    // One id and one `created` on every chunk, the gateway's model id.
    const created = events[0]!.chunk.created;
    for (const e of events) expect(e.chunk).toMatchObject({ ...head, id: 'msg_01XFDUDYJgAACzvnptvVoYEL', created });
    const last = events.at(-1)!;
    expect(last.chunk.choices).toEqual([]);
    expect(last.chunk.usage).toEqual({ prompt_tokens: 2062, completion_tokens: 12, total_tokens: 2074, prompt_tokens_details: { cached_tokens: 2048 } });
    expect(last.usage).toEqual({ promptTokens: 2062, outputTokens: 12, cachedPromptTokens: 2048 });
    expect(events.filter((e) => e.usage)).toHaveLength(1);
  });

  it('a tool_use answer: the call opens with id and name at tool index 0, its input_json_delta pieces follow', async () => {
    const { events } = await streamOf(anthropicFixture('tool-use.sse'));
    const calls = deltas(events).flatMap((d) => ((d as JsonObject | null)?.tool_calls as JsonObject[] | undefined) ?? []);
    expect(calls[0]).toEqual({ index: 0, id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6', type: 'function', function: { name: 'get_weather', arguments: '' } });
    expect(calls.slice(1).every((c) => c.index === 0 && Object.keys(c).join() === 'index,function')).toBe(true);
    expect(calls.map((c) => (c.function as JsonObject).arguments).join('')).toBe('{"location": "San Francisco, CA", "unit": "fahrenheit"}');
    expect(deltas(events)[1]).toEqual({ content: "Okay, let's check the weather." });
    expect(finishes(events).filter(Boolean)).toEqual(['tool_calls']);
    expect(events.at(-1)!.usage).toEqual({ promptTokens: 472, outputTokens: 89 });
  });

  it('a tool called without arguments streams `{}` as its arguments (Anthropic sends only an empty partial_json), as the JSON answer does', async () => {
    const { events } = await streamOf(anthropicFixture('tool-no-args.sse'));
    const calls = deltas(events).flatMap((d) => ((d as JsonObject | null)?.tool_calls as JsonObject[] | undefined) ?? []);
    const args = (index: number) =>
      calls
        .filter((c) => c.index === index)
        .map((c) => (c.function as JsonObject).arguments)
        .join('');
    expect(calls[0]).toMatchObject({ index: 0, id: 'toolu_01Vq3NoArgs00000000000000', function: { name: 'get_time' } });
    expect(JSON.parse(args(0))).toEqual({});
    expect(JSON.parse(args(1))).toEqual({ city: 'Paris' });
    expect(finishes(events).filter(Boolean)).toEqual(['tool_calls']);
  });

  it('an error event mid-stream: the text before it, then a 502 with its message and type as the code', async () => {
    const { events, err } = await streamOf(anthropicFixture('error-mid-stream.sse'));
    expect(deltas(events)).toEqual([{ role: 'assistant', content: '' }, { content: 'Once upon' }]);
    expect(err).toBeInstanceOf(UpstreamHttpError);
    expect(err).toMatchObject({ status: 502, body: { error: { message: 'Overloaded', code: 'overloaded_error' } } });
  });

  it('a max_tokens stop: finish_reason length, usage from the message_delta counts', async () => {
    const { events } = await streamOf(anthropicFixture('max-tokens.sse'));
    expect(finishes(events).filter(Boolean)).toEqual(['length']);
    expect(events.at(-1)!.usage).toEqual({ promptTokens: 31, outputTokens: 16 });
  });

  it.each(['text.sse', 'tool-use.sse', 'tool-no-args.sse', 'error-mid-stream.sse', 'max-tokens.sse'])('%s split every 1..7 bytes gives the same chunks', async (name) => {
    const text = anthropicFixture(name);
    const whole = await streamOf(text);
    const strip = (r: { events: ChatStreamEvent[]; err: unknown }) => ({ events: r.events.map((e) => ({ ...e, chunk: { ...e.chunk, created: 0 } })), err: r.err });
    for (let size = 1; size <= 7; size++) expect(strip(await streamOf(text, () => size))).toEqual(strip(whole));
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % 7) + 1;
    expect(strip(await streamOf(text, random))).toEqual(strip(whole));
  });

  it('CRLF line ends read the same', async () => {
    const lf = await streamOf(anthropicFixture('text.sse'));
    const crlf = await streamOf(anthropicFixture('text.sse').replace(/\n/g, '\r\n'));
    expect(deltas(crlf.events)).toEqual(deltas(lf.events));
  });

  it('a stream cut off before message_delta is an error after what came; one cut after it is whole, with its usage', async () => {
    const text = anthropicFixture('text.sse');
    const cut = await streamOf(text.slice(0, text.indexOf('event: message_delta')));
    expect(cut.err).toMatchObject({ status: 502, body: { error: { code: 'invalid_upstream_response' } } });
    expect(cut.events.filter((e) => e.usage)).toEqual([]);
    const whole = await streamOf(text.slice(0, text.indexOf('event: message_stop')));
    expect(whole.err).toBeUndefined();
    expect(whole.events.at(-1)!.usage).toEqual({ promptTokens: 2062, outputTokens: 12, cachedPromptTokens: 2048 });
  });

  it('a stream that does not begin with message_start is invalid', async () => {
    const { err } = await streamOf('event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}\n\n');
    expect(err).toMatchObject({ status: 502, body: { error: { code: 'invalid_upstream_response' } } });
  });

  it('thinking deltas become reasoning_content; signature deltas and unknown events pass silently', async () => {
    const text = [
      'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_t","type":"message","role":"assistant","content":[],"usage":{"input_tokens":5,"output_tokens":1}}}\n\n',
      'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}\n\n',
      'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"27 * 453 = 12231"}}\n\n',
      'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQB"}}\n\n',
      'event: some_future_event\ndata: {"type":"some_future_event"}\n\n',
      'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n',
      'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":30}}\n\n',
      'event: message_stop\ndata: {"type":"message_stop"}\n\n',
    ].join('');
    const { events } = await streamOf(text);
    expect(deltas(events)).toEqual([{ role: 'assistant', content: '' }, { reasoning_content: '27 * 453 = 12231' }, {}, null]);
  });
});

describe('anthropic: against the fake Messages API', () => {
  let fake: FakeAnthropic;
  let client: UpstreamClient;
  beforeAll(async () => {
    fake = await startFakeAnthropic();
    client = createUpstreamClient({ connectTimeoutMs: 1000, firstByteTimeoutMs: 1000, totalTimeoutMs: 5000, idleTimeoutMs: 1000, connectionsPerOrigin: 4 });
  });
  afterAll(async () => {
    await client.close();
    await fake.close();
  });

  it('answers a chat and a stream over HTTP, and a wrong key is upstream_auth_failed', async () => {
    const provider = anthropicProviderType.create({ config: config({ baseUrl: fake.url }), client });
    const r = await provider.chat({ model, body: body() }, { requestId: 'r' });
    expect(JSON.parse(r.body.toString()).choices[0].message.content).toBe(FAKE_CLAUDE_TEXT);
    const stream = await provider.chatStream({ model, body: body({ stream: true }) }, { requestId: 'r' });
    const events: ChatStreamEvent[] = [];
    for await (const e of stream.events) events.push(e);
    stream.close();
    expect(events.at(-1)!.usage).toMatchObject({ promptTokens: 2062, outputTokens: 12 });
    const wrong = anthropicProviderType.create({ config: config({ baseUrl: fake.url, apiKey: 'sk-ant-wrong-key-0000' }), client });
    await expect(wrong.chat({ model, body: body() }, { requestId: 'r' })).rejects.toMatchObject({ code: 'upstream_auth_failed' });
  });
});
