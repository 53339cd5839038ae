const numberFormat = new Intl.NumberFormat('en-US');

export function fmt(n: number): string {
  return numberFormat.format(n);
}

export function fmtDate(iso: string | null | undefined, empty = '—'): string {
  if (!iso) return empty;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}
