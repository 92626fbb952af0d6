/* global document */
// The admin page's charts: plain SVG, drawn again on each refresh (docs/operations.md §4).
import { num } from './adminDom.js';

const SVG = 'http://www.w3.org/2000/svg';

/** 1, 2 or 5 times a power of ten, at least `v`. */
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((m) => m >= v);
}

function svgEl(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

const windowLabel = (ms) => (ms >= 60_000 ? `${ms / 60_000} min ago` : `${ms / 1000} s ago`);

/**
 * Draws `series` (each `{ values, color, dashed?, area? }`, values aligned with `times`) as lines, or as bars,
 * over the last `windowMs` (ending at the newest sample). A null value, or a missing sample, breaks the line.
 */
export function drawChart(svg, times, series, windowMs, { bars = false } = {}) {
  const w = Math.max(200, Math.round(svg.clientWidth || 320));
  const h = Math.max(100, Math.round(svg.clientHeight || 160));
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  const left = 40;
  const right = 6;
  const top = 8;
  const bottom = 18;
  const pw = w - left - right;
  const ph = h - top - bottom;
  const end = times.at(-1) ?? Date.now();
  const start = end - windowMs;
  const shown = times.map((t, i) => [t, i]).filter(([t]) => t > start);
  const max = niceMax(Math.max(0, ...series.flatMap((s) => shown.map(([, i]) => s.values[i] ?? 0))));
  const x = (t) => left + ((t - start) / windowMs) * pw;
  const y = (v) => top + ph - (v / max) * ph;
  const nodes = [];
  for (const f of [0, 0.5, 1]) {
    nodes.push(svgEl('line', { class: 'grid', x1: left, x2: w - right, y1: y(max * f), y2: y(max * f) }));
    const label = svgEl('text', { class: 'axis', x: left - 6, y: y(max * f) + 3, 'text-anchor': 'end' });
    label.textContent = num(max * f);
    nodes.push(label);
  }
  for (const [f, text, anchor] of [
    [0, windowLabel(windowMs), 'start'],
    [0.5, windowLabel(windowMs / 2), 'middle'],
    [1, 'now', 'end'],
  ]) {
    const label = svgEl('text', { class: 'axis', x: left + f * pw, y: h - 4, 'text-anchor': anchor });
    label.textContent = text;
    nodes.push(label);
  }
  if (shown.length < 2) {
    const wait = svgEl('text', {
      class: 'nodata',
      x: left + pw / 2,
      y: top + ph / 2,
      'text-anchor': 'middle',
    });
    wait.textContent = 'collecting samples…';
    nodes.push(wait);
  }
  const gap = 2.5 * ((times.at(-1) - times[0]) / Math.max(1, times.length - 1) || 1000);
  for (const s of series) {
    if (bars) {
      const bw = Math.max(2, (pw * gap) / 2.5 / windowMs - 1);
      for (const [t, i] of shown) {
        const v = s.values[i];
        if (!v) continue;
        nodes.push(
          svgEl('rect', {
            x: x(t) - bw,
            y: y(v),
            width: bw,
            height: top + ph - y(v),
            fill: s.color,
            rx: 1,
          }),
        );
      }
      continue;
    }
    let segment = [];
    const flush = () => {
      if (segment.length === 0) return;
      const d = segment
        .map(([px, py], k) => `${k === 0 ? 'M' : 'L'}${px.toFixed(1)},${py.toFixed(1)}`)
        .join('');
      if (s.area && segment.length > 1) {
        const base = (top + ph).toFixed(1);
        const closing = `L${segment.at(-1)[0].toFixed(1)},${base}L${segment[0][0].toFixed(1)},${base}Z`;
        nodes.push(svgEl('path', { class: 'area', d: d + closing, fill: s.color }));
      }
      if (segment.length === 1) {
        // A lone sample between gaps: a dot, or it would not show.
        nodes.push(svgEl('circle', { cx: segment[0][0], cy: segment[0][1], r: 2, fill: s.color }));
      } else {
        nodes.push(svgEl('path', { class: `line${s.dashed ? ' dashed' : ''}`, d, stroke: s.color }));
      }
      segment = [];
    };
    let previousT;
    for (const [t, i] of shown) {
      const v = s.values[i];
      if (v === null || v === undefined || (previousT !== undefined && t - previousT > gap)) flush();
      if (v !== null && v !== undefined) segment.push([x(t), y(v)]);
      previousT = t;
    }
    flush();
  }
  svg.replaceChildren(...nodes);
}
