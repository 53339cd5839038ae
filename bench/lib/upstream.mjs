// Fast fake OpenAI-compatible upstream, shared by the benchmarks. Run as its own process:
//
//   node bench/lib/upstream.mjs [--chunks N] [--model NAME]   → prints {"port":N} on its first stdout line
//
// POST …/chat/completions answers a fixed chat.completion (usage 12/7); with `stream: true` an SSE
// of a role chunk + 5 content chunks + finish chunk + usage chunk + [DONE], one write per event.
// --chunks N streams N content chunks instead (a real answer's length: OpenAI sends about one per
// token); --model NAME names another model in the answers than the one asked for, as OpenAI names
// the dated snapshot (`gpt-4o-mini-2024-07-18`) that served `gpt-4o-mini`.
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export const USAGE = { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 };

export function runUpstream({ chunks = 5, model = 'gpt-4o-mini' } = {}) {
  const five = ['Hello', ' from', ' the', ' fake', ' upstream.'];
  const words = Array.from({ length: chunks }, (_, i) => five[i % five.length]);
  const base = { id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1727000000, model, system_fingerprint: 'fp_bench' };
  const chunk = (choices, extra = {}) => `data: ${JSON.stringify({ ...base, choices, ...extra })}\n\n`;
  const events = [
    chunk([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]),
    ...words.map((w) => chunk([{ index: 0, delta: { content: w }, logprobs: null, finish_reason: null }])),
    chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }]),
    chunk([], { usage: USAGE }),
    'data: [DONE]\n\n',
  ];
  const completion = JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: 1727000000,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content: words.join(''), refusal: null }, logprobs: null, finish_reason: 'stop' }],
    usage: USAGE,
    system_fingerprint: 'fp_bench',
  });

  const server = http.createServer((req, res) => {
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', async () => {
      if (req.method !== 'POST' || !req.url.split('?')[0].endsWith('/chat/completions')) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found"}}');
        return;
      }
      let body = {};
      try {
        body = JSON.parse(Buffer.concat(parts).toString('utf8'));
      } catch {}
      if (body.stream === true) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        for (const e of events) {
          res.write(e);
          await new Promise((r) => setImmediate(r)); // separate writes, like a real token stream
        }
        res.end();
      } else {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(completion) }).end(completion);
      }
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { chunks: { type: 'string', default: '5' }, model: { type: 'string', default: 'gpt-4o-mini' } }, strict: true });
  runUpstream({ chunks: Number(values.chunks), model: values.model });
}
