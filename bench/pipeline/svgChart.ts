const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** One system's bars in the chart. */
export interface ChartRow {
  label: string;
  perSecond: number;
  /** Closed-loop p99, ms. */
  p99Ms: number;
  /** p99 of the open loop at half the closed loop's throughput, ms; absent when not measured. */
  p99HalfMaxMs?: number;
}

const COLORS = ['#3b7dd8', '#5fa35f', '#e08a2c', '#999999', '#b05cc0', '#c0504d'];

/**
 * A hand-written SVG of the headline: three panels of horizontal bars, one bar per system (same colour in each):
 * round trips per second, closed-loop p99, and p99 at half max (open loop).
 */
export function chartSvg(title: string, rows: readonly ChartRow[]): string {
  const width = 820;
  const labelWidth = 290;
  const barHeight = 18;
  const gap = 6;
  const panelHeight = rows.length * (barHeight + gap) + 34;
  const panels: Array<{ title: string; value: (r: ChartRow) => number | undefined; unit: string }> = [
    {
      title: 'round trips per second (closed loop, higher is better)',
      value: (r) => r.perSecond,
      unit: '/s',
    },
    { title: 'p99 latency, closed loop (lower is better)', value: (r) => r.p99Ms, unit: ' ms' },
    {
      title: 'p99 latency at half max, open loop (lower is better)',
      value: (r) => r.p99HalfMaxMs,
      unit: ' ms',
    },
  ];
  const height = 40 + panels.length * panelHeight;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="10" y="22" font-size="15">${esc(title)}</text>`,
  ];
  panels.forEach((panel, p) => {
    const top = 40 + p * panelHeight;
    const values = rows.map(panel.value);
    const max = Math.max(1e-9, ...values.filter((v): v is number => v !== undefined && Number.isFinite(v)));
    const scale = (width - labelWidth - 90) / max;
    parts.push(`<text x="10" y="${top + 14}" font-weight="bold">${esc(panel.title)}</text>`);
    rows.forEach((row, i) => {
      const y = top + 24 + i * (barHeight + gap);
      const v = values[i];
      parts.push(`<text x="${labelWidth - 8}" y="${y + 13}" text-anchor="end">${esc(row.label)}</text>`);
      if (v === undefined || !Number.isFinite(v)) {
        parts.push(`<text x="${labelWidth + 4}" y="${y + 13}" fill="#888">not measured</text>`);
        return;
      }
      const w = Math.max(1, v * scale);
      const text = v >= 100 ? v.toFixed(0) : v.toFixed(1);
      parts.push(
        `<rect x="${labelWidth}" y="${y}" width="${w.toFixed(1)}" height="${barHeight}" fill="${COLORS[i % COLORS.length]}"/>`,
        `<text x="${(labelWidth + w + 4).toFixed(1)}" y="${y + 13}">${text}${panel.unit}</text>`,
      );
    });
  });
  parts.push('</svg>');
  return parts.join('\n');
}
