// OpenAI-compatible servers where they depart from OpenAI's wire format (SPEC §10: Mistral, Groq,
// DeepSeek, vLLM, Gemini's and Anthropic's compatible endpoints, …), end to end through the
// official openai client: relayed so it can read them, and charged what the provider bills.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countChatPrompt, countText } from '../../src/core/tokens.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;
beforeAll(async () => {
  // A short drain window: the tests of a client that left wait it out.
  t = await startTestGateway({ config: { metering: { drainUsageMs: 200 } } });
});
afterAll(async () => t?.close());

const messages = [{ role: 'user' as const, content: 'Count to three' }];

async function ledgerRows(accountId: string) {
  for (let i = 0; i < 100; i++) {
    const rows = (await t.admin('GET', `/usage?account=${accountId}`)).body.data;
    if (rows.length > 0) return rows;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('ledger row never appeared');
}

const chunk = (delta: Record<string, unknown>, finish: string | null = null, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ id: 'cmpl-1', object: 'chat.completion.chunk', created: 1, model: 'up', choices: [{ index: 0, delta, finish_reason: finish }], ...extra });

describe('DeepSeek: reasoning_content before the answer', () => {
  // https://api-docs.deepseek.com/guides/thinking_mode_api_example_streaming: the chain of thought
  // streams as delta.reasoning_content (content null), billed as output.
  const reasoning = 'First I list the numbers one by one, then I check each of them twice. '.repeat(20);

  it('a client that leaves mid-reasoning is charged the reasoning written, not the prompt alone', async () => {
    const { accountId, secret } = await t.newAccount({ plan: 'open' });
    t.openai.enqueue({
      kind: 'sse',
      events: [chunk({ role: 'assistant', content: null, reasoning_content: '' }), chunk({ content: null, reasoning_content: reasoning }), chunk({ content: null, reasoning_content: 'Done.' }), chunk({ content: '1, 2, 3.' }), '[DONE]'],
      // The upstream goes on thinking past the drain window: its usage never comes.
      holdBeforeIndex: 3,
      release: new Promise(() => {}),
    });
    const abort = new AbortController();
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages, stream: true }),
      signal: abort.signal,
    });
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('Done.')) text += new TextDecoder().decode((await reader.read()).value);
    abort.abort();
    const [row] = await ledgerRows(accountId);
    const outputTokens = countText(`${reasoning}Done.`);
    expect(row).toMatchObject({ status: 'aborted', promptTokens: countChatPrompt({ messages }), outputTokens });
    // gpt-4o-mini: $0.15 / $0.60 per 1M tokens, 2,000,000 credits per $.
    expect(row.credits).toBe(Math.ceil((row.promptTokens * 300_000 + outputTokens * 1_200_000) / 1e6));
  });

  it('an upstream error mid-reasoning charges the reasoning written: it was output, and billed', async () => {
    const { accountId, secret } = await t.newAccount({ plan: 'open' });
    t.openai.enqueue({
      kind: 'sse',
      events: [chunk({ role: 'assistant', content: null, reasoning_content: reasoning }), JSON.stringify({ error: { message: 'Service is too busy.', type: 'server_error', param: null, code: null } })],
    });
    const stream = await t.client(secret).chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
    await expect((async () => {
      for await (const _ of stream);
    })()).rejects.toThrow(/too busy/);
    const [row] = await ledgerRows(accountId);
    expect(row).toMatchObject({ status: 'error', outputTokens: countText(reasoning) });
    expect(row.credits).toBeGreaterThan(0);
  });
});

