// chart.js with only what the usage chart needs registered (tree-shaken; loaded lazily).
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip } from 'chart.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

const PALETTE = ['#2563eb', '#16a34a', '#d97706', '#9333ea', '#dc2626', '#0891b2', '#db2777', '#65a30d', '#7c3aed', '#ea580c'];

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
        backgroundColor: PALETTE[i % PALETTE.length],
        borderWidth: 0,
      })),
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: 'index', intersect: false },
      plugins: {
        legend: { position: 'bottom', labels: { color: text, boxWidth: 12 } },
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
