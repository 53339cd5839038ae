import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { API_BASE, ApiError, api, toApiError } from '../api';
import { ShowMore, usePaged } from '../paged';
import { ErrorBox } from '../components/error-box';
import { fmt, fmtDate } from '../format';
import { useReloadOnReturn } from '../on-return';
import { seriesColor } from '../palette';
import type { Usage, UsageRecord, UsageRecordsPage } from '../types';

const DAYS = 30;

/**
 * The `n` UTC dates up to `today`, oldest first. `today` is the gateway's (Usage.day): the browser's
 * clock may be on another day (just past midnight, or a clock that is off), which showed "Today" as
 * 0 and the chart a day off from the days the gateway answered.
 */
function lastDays(n: number, today: string): string[] {
  const last = Date.parse(`${today}T00:00:00Z`);
  return Array.from({ length: n }, (_, i) => new Date(last - (n - 1 - i) * 86_400_000).toISOString().slice(0, 10));
}

/** The models of the period (sorted: each keeps its colour from day to day) and their credits per day. */
function seriesOf(usage: Usage, days: string[]): { label: string; data: number[] }[] {
  const models = [...new Set(usage.days.map((d) => d.model))].sort();
  return models.map((model) => ({
    label: model,
    data: days.map((day) => usage.days.filter((r) => r.day === day && r.model === model).reduce((s, r) => s + r.credits, 0)),
  }));
}

function UsageChart({ usage }: { usage: Usage }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const days = lastDays(DAYS, usage.day);
  const series = seriesOf(usage, days);
  useEffect(() => {
    let chart: { destroy(): void } | null = null;
    let cancelled = false;
    void import('../chart').then(({ stackedBars }) => {
      if (cancelled || !canvas.current) return;
      chart = stackedBars(canvas.current, days.map((d) => d.slice(5)), series);
    });
    return () => {
      cancelled = true;
      chart?.destroy();
    };
  }, [usage]);
  return html`<div class="chart-box">
      <canvas data-testid="usage-chart" ref=${canvas} role="img" aria-label="Credits per day over the last 30 days, stacked by model"></canvas>
    </div>
    ${series.length > 0 &&
    html`<ul class="chart-legend" data-testid="usage-legend" aria-label="Models, with their credits over the ${DAYS} days">
      ${series.map(
        (s, i) => html`<li key=${s.label}>
          <span class="swatch" style=${`background:${seriesColor(i)}`} aria-hidden="true"></span>
          <span class="legend-model">${s.label}</span>
          <span class="muted legend-total">${fmt(s.data.reduce((a, b) => a + b, 0))}</span>
        </li>`,
      )}
    </ul>`}`;
}

/** The requests, newest first, with "Show more" for the ones before them, a page at a time. */
function RecentRequests({ first, next: firstNext }: { first: UsageRecord[]; next: string | null }) {
  const paged = usePaged(first, firstNext, (before) =>
    api<UsageRecordsPage>('GET', `/usage/records?before=${encodeURIComponent(before)}`).then((p) => ({ items: p.records, next: p.next })),
  );
  const { items: records, error } = paged;
  if (records.length === 0) return html`<p class="muted">No requests yet.</p>`;
  return html`<div class="table-scroll"><table class="stack-table">
      <caption class="sr-only">The last ${records.length} requests</caption>
      <thead><tr>
        <th scope="col">Time</th><th scope="col">Model</th><th scope="col">Surface</th>
        <th scope="col" class="num">Tokens in / out</th><th scope="col" class="num">Credits</th><th scope="col">Status</th>
      </tr></thead>
      <tbody>
        ${records.map(
          (r, i) => html`<tr key=${r.requestId || i} data-testid="usage-row" data-surface=${r.surface}>
            <td data-label="Time">${fmtDate(r.createdAt)}</td>
            <td class="name-cell" data-label="Model">${r.model}</td>
            <td class="name-cell" data-label="Surface">${r.surface === 'playground' ? 'Playground' : html`API${r.keyName !== null && html` <span class="muted small" data-testid="usage-key">· ${r.keyName}</span>`}`}</td>
            <td class="num" data-label="Tokens in / out">${fmt(r.promptTokens)} / ${fmt(r.outputTokens)}</td>
            <td class="num" data-label="Credits">${fmt(r.credits)}</td>
            <td data-label="Status"><span class=${`status ${r.status === 'ok' ? 'status-ok' : 'status-bad'}`}>${r.status}${r.httpStatus && r.status !== 'ok' ? ` (${r.httpStatus})` : ''}</span></td>
          </tr>`,
        )}
      </tbody>
    </table></div>
    <${ErrorBox} error=${error} billingLink=${false} />
    <${ShowMore} paged=${paged} testId="usage-more" />`;
}

export function UsagePage() {
  const [usage, setUsage] = useState<Usage | null>(null);
  const [error, setError] = useState<ApiError | null>(null);

  const load = () => {
    api<Usage>('GET', `/usage?days=${DAYS}`)
      .then((u) => {
        setUsage(u);
        setError(null);
      })
      .catch((e) => setError(toApiError(e)));
  };
  useEffect(load, []);
  useReloadOnReturn(load);

  const todayRows = usage?.days.filter((d) => d.day === usage.day) ?? [];
  const sum = (rows: { credits: number; requests: number }[]) =>
    rows.reduce((a, r) => ({ credits: a.credits + r.credits, requests: a.requests + r.requests }), { credits: 0, requests: 0 });
  const totalToday = sum(todayRows);
  const total30 = sum(usage?.days ?? []);

  return html`
    <section class="page">
      <div class="page-head">
        <h1 tabindex="-1">Usage</h1>
        <p class="muted">Credits spent through the API and the Playground. Days are UTC.</p>
      </div>
      <${ErrorBox} error=${error} billingLink=${false} />
      ${!usage && !error && html`<p class="muted" role="status">Loading usage…</p>`}
      ${usage &&
      html`
        <div class="stats">
          <div class="card stat">
            <p class="stat-label">Today</p>
            <p class="stat-value" data-testid="usage-today">${fmt(totalToday.credits)} <span class="unit">credits</span></p>
            <p class="muted small">${fmt(totalToday.requests)} ${totalToday.requests === 1 ? 'request' : 'requests'}</p>
          </div>
          <div class="card stat">
            <p class="stat-label">Last ${DAYS} days</p>
            <p class="stat-value">${fmt(total30.credits)} <span class="unit">credits</span></p>
            <p class="muted small">${fmt(total30.requests)} ${total30.requests === 1 ? 'request' : 'requests'}</p>
          </div>
        </div>
        <div class="card">
          <h2>Credits per day, by model</h2>
          <${UsageChart} usage=${usage} />
        </div>
        <div class="card table-card">
          <div class="card-head">
            <h2>Recent requests</h2>
            <a class="btn btn-quiet btn-small" data-testid="usage-export" href=${`${API_BASE}/usage/export?days=${DAYS}`} download>
              Download CSV <span class="sr-only">of every request of the last ${DAYS} days</span>
            </a>
          </div>
          <${RecentRequests} first=${usage.records} next=${usage.next} />
        </div>
      `}
    </section>
  `;
}
