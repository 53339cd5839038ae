// chart.js with only what the usage chart needs registered (tree-shaken; loaded lazily).
// Its legend is the page's own HTML list (pages/usage.ts): drawn on the canvas, a long model id
// was cut at the canvas's edge on a phone, and screen readers could not read it.
import { BarController, BarElement, CategoryScale, Chart, LinearScale, Tooltip } from 'chart.js';
import { seriesColor } from './palette';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip);

export interface Series {
  label: string;
  data: number[];
}

export function stackedBars(canvas: HTMLCanvasElement, labels: string[], series: Series[]): Chart<'bar'> {
  const dark = matchMedia('(prefers-color-scheme: dark)').matches;
  const text = dark ? '#cbd5e1' : '#334155';
  const grid = dark ? 'rgba(148,163,184,0.2)' : 'rgba(100,116,139,0.15)';
  return new Chart(canvas, {
    type: 'bar',
    data: {
      labels,
      datasets: series.map((s, i) => ({
        label: s.label,
        data: s.data,
        backgroundColor: seriesColor(i),
        borderWidth: 0,
      })),
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: 'index', intersect: false },
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: { label: (ctx) => `${ctx.dataset.label ?? ''}: ${Number(ctx.parsed.y).toLocaleString('en-US')} credits` },
        },
      },
      scales: {
        x: { stacked: true, ticks: { color: text, maxRotation: 0, autoSkip: true }, grid: { display: false } },
        y: { stacked: true, beginAtZero: true, ticks: { color: text }, grid: { color: grid }, title: { display: true, text: 'credits', color: text } },
      },
    },
  });
}
