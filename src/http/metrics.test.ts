import { describe, expect, it } from 'vitest';
import type { UsageRecord } from '../storage/ports.js';
import { Metrics } from './metrics.js';

const record = (over: Partial<UsageRecord> = {}): UsageRecord => ({
  requestId: 'r', accountId: 'a', keyId: 'k', model: 'gpt-4o-mini', surface: 'api', promptTokens: 12,
  outputTokens: 7, credits: 5, status: 'ok', httpStatus: 200, createdAt: '2026-11-25T12:00:00.000Z', provider: 'openai', ...over,
});

const line = (text: string, prefix: string) => text.split('\n').find((l) => l.startsWith(prefix));

describe('Metrics', () => {
  it('counts by label values and reports each increment exactly once across scrapes', async () => {
    const m = new Metrics();
    m.observeHttp('/v1/chat/completions', 200, 0.002);
    m.observeHttp('/v1/chat/completions', 200, 0.003);
    m.observeHttp('/v1/chat/completions', 429, 0.001);
    m.observeRecord(record());
    m.observeRecord(record({ credits: 0, outputTokens: 0, status: 'error' }));
    let text = await m.registry.metrics();
    expect(line(text, 'tollgate_http_requests_total{route="/v1/chat/completions",status="200"}')).toMatch(/ 2$/);
    expect(line(text, 'tollgate_http_requests_total{route="/v1/chat/completions",status="429"}')).toMatch(/ 1$/);
    expect(line(text, 'tollgate_http_request_duration_seconds_count{route="/v1/chat/completions"}')).toMatch(/ 3$/);
    // Cumulative buckets, as Prometheus reads them.
    expect(text).toContain('# TYPE tollgate_http_request_duration_seconds histogram');
    expect(line(text, 'tollgate_http_request_duration_seconds_bucket{le="0.001",route="/v1/chat/completions"}')).toMatch(/ 1$/);
    expect(line(text, 'tollgate_http_request_duration_seconds_bucket{le="0.0025",route="/v1/chat/completions"}')).toMatch(/ 2$/);
    expect(line(text, 'tollgate_http_request_duration_seconds_bucket{le="0.005",route="/v1/chat/completions"}')).toMatch(/ 3$/);
    expect(line(text, 'tollgate_http_request_duration_seconds_bucket{le="+Inf",route="/v1/chat/completions"}')).toMatch(/ 3$/);
    expect(Number(line(text, 'tollgate_http_request_duration_seconds_sum{route="/v1/chat/completions"}')!.split(' ')[1])).toBeCloseTo(0.006);
    expect(line(text, 'tollgate_credits_charged_total{model="gpt-4o-mini",surface="api",provider="openai"}')).toMatch(/ 5$/);
    expect(line(text, 'tollgate_tokens_total{model="gpt-4o-mini",direction="prompt"}')).toMatch(/ 24$/);
    expect(line(text, 'tollgate_tokens_total{model="gpt-4o-mini",direction="output"}')).toMatch(/ 7$/);
    expect(line(text, 'tollgate_settled_requests_total{model="gpt-4o-mini",surface="api",status="error"}')).toMatch(/ 1$/);

    // A second scrape with nothing new changes nothing; new increments add on.
    text = await m.registry.metrics();
    expect(line(text, 'tollgate_http_requests_total{route="/v1/chat/completions",status="200"}')).toMatch(/ 2$/);
    m.observeRecord(record({ credits: 3 }));
    m.observeRecord(record({ credits: 4, provider: 'backup' }));
    text = await m.registry.metrics();
    expect(line(text, 'tollgate_credits_charged_total{model="gpt-4o-mini",surface="api",provider="openai"}')).toMatch(/ 8$/);
    expect(line(text, 'tollgate_credits_charged_total{model="gpt-4o-mini",surface="api",provider="backup"}')).toMatch(/ 4$/);
  });

  it('tells apart the durations of LLM calls up to the 10-minute upstream limit, not only up to a minute', async () => {
    const m = new Metrics();
    // A reasoning model's stream (90 s), a long generation (4 min), one near upstream.totalTimeoutMs (9 min).
    for (const s of [90, 240, 540]) m.observeHttp('/v1/chat/completions', 200, s);
    const text = await m.registry.metrics();
    const bucket = (le: string) => Number(line(text, `tollgate_http_request_duration_seconds_bucket{le="${le}",route="/v1/chat/completions"}`)?.split(' ')[1]);
    expect(bucket('60')).toBe(0);
    expect(bucket('120')).toBe(1);
    expect(bucket('300')).toBe(2);
    expect(bucket('600')).toBe(3);
  });
});
