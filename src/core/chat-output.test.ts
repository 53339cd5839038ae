import { describe, expect, it } from 'vitest';
import { modelSchema, type ChatModelConfig } from '../config/schema.js';
import { JsonText } from '../lib/json-text.js';
import { audioUse, capOutput, countCompletionOutput, deltaReasoning, deltaText, keptForCount, outputAllowance, predictionTokens, usableCredits } from './chat-output.js';
import { countText } from './tokens.js';

const model = modelSchema.parse({ id: 'm', kind: 'chat', provider: 'p', maxOutputTokens: 1000, price: { input: 1, output: 1 } }) as ChatModelConfig;

describe('output limits', () => {
  it("lowers either limit above the model's ceiling, and the header names the final value", () => {
    const body = { max_tokens: 5000, max_completion_tokens: 20 };
    const clamped: string[] = [];
    capOutput(model, body, clamped);
    expect(body).toEqual({ max_tokens: 1000, max_completion_tokens: 20 });
    expect(clamped).toEqual(['max_tokens=1000']);
    // A plan's clamp already named the field: replaced, not listed twice.
    const both = { max_tokens: 4000, max_completion_tokens: 3000 };
    const planned = ['max_tokens=4000'];
    capOutput(model, both, planned);
    expect(planned).toEqual(['max_tokens=1000']);
  });

  it('lowers a limit one token past the ceiling, and leaves one at it alone', () => {
    const over = { max_completion_tokens: 1001 };
    const clamped: string[] = [];
    capOutput(model, over, clamped);
    expect(over).toEqual({ max_completion_tokens: 1000 });
    expect(clamped).toEqual(['max_tokens=1000']);
    const at = { max_tokens: 1000 };
    const none: string[] = [];
    capOutput(model, at, none);
    expect(at).toEqual({ max_tokens: 1000 });
    expect(none).toEqual([]);
  });

  it('allows the larger of the two limits, never past the ceiling, for every choice', () => {
    expect(outputAllowance(model, {})).toBe(1000);
    expect(outputAllowance(model, { max_tokens: 10, max_completion_tokens: 30 })).toBe(30);
    expect(outputAllowance(model, { max_tokens: 50_000, n: 3 })).toBe(3000);
  });

  it('stands the worst case in for a cost no counter can hold', () => {
    expect(usableCredits(42, 100)).toBe(42);
    for (const bad of [-1, 0.5, Number.NaN, 2 ** 53, 1e300]) expect(usableCredits(bad, 100)).toBe(100);
  });
});

describe('predictionTokens (Predicted Outputs: what the model does not use is billed as output)', () => {
  const code = 'function add(a, b) {\n  return a + b;\n}\n'.repeat(50);
  it('counts a prediction given as text or as text parts, and nothing without one', () => {
    expect(predictionTokens({ prediction: { type: 'content', content: code } }, Number.POSITIVE_INFINITY)).toBe(countText(code));
    expect(predictionTokens({ prediction: { type: 'content', content: [{ type: 'text', text: code }, { type: 'text', text: 'x' }] } }, Number.POSITIVE_INFINITY)).toBe(countText(code) + countText('x'));
    expect(predictionTokens({}, Number.POSITIVE_INFINITY)).toBe(0);
    expect(predictionTokens({ prediction: null }, Number.POSITIVE_INFINITY)).toBe(0);
    expect(predictionTokens({ prediction: { type: 'content', content: 42 } }, Number.POSITIVE_INFINITY)).toBe(0);
  });

  it('stops past its cap', () => {
    const long = code.repeat(40);
    const capped = predictionTokens({ prediction: { type: 'content', content: [{ type: 'text', text: long }, { type: 'text', text: long }] } }, 100);
    expect(capped).toBeGreaterThan(100);
    expect(capped).toBeLessThan(countText(long) / 4);
  });
});

