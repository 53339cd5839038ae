// OpenAI-compatible servers where they depart from OpenAI's wire format (SPEC §10: Mistral, Groq,
// DeepSeek, vLLM, Gemini's and Anthropic's compatible endpoints, …), end to end through the
// official openai client: relayed so it can read them, and charged what the provider bills.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway();
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
