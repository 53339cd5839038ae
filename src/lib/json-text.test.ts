import { describe, expect, it } from 'vitest';
import { JsonText } from './json-text.js';

const completion = JSON.stringify({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1732500000,
  model: 'gpt-4o-mini-2024-07-18',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hi "there" \\ \u00e9 \ud83d\ude00', refusal: null, model: 'nested' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 },
});

// A model's answer is one long string: past its first characters the scanner reads it another way.
const longAnswer = JSON.stringify({
  id: 'chatcmpl-2',
  object: 'chat.completion',
  choices: [{ index: 0, message: { role: 'assistant', content: `${'A long answer, with "quotes", a \\ backslash,\nnew lines, \u00e9 and \ud83d\ude00. '.repeat(6)}end` }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 12, completion_tokens: 70, total_tokens: 82 },
});

/** What JSON.parse makes of a text: the object, or 'invalid' / 'not an object'. */
function reference(text: string): unknown {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return 'invalid';
  }
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? v : 'not an object';
}

function verdict(text: string): unknown {
  const t = JsonText.parse(text);
  return t === undefined ? undefined : t.toJSON();
}

// Valid texts of every shape the grammar has, and near misses of each.
const VALID = [
  '{}',
  ' \t\r\n{ } \n',
  '{"a":1}',
  '{"a":-0.5e+10,"b":0,"c":-0,"d":1E5,"e":12.25e-3,"f":[],"g":{},"h":[[],{}],"i":true,"j":false,"k":null}',
  '{"s":"\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\uD83D\\uDE00"}',
  '{"a\\u0062":1,"ab":2}',
  '{"dup":1,"x":[1,2,{"dup":3}],"dup":{"y":[true]}}',
  '{ "a" : [ 1 , 2 ] , "b" : { "c" : "d" } }',
  '{"lone":"\ud800"}',
  `{"deep":${'['.repeat(600)}${']'.repeat(600)}}`,
  completion,
];
const INVALID = [
  '',
  ' ',
  '[]',
  '"a"',
  '1',
  'null',
  '{',
  '}',
  '{"a"}',
  '{"a":}',
  '{"a":1,}',
  '{,"a":1}',
  '{"a":1 "b":2}',
  '{"a":[1,]}',
  '{"a":[,1]}',
  '{"a":01}',
  '{"a":1.}',
  '{"a":.5}',
  '{"a":+1}',
  '{"a":-}',
  '{"a":1e}',
  '{"a":1e+}',
  '{"a":NaN}',
  '{"a":Infinity}',
  '{"a":tru}',
  '{"a":nul}',
  '{"a":True}',
  "{'a':1}",
  '{a:1}',
  '{"a":"\\x"}',
  '{"a":"\\u12G4"}',
  '{"a":"\\u12"}',
  '{"a":"tab\there"}',
  '{"a":"unterminated}',
  '{"a":1}}',
  '{"a":1} x',
  '{"a":1}{}',
  '{"a":[1}',
  '{"a":[1}}',
  '{"a":{"b":1]}',
  '{"a":{1]}',
  '\ufeff{"a":1}',
  '{"a":1\u00a0}',
];

