// `type: anthropic` end to end: the real gateway in front of a fake Anthropic Messages API, called
// with the official openai client as any OpenAI SDK user calls it — answers, streams and tool calls
// translated, metered by Anthropic's usage (prompt-cache reads at cachedInput), the plan's output
// cap reaching Anthropic's max_tokens, and an overloaded Anthropic charging nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anthropicError, anthropicFixture, ANTHROPIC_KEY, FAKE_CLAUDE_TEXT, FAKE_CLAUDE_USAGE, startFakeAnthropic, type FakeAnthropic } from '../helpers/fake-anthropic.js';
import { startTestGateway, testModels, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;
let anthropic: FakeAnthropic;

beforeAll(async () => {
  anthropic = await startFakeAnthropic();
  t = await startTestGateway({
    config: (fakes) => ({
      providers: [
        { id: 'openai', type: 'openai', baseUrl: fakes.openai, apiKey: 'sk-upstream-secret' },
        { id: 'fal', type: 'fal', baseUrl: fakes.fal, apiKey: 'fal-upstream-secret' },
        { id: 'nokey', type: 'openai', baseUrl: fakes.openai },
        { id: 'anthropic', type: 'anthropic', baseUrl: anthropic.url, apiKey: ANTHROPIC_KEY },
      ],
      models: [
        ...testModels(),
        { id: 'claude-sonnet-4-5', kind: 'chat', provider: 'anthropic', upstream: 'claude-sonnet-4-5-20250929', vision: true, price: { input: 3, output: 15, cachedInput: 0.3, cacheWriteInput: 3.75 } },
      ],
    }),
  });
});
afterAll(async () => {
  await t?.close();
  await anthropic?.close();
});

const model = 'claude-sonnet-4-5';
const messages = [{ role: 'user' as const, content: 'Say hello' }];
const lastSent = () => anthropic.requests.at(-1)!.body as Record<string, any>;

/**
 * The credits of a usage at claude-sonnet-4-5's price (USD 3 / 15 per 1M, cache reads 0.3) and
 * 2,000,000 credits per USD: 6, 30 and 0.6 credits a token, rounded up once.
 */
/** Anthropic's usage at the model's prices: plain prompt 3, written to the cache 3.75, read from it 0.30, output 15 USD per 1M. */
const credits = (prompt: number, cached: number, output: number, written = 0) =>
  Math.ceil(((prompt - cached - written) * 6_000_000 + written * 7_500_000 + cached * 600_000 + output * 30_000_000) / 1e6);

async function ledger(accountId: string) {
  for (let i = 0; i < 100; i++) {
    const rows = (await t.admin('GET', `/usage?account=${accountId}`)).body.data as Array<Record<string, any>>;
    if (rows.length > 0) return rows;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('ledger row never appeared');
}

describe('anthropic provider through /v1/chat/completions', () => {
  it('answers a chat in the OpenAI shape, charged at Anthropic’s usage: cache reads at cachedInput, writes at cacheWriteInput', async () => {
    const { accountId, secret } = await t.newAccount({ plan: 'open' });
    const { data, response } = await t.client(secret).chat.completions.create({ model, messages, max_tokens: 300 }).withResponse();
    expect(data.choices[0]!.message.content).toBe(FAKE_CLAUDE_TEXT);
    expect(data.choices[0]!.finish_reason).toBe('stop');
    expect(data.model).toBe(model);
    const prompt = FAKE_CLAUDE_USAGE.input_tokens + FAKE_CLAUDE_USAGE.cache_creation_input_tokens + FAKE_CLAUDE_USAGE.cache_read_input_tokens;
    expect(data.usage).toMatchObject({ prompt_tokens: prompt, completion_tokens: 9, total_tokens: prompt + 9, prompt_tokens_details: { cached_tokens: 2000 } });
    const expected = credits(prompt, 2000, 9, FAKE_CLAUDE_USAGE.cache_creation_input_tokens);
    expect((data as any).meta.usage.credits_used).toBe(expected);
    expect(response.headers.get('x-tollgate-credits-used')).toBe(String(expected));
    const [row] = await ledger(accountId);
    expect(row).toMatchObject({ status: 'ok', credits: expected, promptTokens: prompt, outputTokens: 9, provider: 'anthropic' });
    const sent = lastSent();
    expect(sent).toEqual({ model: 'claude-sonnet-4-5-20250929', max_tokens: 300, messages: [{ role: 'user', content: [{ type: 'text', text: 'Say hello' }] }] });
    expect(anthropic.requests.at(-1)!.headers).toMatchObject({ 'x-api-key': ANTHROPIC_KEY, 'anthropic-version': '2023-06-01' });
  });

  it('streams with include_usage: OpenAI chunks, then the usage chunk with the credits charged', async () => {
    const { accountId, secret } = await t.newAccount({ plan: 'open' });
    const stream = await t.client(secret).chat.completions.create({ model, messages, stream: true, stream_options: { include_usage: true } });
    const chunks: any[] = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('')).toBe('Bonjour! Ça va très bien — merci 🙂');
    expect(new Set(chunks.map((c) => c.id))).toEqual(new Set(['msg_01XFDUDYJgAACzvnptvVoYEL']));
    const last = chunks.at(-1);
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ prompt_tokens: 2062, completion_tokens: 12, prompt_tokens_details: { cached_tokens: 2048 } });
    const expected = credits(2062, 2048, 12);
    expect(last.meta.usage.credits_used).toBe(expected);
    expect((await ledger(accountId))[0]).toMatchObject({ status: 'ok', credits: expected });
    // Anthropic always sends its usage; nothing OpenAI-only is sent to it.
    expect(lastSent().stream).toBe(true);
    expect(lastSent().stream_options).toBeUndefined();
  });

  it('streams without include_usage: no usage chunk for the client, still charged by Anthropic’s usage', async () => {
    const { accountId, secret } = await t.newAccount({ plan: 'open' });
    const stream = await t.client(secret).chat.completions.create({ model, messages, stream: true });
    const chunks: any[] = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks.some((c) => c.usage)).toBe(false);
    expect((await ledger(accountId))[0]).toMatchObject({ status: 'ok', credits: credits(2062, 2048, 12) });
  });

  it('a tool call round trip: tool_use streamed as OpenAI tool calls, the result sent back as tool_result', async () => {
    const { secret } = await t.newAccount({ plan: 'open' });
    const tools = [{ type: 'function' as const, function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] } } }];
    anthropic.enqueue({ kind: 'transcript', text: anthropicFixture('tool-use.sse') });
    const runner = t.client(secret).chat.completions.stream({ model, messages: [{ role: 'user', content: 'Weather in SF?' }], tools, tool_choice: 'required' });
    const first = await runner.finalChatCompletion();
    const call = first.choices[0]!.message.tool_calls![0]! as { id: string; type: 'function'; function: { name: string; arguments: string } };
    expect(first.choices[0]!.finish_reason).toBe('tool_calls');
    expect(call).toMatchObject({ id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6', type: 'function', function: { name: 'get_weather' } });
    expect(JSON.parse(call.function.arguments)).toEqual({ location: 'San Francisco, CA', unit: 'fahrenheit' });
    expect(lastSent()).toMatchObject({ tools: [{ name: 'get_weather', input_schema: tools[0]!.function.parameters }], tool_choice: { type: 'any' } });

    const answer = await t.client(secret).chat.completions.create({
      model,
      messages: [{ role: 'user', content: 'Weather in SF?' }, first.choices[0]!.message as any, { role: 'tool', tool_call_id: call.id, content: '64F, fog' }],
      tools,
    });
    expect(answer.choices[0]!.message.content).toBe(FAKE_CLAUDE_TEXT);
    expect(lastSent().messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'Weather in SF?' }] },
      { role: 'assistant', content: [{ type: 'text', text: "Okay, let's check the weather." }, { type: 'tool_use', id: call.id, name: 'get_weather', input: { location: 'San Francisco, CA', unit: 'fahrenheit' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: '64F, fog' }] },
    ]);
  });

  it('an overloaded Anthropic (529): the client gets the normalised 503, nothing is charged', async () => {
    const { accountId, secret } = await t.newAccount({ plan: 'open' });
    anthropic.enqueue({ kind: 'json', status: 529, body: anthropicError('overloaded_error', 'Overloaded') });
    const err: any = await t
      .client(secret)
      .chat.completions.create({ model, messages })
      .catch((e: unknown) => e);
    expect(err.status).toBe(503);
    expect(err.error).toMatchObject({ message: 'Overloaded', type: 'api_error', code: 'overloaded_error' });
    anthropic.enqueue({ kind: 'json', status: 529, body: anthropicError('overloaded_error', 'Overloaded') });
    const streamErr: any = await t
      .client(secret)
      .chat.completions.create({ model, messages, stream: true })
      .catch((e: unknown) => e);
    expect(streamErr.status).toBe(503);
    const rows = await ledger(accountId);
    expect(rows.map((r) => [r.status, r.credits])).toEqual([
      ['error', 0],
      ['error', 0],
    ]);
    const usage = (await (await fetch(`${t.url}/v1/usage`, { headers: { authorization: `Bearer ${secret}` } })).json()) as any;
    expect(JSON.stringify(usage)).not.toMatch(/"credits":[1-9]/);
  });

  it('an overloaded_error mid-stream before any text: the client sees the error, nothing is charged', async () => {
    const { accountId, secret } = await t.newAccount({ plan: 'open' });
    const text = anthropicFixture('error-mid-stream.sse');
    anthropic.enqueue({ kind: 'transcript', text: text.slice(0, text.indexOf('event: content_block_delta')) + text.slice(text.indexOf('event: error')) });
    const stream = await t.client(secret).chat.completions.create({ model, messages, stream: true });
    await expect(
      (async () => {
        for await (const _ of stream);
      })(),
    ).rejects.toThrow(/Overloaded/);
    expect((await ledger(accountId)).map((r) => [r.status, r.credits])).toEqual([['error', 0]]);
  });

  it("the free plan's output cap reaches Anthropic as max_tokens", async () => {
    const { secret } = await t.newAccount();
    const { response } = await t.client(secret).chat.completions.create({ model, messages }).withResponse();
    expect(response.headers.get('x-tollgate-clamped')).toBe('max_tokens=512');
    expect(lastSent().max_tokens).toBe(512);
    await t.client(secret).chat.completions.create({ model, messages, max_completion_tokens: 4000 });
    expect(lastSent().max_tokens).toBe(512);
  });

  it('a field whose meaning Anthropic cannot keep is refused with its param, never sent, and nothing is charged', async () => {
    const { accountId, secret } = await t.newAccount({ plan: 'open' });
    const before = anthropic.requests.length;
    const err: any = await t
      .client(secret)
      .chat.completions.create({ model, messages, response_format: { type: 'json_object' } })
      .catch((e: unknown) => e);
    expect(err.status).toBe(400);
    expect(err.error).toMatchObject({ code: 'invalid_request', param: 'response_format' });
    expect(anthropic.requests.length).toBe(before);
    expect((await ledger(accountId)).map((r) => [r.status, r.credits])).toEqual([['error', 0]]);
  });
});
