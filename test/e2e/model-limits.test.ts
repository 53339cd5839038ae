// A model's own limits, checked before the upstream call: a chat prompt longer than its context
// window (catalog `contextTokens`) is refused with OpenAI's own code and counted no further than the
// window; an embeddings request with more inputs than it takes (`maxInputs`) is refused uncounted,
// and one with an input longer than the model's window (`contextTokens`) counted no further than it.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { countChatPrompt } from '../../src/core/tokens.js';
import { startTestGateway, testModels, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;

beforeAll(async () => {
  const models = testModels().map((m) => (m.id === 'gpt-4o-mini' ? { ...m, contextTokens: 20_000 } : m));
  t = await startTestGateway({ config: { models } });
});
afterAll(async () => t?.close());

/** A chat request of one user message with `content`, and `extra` fields. */
const ask = (secret: string, content: unknown, extra: Record<string, unknown> = {}) =>
  fetch(`${t.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content }], ...extra }),
  });

/** Runs `run` against a gateway of its own whose model `id` has `patch` over the test catalog's. */
async function withModel(id: string, patch: Record<string, unknown>, run: (g: TestGateway) => Promise<void>): Promise<void> {
  const g = await startTestGateway({ config: { models: testModels().map((m) => (m.id === id ? { ...m, ...patch } : m)) } });
  try {
    await run(g);
  } finally {
    await g.close();
  }
}

/** Embeddings of text-embedding-3-small through gateway `g` with key `secret`. */
const embedder = (g: TestGateway, secret: string) => (input: unknown) =>
  fetch(`${g.url}/v1/embeddings`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'text-embedding-3-small', input }),
  });

/** A paid account on gateway `g` with credits enough for anything here. */
async function paid(g: TestGateway = t) {
  const { accountId, secret } = await g.newAccount({ plan: 'paid' });
  await g.admin('POST', `/accounts/${accountId}/credits`, { amount: 1_000_000 });
  return { accountId, secret };
}

it('refuses a prompt past the context window with context_length_exceeded, before any upstream call or charge', async () => {
  const { accountId, secret } = await paid();
  const calls = t.upstreamCalls();
  // ' hello' is one token: 20,001 of them plus the message framing.
  const res = await ask(secret, ' hello'.repeat(20_001));
  expect(res.status).toBe(400);
  const json = await res.json();
  expect(json.error).toMatchObject({ code: 'context_length_exceeded', type: 'invalid_request_error', param: 'messages' });
  expect(json.message).toContain('20000 tokens');
  expect(json.statusCode).toBe('400');
  // A valid key's error carries its limit headers (SPEC §6); nothing was reserved or charged.
  expect(t.upstreamCalls()).toBe(calls);
  expect((await t.admin('GET', `/accounts/${accountId}`)).body.balance).toBe(1_000_000);

  // Just inside the window (19,990 tokens with the framing): served.
  const ok = await ask(secret, ' hello'.repeat(19_990));
  expect(ok.status).toBe(200);
  expect(t.upstreamCalls()).toBe(calls + 1);
});

it('a prompt with an image is left to the upstream: its worst case is a price, not a share of the window', async () => {
  // gpt-4o-mini counts an image part at 48,169 tokens to price it; three would pass a 128,000
  // window that OpenAI may well accept them in.
  const { secret } = await paid();
  const res = await ask(secret, [{ type: 'text', text: ' hello'.repeat(19_000) }, { type: 'image_url', image_url: { url: 'https://example.com/a.png' } }]);
  expect(res.status).toBe(200);
});

it('tool definitions do not decide a refusal: they are counted as their JSON, more than OpenAI counts them', async () => {
  const { secret } = await paid();
  // 19,000 tokens of messages, inside the 20,000 window, and ~2,000 more of a tool's schema.
  const description = ' detail'.repeat(2_000);
  const tools = [{ type: 'function', function: { name: 'lookup', description, parameters: { type: 'object', properties: {} } } }];
  expect((await ask(secret, ' hello'.repeat(19_000), { tools })).status).toBe(200);
});

it('on the free tier, a prompt past the window is refused the same way', async () => {
  const { secret } = await t.newAccount();
  const res = await ask(secret, ' hello'.repeat(30_000));
  expect(res.status).toBe(400);
  expect((await res.json()).error.code).toBe('context_length_exceeded');
  expect(res.headers.get('x-ratelimit-limit-tokens')).toBe('50000');
});

it('an embeddings request past the model maxInputs is refused before anything is counted or sent', async () => {
  await withModel('text-embedding-3-small', { maxInputs: 3 }, async (g) => {
    const { secret } = await g.newAccount();
    const embed = embedder(g, secret);
    const calls = g.upstreamCalls();
    const refused = await embed(['a', 'b', 'c', 'd']);
    expect(refused.status).toBe(400);
    expect((await refused.json()).error).toMatchObject({ code: 'invalid_request', param: 'input', message: expect.stringContaining('at most 3 inputs') });
    expect(g.upstreamCalls()).toBe(calls);
    // Three inputs, and one token array of ten tokens (one input): served.
    expect((await embed(['a', 'b', 'c'])).status).toBe(200);
    expect((await embed([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])).status).toBe(200);
    expect((await embed([[1, 2], [3], [4], [5]])).status).toBe(400);
  });
});

it('an embeddings input past the model window (contextTokens) is refused, naming it, and counted no further than the window', async () => {
  await withModel('text-embedding-3-small', { contextTokens: 1_000 }, async (g) => {
    const { accountId, secret } = await paid(g);
    const embed = embedder(g, secret);
    const calls = g.upstreamCalls();
    // ' hello' is one cl100k token: the second input has 1,001.
    const refused = await embed(['short', ' hello'.repeat(1_001), 'short']);
    expect(refused.status).toBe(400);
    expect((await refused.json()).error).toMatchObject({ code: 'invalid_request', param: 'input', message: expect.stringContaining('input[1]: text-embedding-3-small embeds at most 1000 tokens per input') });
    const single = await embed(' hello'.repeat(5_000));
    expect((await single.json()).error).toMatchObject({ code: 'invalid_request', param: 'input', message: expect.stringContaining('Invalid request: input: text-embedding-3-small') });
    const tokens = await embed(Array.from({ length: 1_001 }, () => 7));
    expect(tokens.status).toBe(400);
    expect(g.upstreamCalls()).toBe(calls);
    expect((await g.admin('GET', `/accounts/${accountId}`)).body.balance).toBe(1_000_000);
    // Inputs each within the window, however many tokens together: served.
    expect((await embed([' hello'.repeat(1_000), ' hello'.repeat(1_000), ' hello'.repeat(999)])).status).toBe(200);
  });
});

it('a model with mediaUrls: inline refuses an image by URL before the upstream call, and takes it inline', async () => {
  await withModel('gpt-4o-mini', { vision: true, mediaUrls: 'inline' }, async (g) => {
    const { accountId, secret } = await paid(g);
    const look = (url: string) =>
      fetch(`${g.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: [{ type: 'text', text: 'what is it?' }, { type: 'image_url', image_url: { url } }] }] }),
      });
    const calls = g.upstreamCalls();
    const refused = await look('http://169.254.169.254/latest/meta-data/iam/security-credentials/');
    expect(refused.status).toBe(400);
    expect((await refused.json()).error).toMatchObject({ code: 'invalid_request', param: 'messages[0].content[1]', message: expect.stringContaining('inline only') });
    expect(g.upstreamCalls()).toBe(calls);
    expect((await g.admin('GET', `/accounts/${accountId}`)).body.balance).toBe(1_000_000);
    expect((await look('data:image/png;base64,iVBORw0KGgo=')).status).toBe(200);
    expect(g.upstreamCalls()).toBe(calls + 1);
  });
});

