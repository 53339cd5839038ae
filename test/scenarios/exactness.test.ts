// Scenario tier: many requests at once at one account, and exact totals afterwards (SPEC §7
// "Exactness"). Each scenario runs against its own gateway so the fake upstream's counters
// (requests, maxInFlight) belong to that scenario alone.
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChatModelConfig } from '../../src/config/schema.js';
import { Pricing } from '../../src/core/pricing.js';
import { countTokens as countCl100k } from 'gpt-tokenizer/encoding/cl100k_base';
import { countChatPrompt } from '../../src/core/tokens.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { jsonLines } from '../helpers/log-lines.js';
import { playgroundChat } from '../helpers/playground.js';

// gpt-4o-mini as test/helpers/gateway.ts configures it, priced the way the gateway prices it.
const MINI = { price: { input: 0.15, output: 0.6 } } as ChatModelConfig;
const pricing = new Pricing(2_000_000);
const credits = (prompt: number, output: number) => pricing.chatCredits(MINI, { promptTokens: prompt, outputTokens: output });

// max_tokens 512: the free plan clamps to it anyway, and on the paid plan it keeps the worst case
// the same size (the paid plan clamps nothing, the model's ceiling would be 16,384).
const BODY = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 512 };
const PROMPT = countChatPrompt(BODY);
const WORST = credits(PROMPT, 512);
/** What the fake reports: the estimated prompt and 400 of the 512 output tokens, so settlement refunds. */
const OUTPUT = 400;
const ACTUAL = credits(PROMPT, OUTPUT);

function fakeCompletion(promptTokens: number, completionTokens: number) {
  return {
    id: 'chatcmpl-exact',
    object: 'chat.completion',
    created: 1,
    model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', content: 'ok', refusal: null }, logprobs: null, finish_reason: 'stop' }],
    usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
  };
}

interface Outcome {
  status: number;
  credits: number | null;
  remaining: number | null;
  code: string | null;
}

