// The usage chart's series colours, shared by the chart (loaded lazily with chart.js) and the
// legend the page draws itself in HTML.
export const PALETTE = ['#2563eb', '#16a34a', '#d97706', '#9333ea', '#dc2626', '#0891b2', '#db2777', '#65a30d', '#7c3aed', '#ea580c'];

export const seriesColor = (i: number): string => PALETTE[i % PALETTE.length]!;
