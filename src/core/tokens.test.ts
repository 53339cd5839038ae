import { countTokens } from 'gpt-tokenizer';
import { countTokens as countCl100k } from 'gpt-tokenizer/encoding/cl100k_base';
import { describe, expect, it } from 'vitest';
import { countChatPrompt, countChatPromptParts, countEmbeddingInputs, countEmbeddingText, countText, hasNonTextParts } from './tokens.js';

describe('token counting', () => {
  it('counts text with the o200k encoding', () => {
    expect(countText('')).toBe(0);
    expect(countText('Say hello.')).toBe(countTokens('Say hello.'));
  });

  it('counts a special-token spelling as ordinary text instead of throwing', () => {
    const text = 'quote <|endoftext|> and <|im_start|> please';
    expect(() => countTokens(text)).toThrow(/Disallowed special token/); // the library default
    // Plain text: more than one token for each spelled-out special token.
    expect(countText(text)).toBeGreaterThan(countText('quote  and  please') + 2);
  });

  it('counts a chat prompt: framing, roles, contents, names and tools', () => {
    const body = {
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', name: 'ann', content: [{ type: 'text', text: 'Hi ' }, { type: 'text', text: 'there' }] },
        { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }] },
      ],
      tools: [{ type: 'function', function: { name: 'f', parameters: {} } }],
    };
    const expected =
      3 +
      (3 + countText('system') + countText('You are terse.')) +
      (3 + countText('user') + countText('Hi ') + 1 + countText('there') + 1 + countText('ann')) +
      (3 + countText('assistant') + countText(JSON.stringify(body.messages[2]!.tool_calls))) +
      countText(JSON.stringify(body.tools));
    expect(countChatPrompt(body)).toBe(expected);
    // The same again: remembered role counts give the same answer.
    expect(countChatPrompt(body)).toBe(expected);
  });

  it('counts text parts at least as any upstream joining them does: apart, plus a token per boundary', () => {
    const contentTokens = (content: unknown) =>
      countChatPrompt({ messages: [{ role: 'user', content }] }) - countChatPrompt({ messages: [{ role: 'user', content: '' }] });
    const textParts = (texts: string[]) => texts.map((text) => ({ type: 'text', text }));
    // vLLM joins a message's text parts with newlines; run together, 40,000 a's are 5,000 tokens.
    const many = Array.from({ length: 40_000 }, () => 'a');
    expect(contentTokens(textParts(many))).toBeGreaterThanOrEqual(countTokens(many.join('\n')));
    expect(countTokens(many.join(''))).toBeLessThan(countTokens(many.join('\n')) / 10);
    // Whitespace at a boundary merges into one piece when joined; the bound still holds.
    const samples = ['Hello ', ' world', '\n', '  \n', 'x  ', 'def f():\n    return 1\n', '日本語のテキスト', '1234', '!!!', 'a', '\t', "'s", '}\n'];
    for (const a of samples) {
      for (const b of samples) {
        for (const c of samples) {
          const counted = contentTokens(textParts([a, b, c]));
          expect(counted).toBe(countText(a) + countText(b) + countText(c) + 2);
          for (const sep of ['\n', '', ' ', '\n\n']) expect(counted).toBeGreaterThanOrEqual(countTokens([a, b, c].join(sep)));
        }
      }
    }
    // A refusal part is text like any other, boundary included.
    expect(contentTokens([{ type: 'text', text: 'Hi ' }, { type: 'refusal', refusal: 'I cannot help with that.' }])).toBe(
      countText('Hi ') + 1 + countText('I cannot help with that.'),
    );
    // A cap stops the count between parts too.
    const capped = countChatPrompt({ messages: [{ role: 'user', content: textParts(many) }] }, 1445, 1000);
    expect(capped).toBeGreaterThan(1000);
    expect(capped).toBeLessThan(1100);
    // And inside a part: one long part is counted only up to the cap, not whole.
    const long = 'The quick brown fox jumps over the lazy dog. '.repeat(20_000);
    const cappedPart = countChatPrompt({ messages: [{ role: 'user', content: textParts(['hi', long]) }] }, 1445, 1000);
    expect(cappedPart).toBeGreaterThan(1000);
    expect(cappedPart).toBeLessThan(countText(long) / 10);
  });

  it('counts everything the upstream bills as input: response format, function calls, other parts', () => {
    const base = { messages: [{ role: 'user', content: 'hi' }] };
    const schema = { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { a: { type: 'string', description: 'word '.repeat(200) } } } } };
    expect(countChatPrompt({ ...base, response_format: schema })).toBe(countChatPrompt(base) + countText(JSON.stringify(schema)));
    // A plain-text format adds nothing.
    expect(countChatPrompt({ ...base, response_format: { type: 'text' } })).toBe(countChatPrompt(base));

    // An assistant turn's reasoning sent back: the longer of the two names, as a client may send both.
    const reasoning = 'first I think, then I answer. '.repeat(20);
    const turn = (extra: object) => ({ messages: [{ role: 'assistant', content: 'ok', ...extra }] });
    expect(countChatPrompt(turn({ reasoning_content: reasoning }))).toBe(countChatPrompt(turn({})) + countText(reasoning));
    expect(countChatPrompt(turn({ reasoning }))).toBe(countChatPrompt(turn({})) + countText(reasoning));
    expect(countChatPrompt(turn({ reasoning_content: '', reasoning }))).toBe(countChatPrompt(turn({})) + countText(reasoning));
    // Priced, but not the context window's: the common templates drop earlier turns' reasoning.
    const withReasoning = countChatPromptParts(turn({ reasoning_content: reasoning }), 1445, Number.POSITIVE_INFINITY, countChatPrompt(turn({})));
    expect(withReasoning).toEqual({ messages: countChatPrompt(turn({})), total: countChatPrompt(turn({})) + countText(reasoning) });
    // Past the price cap it stops, whatever the window says.
    expect(countChatPromptParts(turn({ reasoning_content: reasoning }), 1445, 50).total).toBeGreaterThan(50);

    const call = { name: 'lookup', arguments: '{"q":"weather in Paris"}' };
    const withCall = { messages: [{ role: 'assistant', content: null, function_call: call }] };
    expect(countChatPrompt(withCall)).toBe(3 + 3 + countText('assistant') + countText(JSON.stringify(call)));

    const file = { type: 'file', file: { filename: 'a.txt', file_data: 'data:text/plain;base64,aGVsbG8gd29ybGQ=' } };
    const image = { type: 'image_url', image_url: { url: 'https://example.com/a.png' } };
    const parts = { messages: [{ role: 'user', content: [{ type: 'text', text: 'see' }, file, image] }] };
    expect(countChatPrompt(parts)).toBe(3 + 3 + countText('user') + countText('see') + Math.ceil(JSON.stringify(file).length / 4) + 1445);
    // A model that bills images at another rate says so (imageInputTokens): gpt-4o-mini's worst case.
    expect(countChatPrompt(parts, 48_169) - countChatPrompt(parts)).toBe(48_169 - 1445);
    // A megabyte of base64 audio is counted by length, not run through the tokenizer.
    const audio = { type: 'input_audio', input_audio: { data: 'QUJD'.repeat(262_144), format: 'wav' } };
    expect(countChatPrompt({ messages: [{ role: 'user', content: [audio] }] })).toBe(3 + 3 + countText('user') + Math.ceil(JSON.stringify(audio).length / 4));
  });

  it('counts any role, including ones it has not seen, the same as text', () => {
    const roles = Array.from({ length: 40 }, (_, i) => `role-${i}`);
    for (const role of roles) {
      expect(countChatPrompt({ messages: [{ role, content: '' }] })).toBe(3 + 3 + countText(role));
    }
  });

  it('with a cap, stops once past it: exact below the cap, some number above it past the cap', () => {
    const text = 'The quick brown fox jumps over the lazy dog. '.repeat(20_000); // ~900 KB
    const full = countText(text);
    expect(countText(text, full)).toBe(full);
    const capped = countText(text, 1_000);
    expect(capped).toBeGreaterThan(1_000);
    expect(capped).toBeLessThan(full / 10); // it stopped early, not at the end
    const body = { messages: [{ role: 'user', content: 'hi' }, { role: 'user', content: text }, { role: 'user', content: text }] };
    expect(countChatPrompt(body, 1445, Number.POSITIVE_INFINITY)).toBe(countChatPrompt(body));
    const cappedPrompt = countChatPrompt(body, 1445, 5_000);
    expect(cappedPrompt).toBeGreaterThan(5_000);
    expect(cappedPrompt).toBeLessThan(full / 10);
    expect(countEmbeddingInputs([text, text], 2_000).tokens).toBeGreaterThan(2_000);
    expect(countEmbeddingInputs([text, text], 2_000).tokens).toBeLessThan(full / 10);
  });

  it('remembers the counts of long texts it has seen, exactly, but never a count the cap stopped', () => {
    // Unique to this test, so no other test's count is in the memo; past WINDOW, so a cap stops it.
    const text = `${Date.now()} `.concat('A prompt that a chat client sends again on its next turn. '.repeat(400));
    const partial = countText(text, 100);
    expect(partial).toBeGreaterThan(100);
    expect(partial).toBeLessThan(countTokens(text)); // the count stopped early, and was not kept
    expect(countText(text)).toBe(countTokens(text)); // counted whole, and kept
    expect(countText(JSON.parse(JSON.stringify(text)) as string)).toBe(countTokens(text)); // an equal string from a new body
    expect(countText(text, 100)).toBe(countTokens(text)); // exact, and above the cap: what a cap asks for
    const input = `${Date.now()} `.concat('Text to embed, embedded again. '.repeat(20));
    expect(countEmbeddingText(input)).toBe(countCl100k(input, { disallowedSpecial: new Set() }));
    expect(countEmbeddingText(input)).toBe(countCl100k(input, { disallowedSpecial: new Set() }));
  });

  it("finds an embedding input past the model's window, counting no further than the window", () => {
    const long = 'word '.repeat(200_000);
    expect(countEmbeddingInputs(['a', long, 'b'], Number.POSITIVE_INFINITY, 8_192)).toMatchObject({ tooLong: 1 });
    // It stopped near the window, not at the end of the million characters.
    expect(countEmbeddingInputs(['a', long, 'b'], Number.POSITIVE_INFINITY, 8_192).tokens).toBeLessThan(20_000);
    expect(countEmbeddingInputs(long, Number.POSITIVE_INFINITY, 8_192).tooLong).toBe(0);
    expect(countEmbeddingInputs([[1, 2, 3], [1, 2]], Number.POSITIVE_INFINITY, 2)).toEqual({ tokens: 3, tooLong: 0 });
    expect(countEmbeddingInputs([1, 2, 3], Number.POSITIVE_INFINITY, 2)).toEqual({ tokens: 3, tooLong: 0 });
    expect(countEmbeddingInputs([1, 2], Number.POSITIVE_INFINITY, 2)).toEqual({ tokens: 2, tooLong: undefined });
    // Within the window each, counted whole.
    expect(countEmbeddingInputs(['one two', 'three'], Number.POSITIVE_INFINITY, 8_192)).toEqual({ tokens: countEmbeddingText('one two') + countEmbeddingText('three'), tooLong: undefined });
    // The budget's cap still stops the count first when it is lower.
    expect(countEmbeddingInputs([long], 100, 8_192)).toMatchObject({ tooLong: undefined });
  });

  it('counts embedding input: strings, token arrays and single tokens', () => {
    expect(countEmbeddingInputs('one two').tokens).toBe(countEmbeddingText('one two'));
    expect(countEmbeddingInputs(['a', [1, 2, 3], 7]).tokens).toBe(countEmbeddingText('a') + 3 + 1);
    expect(countEmbeddingInputs({}).tokens).toBe(0);
  });

  it('counts embedding text in cl100k_base, the encoding OpenAI bills its embedding models in', () => {
    // o200k_base counts this Hindi sentence at about a quarter of what text-embedding-3-small bills.
    const hindi = 'भारत एक विशाल देश है जिसमें अनेक भाषाएँ बोली जाती हैं। '.repeat(20);
    const plain = { disallowedSpecial: new Set<string>() };
    expect(countEmbeddingInputs(hindi).tokens).toBe(countCl100k(hindi, plain));
    expect(countEmbeddingInputs([hindi, hindi]).tokens).toBe(2 * countCl100k(hindi, plain));
    expect(countEmbeddingInputs(hindi).tokens).toBeGreaterThan(3 * countText(hindi));
  });

  describe('long text', () => {
    // Realistic text of every shape the tokenizer splits differently: cut only where it breaks
    // pieces anyway, counting in stretches gives exactly the whole text's count.
    const prose = 'The quick brown fox jumps over the lazy dog. It\'s 12:30 — time for "lunch", isn\'t it?\n';
    const code = 'function add(a, b) {\n  return a + b; // sum\n}\n\nconst x = [1, 2, 3].map((n) => n * 2);\n/* path/to/file */\n';
    const cjk = '今天天气很好，我们去公园散步吧。\n東京は晴れです。\n오늘은 날씨가 좋네요.\n';
    const json = JSON.stringify({ a: [1, 2, { b: 'c d', e: null }], f: 'g\nh', url: 'https://example.com/x?y=1' });
    const mixed = `${prose}${code}\t\ttabs  and   spaces\r\n${cjk}${json}\n\n\n  indented line\n/slash after newline\n`;
    const corpus = { prose, code, cjk, json, mixed, emoji: 'smile 😀 wave 👋🏽 family 👨‍👩‍👧 ok\n' };

    for (const [name, unit] of Object.entries(corpus)) {
      it(`counts long ${name} exactly as the tokenizer does whole`, () => {
        for (const reps of [3, 40, 400]) {
          const text = unit.repeat(reps);
          expect(countText(text)).toBe(countTokens(text, { disallowedSpecial: new Set() }));
          expect(countEmbeddingText(text)).toBe(countCl100k(text, { disallowedSpecial: new Set() }));
        }
      });
    }

    it('counts a long run with no break in slices: close to the whole count, never below it by more than a token a slice', () => {
      for (const text of ['x'.repeat(5000), '!'.repeat(5000), '你好世界'.repeat(1000), ' '.repeat(5000), 'ab😀'.repeat(1500)]) {
        const whole = countTokens(text, { disallowedSpecial: new Set() });
        const sliced = countText(text);
        expect(Math.abs(sliced - whole)).toBeLessThanOrEqual(Math.ceil(text.length / 128) + 1);
      }
    });

    it('never cuts a surrogate pair in two', () => {
      // 127 letters, then emoji: a cut at 128 characters would land inside the first pair, and
      // each lone half would count as a replacement character (218 tokens here instead of 217).
      const text = `${'a'.repeat(127)}${'😀'.repeat(200)}`;
      const plain = { disallowedSpecial: new Set<string>() };
      expect(countTokens(text.slice(0, 128), plain) + countTokens(text.slice(128), plain)).toBe(218);
      expect(countText(text)).toBe(countTokens(text, plain));
    });

    it('counts a megabyte with no break at the cost of ordinary text, not its square', () => {
      // Whole, this takes minutes (the merge step is quadratic in one piece); sliced, well under
      // the test's timeout. The count stays an over-estimate of the same order.
      const text = 'x'.repeat(1_000_000);
      const n = countText(text);
      expect(n).toBeGreaterThanOrEqual(1_000_000 / 8);
      expect(n).toBeLessThanOrEqual(1_000_000 / 8 + 1_000_000 / 128);
    });
  });
});