describe("Gemini's OpenAI-compatible endpoint: usage on every chunk, thinking only in total_tokens", () => {
  // https://discuss.ai.google.dev/t/endpoint-https-generativelanguage-googleapis-com-v1beta-openai-chat-completions-is-not-compliant-with-api-specs/127400:
  // each chunk carries the usage so far; completion_tokens counts the visible text, total_tokens
  // the thinking too (103 - 9 - 1 = 93 thought tokens before the first word), billed as output.
  const geminiStream = [
    chunk({ role: 'assistant', content: '1' }, null, { usage: { completion_tokens: 1, prompt_tokens: 9, total_tokens: 103 } }),
    chunk({ content: ', 2' }, null, { usage: { completion_tokens: 3, prompt_tokens: 9, total_tokens: 105 } }),
    chunk({ content: ', 3' }, 'stop', { usage: { completion_tokens: 5, prompt_tokens: 9, total_tokens: 107 } }),
    '[DONE]',
  ];

  it('a stream is charged the thinking with the text, as the last chunk counts them', async () => {
    const { accountId, secret } = await t.newAccount({ plan: 'open' });
    t.openai.enqueue({ kind: 'sse', events: geminiStream });
    const stream = await t.client(secret).chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: true } });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe('1, 2, 3');
    const [row] = await ledgerRows(accountId);
    expect(row).toMatchObject({ status: 'ok', promptTokens: 9, outputTokens: 98 });
    // gpt-4o-mini: $0.15 / $0.60 per 1M tokens, 2,000,000 credits per $.
    expect(row.credits).toBe(Math.ceil((9 * 300_000 + 98 * 1_200_000) / 1e6));
    expect((chunks.at(-1) as unknown as { meta: { usage: { credits_used: number } } }).meta.usage.credits_used).toBe(row.credits);
  });

  it('an answer that does not stream is charged the same way', async () => {
    const { accountId, secret } = await t.newAccount({ plan: 'open' });
    t.openai.enqueue({
      kind: 'json',
      body: {
        id: 'g', object: 'chat.completion', created: 1, model: 'gemini-2.5-flash',
        choices: [{ index: 0, message: { role: 'assistant', content: '1, 2, 3' }, finish_reason: 'stop' }],
        usage: { completion_tokens: 5, prompt_tokens: 9, total_tokens: 107 },
      },
    });
    const answer = await t.client(secret).chat.completions.create({ model: 'gpt-4o-mini', messages });
    const [row] = await ledgerRows(accountId);
    expect(row).toMatchObject({ status: 'ok', promptTokens: 9, outputTokens: 98 });
    expect((answer as unknown as { meta: { usage: { credits_used: number } } }).meta.usage.credits_used).toBe(row.credits);
  });
});

describe("Gemini's OpenAI-compatible endpoint: streamed tool calls without an index", () => {
  // https://github.com/THU-MAIC/OpenMAIC/issues/1556 (a measured chunk): each call whole in one
  // delta, with no `index`, and Gemini 3's thought signature beside it.
  const call = (id: string, name: string, args: object) =>
    JSON.stringify({
      choices: [{ delta: { role: 'assistant', tool_calls: [{ extra_content: { google: { thought_signature: `sig-${id}` } }, function: { arguments: JSON.stringify(args), name }, id, type: 'function' }] }, index: 0 }],
      created: 1, id: 'g1', model: 'gemini-2.5-flash', object: 'chat.completion.chunk',
    });

  it("the SDK's stream helper gets every call, in order, with its signature", async () => {
    const { secret } = await t.newAccount({ plan: 'open' });
    t.openai.enqueue({
      kind: 'sse',
      events: [
        call('call_1', 'get_weather', { city: 'Paris' }),
        call('call_2', 'get_time', { tz: 'CET' }),
        JSON.stringify({ choices: [{ delta: { role: 'assistant' }, finish_reason: 'tool_calls', index: 0 }], created: 1, id: 'g1', model: 'gemini-2.5-flash', object: 'chat.completion.chunk' }),
        '[DONE]',
      ],
    });
    const tool = (name: string) => ({ type: 'function' as const, function: { name, parameters: { type: 'object', properties: {} } } });
    const stream = t.client(secret).chat.completions.stream({ model: 'gpt-4o-mini', messages, tools: [tool('get_weather'), tool('get_time')] });
    const final = await stream.finalChatCompletion();
    expect(final.choices[0]!.message.tool_calls).toMatchObject([
      { id: 'call_1', function: { name: 'get_weather', arguments: '{"city":"Paris"}' }, extra_content: { google: { thought_signature: 'sig-call_1' } } },
      { id: 'call_2', function: { name: 'get_time', arguments: '{"tz":"CET"}' }, extra_content: { google: { thought_signature: 'sig-call_2' } } },
    ]);
  });
});

describe('vLLM behind RunPod: an error answered with HTTP 200', () => {
  // https://github.com/runpod-workers/worker-vllm/issues/57
  const vllmError = { code: 404, message: 'The model `gpt-4o-mini` does not exist.', object: 'error', param: null, type: 'NotFoundError' };

  it('the client gets the error with its status, and nothing is charged', async () => {
    const { accountId, secret } = await t.newAccount({ plan: 'open' });
    t.openai.enqueue({ kind: 'json', body: vllmError });
    await expect(t.client(secret).chat.completions.create({ model: 'gpt-4o-mini', messages })).rejects.toMatchObject({ status: 404, message: expect.stringMatching(/does not exist/) });
    t.openai.enqueue({ kind: 'json', body: vllmError });
    await expect(t.client(secret).chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true })).rejects.toMatchObject({ status: 404 });
    await ledgerRows(accountId);
    const rows = (await t.admin('GET', `/usage?account=${accountId}`)).body.data;
    expect(rows.map((r: { status: string; credits: number; httpStatus: number }) => [r.status, r.httpStatus, r.credits])).toEqual([['error', 404, 0], ['error', 404, 0]]);
  });
});

