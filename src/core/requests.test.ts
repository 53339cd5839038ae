import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { GatewayError } from '../errors/gateway-error.js';
import { chatBodyOk, chatRequest, embeddingInputOk, embeddingRequest, parseBody, parseChatBody } from './requests.js';

const base = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] };

// Values each field is tried with: valid ones, wrong types, bounds and just past them.
const any = [undefined, null, true, false, 0, 1, -1, 0.5, 1.5, 2, 2.5, 128, 129, 2 ** 53, '', 'x', [], [1], {}, { a: 1 }];
const fieldValues: Record<string, unknown[]> = {
  model: [...any, 'gpt-4o-mini'],
  messages: [...any, [{ role: 'system', content: 'x' }, { role: 'user', content: null }], [base.messages[0], 'x']],
  stream: any,
  stream_options: [...any, { include_usage: true }, { include_usage: 'yes' }, { include_usage: null }, { other: 1 }],
  max_tokens: any,
  max_completion_tokens: any,
  n: any,
  temperature: [...any, 1.99, 2.0000001],
  top_p: [...any, 0.999, 1.0000001],
  tools: [...any, [{ type: 'function', function: {} }], [{ type: 1 }], [{}], [null]],
  n_predict: any,
  extra_field: any,
};
const messageValues: unknown[] = [
  ...any,
  ...['system', 'developer', 'user', 'assistant', 'tool', 'function', 'wizard', 1, null].map((role) => ({ role, content: 'x' })),
  ...[undefined, null, '', 'x', 1, true, {}, [], [{ type: 'text', text: 'x' }], [{ type: 'image_url' }, { type: 'text' }], [{ text: 'x' }], [{ type: 1 }], ['x'], [null], [[]]].map(
    (content) => ({ role: 'user', content }),
  ),
  ...[undefined, null, 'bob', 1, ''].map((name) => ({ role: 'user', content: 'x', name })),
  { role: 'user' },
  { role: 'assistant', content: null, tool_calls: [{ id: 'a' }] },
];

function bodies(): unknown[] {
  const out: unknown[] = [base, null, [], 'x', 1, [base]];
  for (const [field, values] of Object.entries(fieldValues)) {
    for (const v of values) out.push({ ...base, [field]: v });
  }
  for (const m of messageValues) {
    out.push({ ...base, messages: [m] });
    out.push({ ...base, messages: [base.messages[0], m] });
  }
  // Pairs of fields at once, from a fixed seed so a failure replays.
  let seed = 42;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  const fields = Object.keys(fieldValues);
  for (let i = 0; i < 400; i++) {
    const b: Record<string, unknown> = { ...base };
    for (let j = 0; j < 2; j++) {
      const f = fields[rand(fields.length)]!;
      b[f] = fieldValues[f]![rand(fieldValues[f]!.length)];
    }
    if (rand(3) === 0) b.messages = [messageValues[rand(messageValues.length)]];
    out.push(b);
  }
  return out;
}

describe('the hand-written chat body check', () => {
  it('accepts exactly what the chat schema accepts, and returns what it would', () => {
    const cases = bodies();
    expect(cases.length).toBeGreaterThan(700);
    let accepted = 0;
    for (const body of cases) {
      const zod = chatRequest.safeParse(body);
      const mine = typeof body === 'object' && body !== null && !Array.isArray(body) && chatBodyOk(body as Record<string, unknown>);
      expect({ body, ok: mine }).toEqual({ body, ok: zod.success });
      if (zod.success) {
        accepted++;
        expect(parseChatBody(body)).toStrictEqual(zod.data);
      }
    }
    // Both sides of the comparison are exercised.
    expect(accepted).toBeGreaterThan(100);
    expect(cases.length - accepted).toBeGreaterThan(100);
  });

  it("refuses llama.cpp's n_predict, which would override the metered max_tokens upstream", () => {
    expect(() => parseChatBody({ ...base, max_tokens: 16, n_predict: 100_000 })).toThrow(
      expect.objectContaining({ code: 'invalid_request', param: 'n_predict', vars: { detail: expect.stringMatching(/n_predict: not accepted.*max_tokens/) } }),
    );
  });

  it('hands the body back without copying it', () => {
    const body = { ...base, stream: true, custom: { deep: [1] } };
    expect(parseChatBody(body)).toBe(body);
  });

  it('refuses with the schema error, naming the field', () => {
    for (const [body, param] of [
      [{ ...base, temperature: 7 }, 'temperature'],
      [{ ...base, messages: [{ role: 'user', content: [{ text: 'x' }] }] }, 'messages[0].content'],
      [{ model: 'm', messages: [] }, 'messages'],
    ] as const) {
      let thrown: unknown;
      try {
        parseChatBody(body);
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(GatewayError);
      expect((thrown as GatewayError).param).toBe(param);
      expect(() => parseBody(chatRequest, body)).toThrow((thrown as GatewayError).message);
    }
  });
});

describe('parseBody', () => {
  it('names a field a strict schema does not take in param, as it names a field of the wrong type', () => {
    const strict = z.strictObject({ a: z.string(), inner: z.strictObject({ b: z.number() }).optional() });
    for (const [body, param] of [
      [{ a: 'x', colour: 'red' }, 'colour'],
      [{ a: 'x', inner: { b: 1, c: 2 } }, 'inner.c'],
      [{ a: 1 }, 'a'],
    ] as const) {
      expect(() => parseBody(strict, body)).toThrow(expect.objectContaining({ code: 'invalid_request', param }));
    }
  });
});

describe('the embeddings input check', () => {
  // The four shapes OpenAI's `input` takes, as a zod union: what the check must accept, exactly.
  // No empty string, alone or in an array: OpenAI refuses it (nothing to embed).
  const union = z.union([
    z.string().min(1),
    z.array(z.string().min(1)).min(1),
    z.array(z.number().int()).min(1),
    z.array(z.array(z.number().int()).min(1)).min(1),
  ]);
  const scalars: unknown[] = [undefined, null, true, 0, 1, -1, 1.5, 2 ** 53, 2 ** 53 - 1, -(2 ** 53), '', 'x', {}, []];

  it('accepts exactly what the union of the four shapes accepts', () => {
    const inputs: unknown[] = [...scalars];
    for (const a of scalars) {
      inputs.push([a], ['x', a], [1, a], [[1], a], [[a]], [[1, a]], [[1], [a]]);
    }
    let accepted = 0;
    for (const input of inputs) {
      const ok = union.safeParse(input).success;
      expect({ input, ok: embeddingInputOk(input) }).toEqual({ input, ok });
      if (ok) accepted++;
    }
    expect(accepted).toBeGreaterThan(10);
    expect(inputs.length - accepted).toBeGreaterThan(50);
  });

  it('checks millions of token arrays in one pass, not one walk per shape with an issue per element', () => {
    // Through the zod union this took ~8 s (18 s inside the server): the event loop held that long.
    const input = Array.from({ length: 2_000_000 }, () => [1]);
    const started = performance.now();
    expect(parseBody(embeddingRequest, { model: 'm', input }).input).toBe(input);
    expect(() => parseBody(embeddingRequest, { model: 'm', input: [...input, 'x'] })).toThrow(expect.objectContaining({ param: 'input' }));
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});