it("promptTokenFactor and promptOverheadTokens make the count the model's own tokens: in the reservation, and in the charge when the upstream reports no usage", async () => {
  await withModel('gpt-4o-mini', { promptTokenFactor: 2, promptOverheadTokens: 100 }, async (g) => {
    const body = { model: 'gpt-4o-mini', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] };
    const scaled = countChatPrompt(body) * 2 + 100;
    const call = (secret: string) =>
      fetch(`${g.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    // gpt-4o-mini: 0.3 credits a prompt token, 1.2 an output token. Counted as is, the worst case
    // (prompt + 10 output tokens) is under 20 credits; in the model's tokens it is over 40.
    const raw = Math.ceil(countChatPrompt(body) * 0.3 + 12);
    const worst = Math.ceil(scaled * 0.3 + 12);
    expect(raw).toBeLessThan(20);
    expect(worst).toBeGreaterThan(40);
    const poor = await g.newAccount({ plan: 'paid' });
    await g.admin('POST', `/accounts/${poor.accountId}/credits`, { amount: 30 });
    const calls = g.upstreamCalls();
    const refused = await call(poor.secret);
    expect(refused.status).toBe(403);
    expect((await refused.json()).error.code).toBe('insufficient_balance');
    expect(g.upstreamCalls()).toBe(calls);

    const { accountId, secret } = await g.newAccount({ plan: 'paid' });
    await g.admin('POST', `/accounts/${accountId}/credits`, { amount: 1_000 });
    g.openai.enqueue({ kind: 'json', body: { id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, message: { role: 'assistant', content: 'Hello' }, finish_reason: 'stop' }] } });
    const res = await call(secret);
    expect(res.status).toBe(200);
    const [row] = (await g.admin('GET', `/usage?account=${accountId}`)).body.data;
    expect(row).toMatchObject({ promptTokens: scaled });
  });
});

it("an embedding model's promptOverheadTokens is added per input: a server adds its special tokens to each", async () => {
  await withModel('text-embedding-3-small', { promptOverheadTokens: 2 }, async (g) => {
    const { accountId, secret } = await paid(g);
    // The fake answers with no usage: the charge is the reservation's count, one ' hello' (1 token) + 2 per input.
    g.openai.enqueue({ kind: 'json', body: { object: 'list', data: [0, 1, 2].map((index) => ({ object: 'embedding', index, embedding: [0.5] })), model: 'text-embedding-3-small' } });
    expect((await embedder(g, secret)([' hello', ' hello', ' hello'])).status).toBe(200);
    const [row] = (await g.admin('GET', `/usage?account=${accountId}`)).body.data;
    expect(row).toMatchObject({ promptTokens: 3 * (1 + 2) });
  });
});