describe('llama.cpp server: a failure mid-stream as an `error:` field, then [DONE]', () => {
  // Builds before ggml-org/llama.cpp#16109 (2025-09) write `error: {...}` instead of a data line
  // (https://github.com/ggml-org/llama.cpp/pull/16109, transcript from
  // https://github.com/coddy-project/coddy-agent/pull/106): a prompt past the context size.
  const transcript = readFileSync(new URL('../fixtures/openai/llamacpp-context-exceeded.sse', import.meta.url), 'utf8');

  it("the client gets the server's error, not an empty answer, and nothing is charged", async () => {
    const { accountId, secret } = await t.newAccount({ plan: 'open' });
    t.openai.enqueue({ kind: 'transcript', text: transcript });
    const stream = await t.client(secret).chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: true } });
    await expect((async () => {
      for await (const _ of stream);
    })()).rejects.toThrow(/exceeds the available context size/);
    const [row] = await ledgerRows(accountId);
    expect(row).toMatchObject({ status: 'error', httpStatus: 502, promptTokens: 0, outputTokens: 0, credits: 0 });
  });
});

describe("Groq: a stream's usage in x_groq.usage on its finish chunk", () => {
  // https://github.com/vercel/ai/issues/1651 (the chunk); Groq sends a usage chunk after it only
  // when it honours stream_options.
  const transcript = readFileSync(new URL('../fixtures/openai/groq-x-groq-usage.sse', import.meta.url), 'utf8');

  it("is charged Groq's count, not the gateway's, and a client that asked for usage gets it in a usage chunk", async () => {
    const { accountId, secret } = await t.newAccount({ plan: 'open' });
    t.openai.enqueue({ kind: 'transcript', text: transcript });
    const stream = await t.client(secret).chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: true } });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe('1, 2, 3.');
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ prompt_tokens: 23, completion_tokens: 19, total_tokens: 42 });
    const [row] = await ledgerRows(accountId);
    expect(row).toMatchObject({ status: 'ok', promptTokens: 23, outputTokens: 19 });
    // gpt-4o-mini: $0.15 / $0.60 per 1M tokens, 2,000,000 credits per $.
    expect(row.credits).toBe(Math.ceil((23 * 300_000 + 19 * 1_200_000) / 1e6));
    expect((last as unknown as { meta: { usage: { credits_used: number } } }).meta.usage.credits_used).toBe(row.credits);
  });
});

// Last: the refusal is remembered by the provider, which every test here shares.
describe('Mistral: stream_options refused, usage in the last chunk unasked', () => {
  // https://github.com/avante-corp/avante.nvim/issues/2347 (the 422),
  // https://github.com/Portkey-AI/gateway/issues/1259 (usage on the finish_reason chunk).
  const refusal = {
    object: 'error',
    message: { detail: [{ type: 'extra_forbidden', loc: ['body', 'stream_options', 'include_usage'], msg: 'Extra inputs are not permitted', input: true }] },
    type: 'invalid_request_error',
    param: null,
    code: null,
  };
  const mistralStream = [
    chunk({ role: 'assistant', content: '' }),
    chunk({ content: '1, 2, 3.' }),
    chunk({ content: '' }, 'stop', { usage: { prompt_tokens: 9, total_tokens: 17, completion_tokens: 8 } }),
    '[DONE]',
  ];

  it('a stream answers 200 and is charged the usage Mistral sent', async () => {
    const { accountId, secret } = await t.newAccount({ plan: 'open' });
    t.openai.enqueue({ kind: 'json', status: 422, body: refusal });
    t.openai.enqueue({ kind: 'sse', events: mistralStream });
    const stream = await t.client(secret).chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: true } });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe('1, 2, 3.');
    expect(chunks.at(-1)!.usage).toMatchObject({ prompt_tokens: 9, completion_tokens: 8 });
    const [row] = await ledgerRows(accountId);
    expect(row).toMatchObject({ status: 'ok', promptTokens: 9, outputTokens: 8 });
    // The provider's later streams are not refused first.
    t.openai.enqueue({ kind: 'sse', events: mistralStream });
    const again = await t.client(secret).chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
    for await (const _ of again);
    expect(t.openai.requests.at(-1)!.body).not.toHaveProperty('stream_options');
  });
});