describe('audioUse (which audio prices a worst case takes)', () => {
  const say = (content: unknown) => ({ messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content }] });
  it('finds audio asked for out (modalities, or an audio format) and audio parts in the prompt', () => {
    expect(audioUse({ ...say('hi'), modalities: ['text', 'audio'] })).toEqual({ input: false, output: true });
    expect(audioUse({ ...say('hi'), audio: { voice: 'alloy', format: 'wav' } })).toEqual({ input: false, output: true });
    expect(audioUse(say([{ type: 'text', text: 'what is said?' }, { type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } }]))).toEqual({ input: true, output: false });
    expect(audioUse({ ...say('hi'), modalities: ['text'], audio: null })).toEqual({ input: false, output: false });
    expect(audioUse({ messages: [null, { role: 'user' }] })).toEqual({ input: false, output: false });
  });
});

describe('what a stream chunk wrote', () => {
  it("counts text and a tool call's name and arguments, not the JSON wrapping them", () => {
    const chunk = {
      choices: [
        { index: 0, delta: { content: 'Hi ' } },
        { index: 1, delta: { tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{"q":' } }] } },
      ],
    };
    expect(deltaText(chunk)).toBe('Hi lookup{"q":');
    expect(deltaText({ choices: [] })).toBe('');
    // A structured-output refusal and a legacy `functions` call are output too.
    expect(deltaText({ choices: [{ index: 0, delta: { content: null, refusal: "I can't." } }] })).toBe("I can't.");
    expect(deltaText({ choices: [{ index: 0, delta: { content: null, function_call: { name: 'lookup', arguments: '{"q":1}' } } }] })).toBe('lookup{"q":1}');
    expect(deltaText({})).toBe('');
  });

  it('reads the reasoning written beside the text (reasoning_content or reasoning, one of them when both)', () => {
    expect(deltaReasoning({ choices: [{ index: 0, delta: { content: null, reasoning_content: 'Think.' } }] })).toBe('Think.');
    expect(deltaReasoning({ choices: [{ index: 0, delta: { reasoning: 'Hmm.' } }, { index: 1, delta: { reasoning_content: 'So.', reasoning: 'So.' } }] })).toBe('Hmm.So.');
    expect(deltaReasoning({ choices: [{ index: 0, delta: { content: 'x' } }] })).toBe('');
    expect(deltaReasoning({ choices: [null] })).toBe('');
  });

  it('keeps reasoning for counting only until its count is surely past the allowance (an endless one held 1.3 GB)', () => {
    const allowance = 16;
    const max = allowance * 128 + 4096;
    let kept = '';
    for (let i = 0; i < 1_000; i++) kept = keptForCount(kept, 'word '.repeat(100), max);
    expect(kept.length).toBeGreaterThan(max);
    expect(kept.length).toBeLessThanOrEqual(max + 500);
    // What the charge needs of it: a count past the allowance, which is what is charged.
    expect(countText(kept)).toBeGreaterThan(allowance);
    // Below the bound, nothing is lost.
    expect(keptForCount('Think', ' more.', max)).toBe('Think more.');
  });

  it("reads a broken upstream's null or scalar choice as writing nothing (it threw: a 500 mid-stream)", () => {
    expect(deltaText({ choices: [null, 5, 'x', { index: 0, delta: { content: 'Hi' } }] })).toBe('Hi');
  });
});

describe('what a whole answer wrote', () => {
  it('counts the reasoning with the content', () => {
    const body = JsonText.parse(JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', reasoning_content: 'First, add one and two.', content: 'Three.' } }] }))!;
    expect(countCompletionOutput(body)).toBe(countText('First, add one and two.Three.'));
  });

  it('counts a refusal and a legacy function call', () => {
    const refusal = JsonText.parse(JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: null, refusal: "I'm sorry, I can't help with that." } }] }))!;
    expect(countCompletionOutput(refusal)).toBe(countText("I'm sorry, I can't help with that."));
    const call = JsonText.parse(JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: null, function_call: { name: 'lookup', arguments: '{"q":"weather in Paris"}' } } }] }))!;
    expect(countCompletionOutput(call)).toBe(countText('lookup{"q":"weather in Paris"}'));
  });

  it("counts a broken upstream's null or scalar choice as nothing (it threw: a 500 for an answer the upstream made)", () => {
    const body = JsonText.parse(JSON.stringify({ choices: [null, 5, { index: 2, message: { role: 'assistant', content: 'Three.' } }] }))!;
    expect(countCompletionOutput(body)).toBe(countText('Three.'));
  });
});
