const numberFormat = new Intl.NumberFormat('en-US');

export function fmt(n: number): string {
  return numberFormat.format(n);
}

export function fmtDate(iso: string | null | undefined, empty = '—', time = true): string {
  if (!iso) return empty;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, time ? { dateStyle: 'medium', timeStyle: 'short' } : { dateStyle: 'medium' });
}