describe('hasNonTextParts', () => {
  it('is true for an image, file or audio part anywhere, false for text, refusals and plain strings', () => {
    const msg = (content: unknown) => ({ messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content }] });
    expect(hasNonTextParts(msg('hi'))).toBe(false);
    expect(hasNonTextParts(msg([{ type: 'text', text: 'hi' }, { type: 'refusal', refusal: 'no' }]))).toBe(false);
    for (const type of ['image_url', 'input_image', 'file', 'input_audio']) expect(hasNonTextParts(msg([{ type: 'text', text: 'x' }, { type }])), type).toBe(true);
    expect(hasNonTextParts({})).toBe(false);
  });
});

describe('countChatPromptParts', () => {
  it('gives the messages their own share, and stops them at their own cap', () => {
    const body = { messages: [{ role: 'user', content: ' hello'.repeat(1_000) }], tools: [{ type: 'function', function: { name: 'f', description: ' x'.repeat(500) } }] };
    const parts = countChatPromptParts(body);
    expect(parts.total).toBe(countChatPrompt(body));
    expect(parts.messages).toBe(countChatPrompt({ messages: body.messages }));
    expect(parts.total).toBeGreaterThan(parts.messages + 500);
    // Stopped past 100 message tokens: some number above it, the tools not counted.
    const stopped = countChatPromptParts(body, undefined, Number.POSITIVE_INFINITY, 100);
    expect(stopped.messages).toBeGreaterThan(100);
    expect(stopped.total).toBe(stopped.messages);
  });
});