async function chat(t: TestGateway, secret: string): Promise<Outcome> {
  const res = await fetch(`${t.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify(BODY),
  });
  const json = (await res.json()) as { error?: { code?: string } };
  const num = (h: string) => (res.headers.get(h) === null ? null : Number(res.headers.get(h)));
  return { status: res.status, credits: num('x-tollgate-credits-used'), remaining: num('x-ratelimit-remaining-tokens'), code: json.error?.code ?? null };
}

/** n requests at once; then, nothing in flight, one at a time until the first refusal. */
async function burstThenTail(t: TestGateway, secret: string, n: number): Promise<{ burst: Outcome[]; tail: Outcome[] }> {
  const burst = await Promise.all(Array.from({ length: n }, () => chat(t, secret)));
  // Admitted requests still in flight when the burst's last refusal was decided refund
  // (WORST − ACTUAL) each as they settle, so room for a few more may open up afterwards: take it,
  // sequentially, so that "nothing more fits" can then be checked against a quiet account.
  const tail: Outcome[] = [];
  for (let i = 0; i < 100; i++) {
    const o = await chat(t, secret);
    tail.push(o);
    if (o.status !== 200) break;
  }
  return { burst, tail };
}

async function ledger(t: TestGateway, accountId: string): Promise<Array<{ credits: number; status: string }>> {
  const r = await t.admin('GET', `/usage?account=${accountId}&limit=10000`);
  expect(r.status).toBe(200);
  return r.body.data;
}

async function usageRule(t: TestGateway, secret: string, id: string): Promise<{ used: number; limit: number }> {
  const res = await fetch(`${t.url}/v1/usage`, { headers: { authorization: `Bearer ${secret}` } });
  const json = (await res.json()) as { rules: Array<{ id: string; used: number; limit: number }> };
  return json.rules.find((r) => r.id === id)!;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

let t: TestGateway | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe('exactness under parallel load', () => {
  it('the estimate and the fake usage are what the scenarios assume', () => {
    // "hi" as one user message: 3 priming + 3 framing + 1 role + 1 content = 8 tokens.
    expect(PROMPT).toBe(8);
    expect(WORST).toBe(617);
    expect(ACTUAL).toBe(483);
    expect(ACTUAL).toBeLessThan(WORST);
  });

  it('free budget: 1,000 parallel API requests never spend more than 50,000 credits, and stop only when full', async () => {
    t = await startTestGateway({ upstreamDelayMs: 20 });
    t.openai.setDefault({ kind: 'json', body: fakeCompletion(PROMPT, OUTPUT) });
    const { accountId, secret } = await t.newAccount();
    const LIMIT = 50_000;

    const { burst, tail } = await burstThenTail(t, secret, 1000);
    const all = [...burst, ...tail];
    const admitted = all.filter((o) => o.status === 200);
    const refused = all.filter((o) => o.status !== 200);

    expect(all.filter((o) => o.status !== 200 && o.status !== 403)).toEqual([]);
    // Budget for ~81 worst cases at once; far more than that must be refused.
    expect(burst.filter((o) => o.status === 200).length).toBeGreaterThanOrEqual(Math.floor(LIMIT / WORST));
    expect(refused.length).toBeGreaterThan(800);
    expect(tail.at(-1)!.status).toBe(403);
    for (const o of refused) {
      expect(o.code).toBe('resource_exhausted');
      // Refused only when its own worst case did not fit in what was left.
      expect(o.remaining).not.toBeNull();
      expect(o.remaining!).toBeLessThan(WORST);
    }

    for (const o of admitted) expect(o.credits).toBe(ACTUAL);
    const admittedCredits = sum(admitted.map((o) => o.credits!));
    expect(admittedCredits).toBeLessThanOrEqual(LIMIT);

    const rows = await ledger(t, accountId);
    expect(rows).toHaveLength(admitted.length);
    expect(sum(rows.map((r) => r.credits))).toBe(admittedCredits);
    const rule = await usageRule(t, secret, 'api_token');
    expect(rule).toMatchObject({ limit: LIMIT, used: admittedCredits });
    // Nothing more could be admitted: the room left is under one worst case.
    expect(LIMIT - rule.used).toBeLessThan(WORST);
    expect(t.openai.requests).toHaveLength(admitted.length);
  });

  it('playground: one request at a time across ~200 concurrent chats', async () => {
    t = await startTestGateway({
      upstreamDelayMs: 5,
      config: { plans: { free: { preset: 'free-tier', rules: [{ id: 'playground_requests', limit: 100_000 }] } } },
    });
    const { accountId } = await t.newAccount();

    const results: Array<{ status: number; code?: string }> = [];
    for (let wave = 0; wave < 20; wave++) {
      results.push(...(await Promise.all(Array.from({ length: 10 }, () => playgroundChat(t!, accountId)))));
    }
    const admitted = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status !== 200);

    expect(t.openai.maxInFlight).toBe(1);
    for (const r of refused) expect(r).toMatchObject({ status: 429, code: 'concurrency_limit' });
    // Later waves get in after earlier ones finished: the lease is given back every time.
    expect(admitted.length).toBeGreaterThanOrEqual(2);
    expect(await ledger(t, accountId)).toHaveLength(admitted.length);
    expect(t.openai.requests).toHaveLength(admitted.length);
  });

  it('paid balance: 1,000 parallel API requests never spend more than the top-up', async () => {
    t = await startTestGateway({ upstreamDelayMs: 20 });
    t.openai.setDefault({ kind: 'json', body: fakeCompletion(PROMPT, OUTPUT) });
    const { accountId, secret } = await t.newAccount({ plan: 'paid' });
    const TOP_UP = 40 * WORST + 123;
    expect((await t.admin('POST', `/accounts/${accountId}/credits`, { amount: TOP_UP })).body.balance).toBe(TOP_UP);

    const { burst, tail } = await burstThenTail(t, secret, 1000);
    const all = [...burst, ...tail];
    const admitted = all.filter((o) => o.status === 200);
    const refused = all.filter((o) => o.status !== 200);

    expect(all.filter((o) => o.status !== 200 && o.status !== 403)).toEqual([]);
    expect(admitted.length).toBeGreaterThanOrEqual(40);
    expect(tail.at(-1)!.status).toBe(403);
    for (const o of refused) {
      expect(o.code).toBe('insufficient_balance');
      expect(o.remaining).not.toBeNull();
      expect(o.remaining!).toBeLessThan(WORST);
    }

    for (const o of admitted) expect(o.credits).toBe(ACTUAL);
    const admittedCredits = sum(admitted.map((o) => o.credits!));
    expect(admittedCredits).toBeLessThanOrEqual(TOP_UP);

    const balance = (await t.admin('GET', `/accounts/${accountId}`)).body.balance as number;
    expect(balance).toBe(TOP_UP - admittedCredits);
    expect(balance).toBeGreaterThanOrEqual(0);
    expect(balance).toBeLessThan(WORST);
    const rows = await ledger(t, accountId);
    expect(rows).toHaveLength(admitted.length);
    expect(sum(rows.map((r) => r.credits))).toBe(admittedCredits);
    expect(t.openai.requests).toHaveLength(admitted.length);
  });

  it('overrun: an actual cost above the worst case is charged, logged, and bounded by the overrun', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = jsonLines(lines);
    t = await startTestGateway({ upstreamDelayMs: 5, gateway: { logger: pino({ level: 'warn' }, sink) } });
    // The upstream counts 1,000 prompt tokens more than the gateway's estimate.
    const overPrompt = PROMPT + 1000;
    const over = credits(overPrompt, OUTPUT);
    expect(over).toBeGreaterThan(WORST);
    t.openai.setDefault({ kind: 'json', body: fakeCompletion(overPrompt, OUTPUT) });
    const { accountId, secret } = await t.newAccount({ plan: 'paid' });

    // Exactly one worst case: admitted, then settled at the actual cost, below zero by the overrun.
    await t.admin('POST', `/accounts/${accountId}/credits`, { amount: WORST });
    const first = await chat(t, secret);
    expect(first).toMatchObject({ status: 200, credits: over });
    let balance = (await t.admin('GET', `/accounts/${accountId}`)).body.balance as number;
    expect(balance).toBe(WORST - over);
    expect(balance).toBe(-(over - WORST));

    const warned = lines.filter((l) => l.msg === 'actual cost above the reserved worst case');
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ level: 40, credits: over, worstCase: WORST });
    expect(typeof warned[0]!.requestId).toBe('string');

    // Below zero, nothing more is admitted.
    expect(await chat(t, secret)).toMatchObject({ status: 403, code: 'insufficient_balance', remaining: 0 });

    // In parallel: the top-up reserves at most floor(top-up / worst) requests at once, and the
    // balance ends no lower than minus the admitted requests' overruns.
    const TOP_UP = 3 * WORST + 100 + (over - WORST);
    balance = (await t.admin('POST', `/accounts/${accountId}/credits`, { amount: TOP_UP })).body.balance;
    expect(balance).toBe(3 * WORST + 100);
    const burst = await Promise.all(Array.from({ length: 50 }, () => chat(t!, secret)));
    const admitted = burst.filter((o) => o.status === 200);
    expect(burst.filter((o) => o.status !== 200 && o.code !== 'insufficient_balance')).toEqual([]);
    expect(admitted.length).toBeGreaterThanOrEqual(1);
    expect(admitted.length).toBeLessThanOrEqual(3);
    const after = (await t.admin('GET', `/accounts/${accountId}`)).body.balance as number;
    expect(after).toBe(3 * WORST + 100 - admitted.length * over);
    expect(after).toBeGreaterThanOrEqual(-admitted.length * (over - WORST));
    expect(lines.filter((l) => l.msg === 'actual cost above the reserved worst case')).toHaveLength(1 + admitted.length);

    const rows = await ledger(t, accountId);
    expect(rows).toHaveLength(1 + admitted.length);
    expect(sum(rows.map((r) => r.credits))).toBe((1 + admitted.length) * over);
  });

  it('embeddings: a parallel burst of Hindi text billed as OpenAI bills it stays within a small credits limit', async () => {
    // OpenAI bills text-embedding-3-small input in cl100k_base: 1,141 tokens here (46 credits at
    // 0.02 USD per 1M), where o200k_base counts 281 (12 credits). Reserved at the o200k count, ~83
    // requests fit a 1,000-credit day at once and then spent ~3,800.
    const input = 'भारत एक विशाल देश है जिसमें अनेक भाषाएँ बोली जाती हैं। '.repeat(20);
    const billed = countCl100k(input, { disallowedSpecial: new Set() });
    const LIMIT = 1_000;
    t = await startTestGateway({
      upstreamDelayMs: 50,
      config: { plans: { free: { preset: 'free-tier' }, small: { rules: [{ id: 'daily', measure: 'credits', limit: LIMIT, window: 'day', scope: 'account' }] } } },
    });
    t.openai.setDefault({
      kind: 'json',
      body: { object: 'list', data: [{ object: 'embedding', index: 0, embedding: [0.5] }], model: 'text-embedding-3-small', usage: { prompt_tokens: billed, total_tokens: billed } },
    });
    const { accountId, secret } = await t.newAccount({ plan: 'small' });
    const burst = await Promise.all(
      Array.from({ length: 100 }, async () => {
        const res = await fetch(`${t!.url}/v1/embeddings`, {
          method: 'POST',
          headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'text-embedding-3-small', input }),
        });
        await res.text();
        return { status: res.status, credits: Number(res.headers.get('x-tollgate-credits-used') ?? 0) };
      }),
    );
    const admitted = burst.filter((o) => o.status === 200);
    expect(burst.filter((o) => o.status !== 200 && o.status !== 403)).toEqual([]);
    expect(admitted.length).toBeGreaterThan(0);
    for (const o of admitted) expect(o.credits).toBe(Math.ceil((billed * 40_000) / 1_000_000));
    expect(sum(admitted.map((o) => o.credits))).toBeLessThanOrEqual(LIMIT);
    expect(sum((await ledger(t, accountId)).map((r) => r.credits))).toBeLessThanOrEqual(LIMIT);
  });
});
