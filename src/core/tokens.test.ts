import { countTokens } from 'gpt-tokenizer';
import { describe, expect, it } from 'vitest';
import { countChatPrompt, countEmbeddingInput, countText } from './tokens.js';

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
      (3 + countText('user') + countText('Hi there') + 1 + countText('ann')) +
      (3 + countText('assistant') + countText(JSON.stringify(body.messages[2]!.tool_calls))) +
      countText(JSON.stringify(body.tools));
    expect(countChatPrompt(body)).toBe(expected);
    // The same again: remembered role counts give the same answer.
    expect(countChatPrompt(body)).toBe(expected);
  });

  it('counts any role, including ones it has not seen, the same as text', () => {
    const roles = Array.from({ length: 40 }, (_, i) => `role-${i}`);
    for (const role of roles) {
      expect(countChatPrompt({ messages: [{ role, content: '' }] })).toBe(3 + 3 + countText(role));
    }
  });

  it('counts embedding input: strings, token arrays and single tokens', () => {
    expect(countEmbeddingInput('one two')).toBe(countText('one two'));
    expect(countEmbeddingInput(['a', [1, 2, 3], 7])).toBe(countText('a') + 3 + 1);
    expect(countEmbeddingInput({})).toBe(0);
  });
});
