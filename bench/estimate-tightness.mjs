// How tight is the worst-case estimate a request reserves? Two parts:
//  1. prompt: the gateway's countChatPrompt vs gpt-tokenizer's encodeChat, which renders the
//     exact chat template of gpt-4o (the tokens OpenAI bills as prompt_tokens);
//  2. the whole reservation: worst case (prompt + clamped max output) ÷ actual cost for typical
//     answer lengths, on the free tier (output clamped to 512) with gpt-4o-mini prices.
// Run: npm run build && node bench/estimate-tightness.mjs
import { encodeChat } from 'gpt-tokenizer';
import { countChatPrompt } from '../dist/src/core/tokens.js';
import { Pricing } from '../dist/src/core/pricing.js';

const model = { id: 'gpt-4o-mini', kind: 'chat', price: { input: 0.15, output: 0.6 }, maxOutputTokens: 16384 };
const pricing = new Pricing(2_000_000);

const long = 'Tollgate puts one OpenAI-compatible API in front of many model providers. '.repeat(40);
const samples = {
  'one-line question': [{ role: 'user', content: 'What is the capital of France?' }],
  'system + user': [
    { role: 'system', content: 'You are a concise assistant that answers in one paragraph.' },
    { role: 'user', content: 'Explain how a token bucket rate limiter works.' },
  ],
  'multi-turn chat (6 messages)': [
    { role: 'system', content: 'You are a helpful assistant.' },
    { role: 'user', content: 'I need a name for a cat.' },
    { role: 'assistant', content: 'How about Miso, Pixel or Juniper?' },
    { role: 'user', content: 'Something more regal.' },
    { role: 'assistant', content: 'Duchess, Archibald, or Cleopatra.' },
    { role: 'user', content: 'Archibald it is. Now a middle name?' },
  ],
  'long context (~600 words)': [{ role: 'user', content: `Summarise this:\n${long}` }],
  'non-English text': [{ role: 'user', content: 'Объясни, пожалуйста, как работает кэширование в HTTP. 日本語でも一文で。' }],
};

console.log('## Prompt tokens: estimate vs the exact gpt-4o chat encoding\n');
console.log('| request | estimate | exact | estimate ÷ exact |');
console.log('|---|---:|---:|---:|');
for (const [name, messages] of Object.entries(samples)) {
  const est = countChatPrompt({ messages });
  const exact = encodeChat(messages, 'gpt-4o').length;
  console.log(`| ${name} | ${est} | ${exact} | ${(est / exact).toFixed(3)} |`);
}

console.log('\n## Reservation: worst case ÷ actual cost (free tier: output clamped to 512; gpt-4o-mini)\n');
console.log('| request | worst case (credits) | answer 50 tok | answer 150 tok | answer 300 tok | answer 512 tok |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const [name, messages] of Object.entries(samples)) {
  const prompt = encodeChat(messages, 'gpt-4o').length;
  const worst = pricing.chatCredits(model, countChatPrompt({ messages }), 512);
  const cells = [50, 150, 300, 512].map((out) => (worst / pricing.chatCredits(model, prompt, out)).toFixed(2));
  console.log(`| ${name} | ${worst} | ${cells.join(' | ')} |`);
}
