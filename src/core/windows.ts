// Limit windows, keyed by their UTC calendar period (SPEC §2): a counter's key names its window,
// so a new day simply uses a new key — nothing resets by a job, and a stopped clock or a missed
// cron cannot leave yesterday's usage in force.

export type Window = 'minute' | 'hour' | 'day' | 'month' | 'lifetime';

export interface WindowSpan {
  /** Stable id of the period containing `now`, e.g. `d2026-11-25`. */
  id: string;
  /** Start of the next period, epoch ms; Infinity for lifetime. */
  endsAt: number;
}

// The last span computed per window kind: every request asks for the same few until the period
// turns, and building one formats a date.
const recent = new Map<Window, { startsAt: number; span: WindowSpan }>();

/** The period of `window` that contains `now`. The span returned is shared: do not change it. */
export function windowAt(window: Window, now: number): WindowSpan {
  const hit = recent.get(window);
  if (hit && now >= hit.startsAt && now < hit.span.endsAt) return hit.span;
  const span = Object.freeze(computeWindow(window, now));
  recent.set(window, { startsAt: startOf(window, now), span });
  return span;
}

function startOf(window: Window, now: number): number {
  const d = new Date(now);
  switch (window) {
    case 'minute':
      return Math.floor(now / 60_000) * 60_000;
    case 'hour':
      return Math.floor(now / 3_600_000) * 3_600_000;
    case 'day':
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
    case 'month':
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
    case 'lifetime':
      return Number.NEGATIVE_INFINITY;
  }
}

function computeWindow(window: Window, now: number): WindowSpan {
  const d = new Date(now);
  const iso = d.toISOString();
  switch (window) {
    case 'minute':
      return { id: `m${iso.slice(0, 16)}`, endsAt: Math.floor(now / 60_000) * 60_000 + 60_000 };
    case 'hour':
      return { id: `h${iso.slice(0, 13)}`, endsAt: Math.floor(now / 3_600_000) * 3_600_000 + 3_600_000 };
    case 'day':
      return { id: `d${iso.slice(0, 10)}`, endsAt: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1) };
    case 'month':
      return { id: `M${iso.slice(0, 7)}`, endsAt: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) };
    case 'lifetime':
      return { id: 'all', endsAt: Number.POSITIVE_INFINITY };
  }
}

/** OpenAI's reset header format: `1h2m3s`, `45s`, `120ms`. */
export function resetDuration(ms: number): string {
  if (!Number.isFinite(ms)) return 'never';
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  let s = Math.ceil(ms / 1000);
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${s}s`;
}