describe('JsonText', () => {
  it('accepts exactly what JSON.parse accepts as an object, and reads back the same object', () => {
    for (const text of [...VALID, ...INVALID]) {
      const ref = reference(text);
      const got = verdict(text);
      if (typeof ref === 'string') expect(got, text).toBeUndefined();
      else expect(got, text).toEqual(ref);
    }
  });

  it.each([
    ['a short answer', completion],
    ['a long answer', longAnswer],
  ])('agrees with JSON.parse on thousands of mutations of %s', (_, answer) => {
    // Deterministic pseudo-random edits: delete, insert or replace one character with one the
    // grammar cares about.
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const alphabet = '{}[],:"\\ 0123456789-+.eEtrufalsn\t\nu\u00e9x';
    let accepted = 0;
    for (let k = 0; k < 5000; k++) {
      let text = answer;
      for (let edits = 1 + rand(2); edits > 0; edits--) {
        const at = rand(text.length + 1);
        const ch = alphabet[rand(alphabet.length)]!;
        const op = rand(3);
        text = op === 0 ? text.slice(0, at) + text.slice(at + 1) : op === 1 ? text.slice(0, at) + ch + text.slice(at) : text.slice(0, at) + ch + text.slice(at + 1);
      }
      const ref = reference(text);
      const got = verdict(text);
      if (typeof ref === 'string') expect(got, text).toBeUndefined();
      else {
        accepted += 1;
        expect(got, text).toEqual(ref);
      }
    }
    // Both sides of the line were exercised.
    expect(accepted).toBeGreaterThan(500);
    expect(accepted).toBeLessThan(4500);
  });

  it('reads top-level members only, the last of duplicates', () => {
    const t = JsonText.parse('{"model":"a","x":{"model":"nested"},"usage":{"prompt_tokens":3},"model":"b"}')!;
    expect(t.get('model')).toBe('b');
    expect(t.get('usage')).toEqual({ prompt_tokens: 3 });
    expect(t.get('missing')).toBeUndefined();
  });

  it('splices replaced and added members into the original text, leaving the rest byte for byte', () => {
    const t = JsonText.parse(completion)!;
    t.set('model', 'gpt-4o-mini');
    t.set('meta', { usage: { credits_used: 12 } });
    const out = t.toString();
    expect(out).toBe(
      completion.replace('"model":"gpt-4o-mini-2024-07-18"', '"model":"gpt-4o-mini"').slice(0, -1) + ',"meta":{"usage":{"credits_used":12}}}',
    );
    expect(JSON.parse(out)).toEqual({ ...JSON.parse(completion), model: 'gpt-4o-mini', meta: { usage: { credits_used: 12 } } });
    expect(t.get('model')).toBe('gpt-4o-mini');
  });

  it('edits an empty object, whitespace, duplicates and a value built in code', () => {
    const empty = JsonText.parse(' {} ')!;
    empty.set('a', 1);
    expect(JSON.parse(empty.toString())).toEqual({ a: 1 });

    const spaced = JsonText.parse('{ "model" : "x" , "n" : [ 1 ] }\n')!;
    spaced.set('model', 'y');
    spaced.set('meta', null);
    expect(JSON.parse(spaced.toString())).toEqual({ model: 'y', n: [1], meta: null });

    const dup = JsonText.parse('{"model":"a","model":"b"}')!;
    dup.set('model', 'c');
    expect(JSON.parse(dup.toString())).toEqual({ model: 'c' });

    const built = JsonText.of({ created: 1, data: [{ url: 'https://x/y.png' }], skipped: undefined });
    built.set('meta', { usage: { credits_used: 3 } });
    expect(JSON.parse(built.toString())).toEqual({ created: 1, data: [{ url: 'https://x/y.png' }], meta: { usage: { credits_used: 3 } } });

    // Deeper than the scanner goes: parsed by JSON.parse, still editable.
    const deepText = `{"deep":${'['.repeat(600)}${']'.repeat(600)},"model":"a"}`;
    const deep = JsonText.parse(deepText)!;
    deep.set('model', 'b');
    expect(JSON.parse(deep.toString())).toEqual({ ...JSON.parse(deepText), model: 'b' });
  });

  it('says whether a member is an array without parsing it, as Array.isArray of its value would', () => {
    const t = JsonText.parse('{"a": [1], "b":\n  [ ], "c": {"d": []}, "e": "[x]", "f": null, "a2": 1}')!;
    for (const k of ['a', 'b', 'c', 'd', 'e', 'f', 'a2', 'missing']) expect(t.isArray(k), k).toBe(Array.isArray(t.get(k)));
    t.set('e', []);
    t.set('a', {});
    expect([t.isArray('e'), t.isArray('a')]).toEqual([true, false]);
  });

  it('serialises through JSON.stringify as the object it holds', () => {
    const t = JsonText.parse('{"a":[1,2]}')!;
    t.set('b', true);
    expect(JSON.stringify({ wrapped: t })).toBe('{"wrapped":{"a":[1,2],"b":true}}');
  });
});
