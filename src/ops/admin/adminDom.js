/* global document */
// Formatting and DOM helpers of the admin page (docs/operations.md §4).

export const iso = (ms) => (ms === null || ms === undefined ? '-' : new Date(ms).toISOString());

export function ago(ms) {
  if (ms === null || ms === undefined) return '-';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

export function num(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '-';
  if (v >= 10_000) return `${(v / 1000).toFixed(v >= 100_000 ? 0 : 1)}k`;
  if (v >= 100 || Number.isInteger(v)) return String(Math.round(v));
  return v.toFixed(v >= 10 ? 0 : 1);
}

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== undefined && c !== null) e.append(c);
  return e;
}

/** A table cell with the label phones show in front of it (the header row is hidden there). */
export const td = (label, content, cls) => el('td', { 'data-label': label, class: cls }, content);

export const badge = (text, cls) => el('span', { class: `badge ${cls ?? ''}` }, text);

export const when = (ms) => el('span', { title: iso(ms) }, ago(ms));

/** JSON pretty-printed, its tokens in spans for colour (as text nodes: nothing in it is ever parsed as HTML). */
export function prettyJson(target, value) {
  const text = JSON.stringify(value, null, 2);
  const parts = [];
  let last = 0;
  const token =
    /("(?:\\u[a-fA-F0-9]{4}|\\[^u]|[^\\"])*")(\s*:)?|\b(true|false|null)\b|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;
  for (let m = token.exec(text); m; m = token.exec(text)) {
    parts.push(text.slice(last, m.index));
    const cls = m[1] ? (m[2] ? 'k' : 's') : m[3] ? 'l' : 'n';
    parts.push(el('span', { class: cls }, m[1] ?? m[0]));
    if (m[2]) parts.push(m[2]);
    // Epoch milliseconds (the protocol's timestamps) get their ISO time alongside.
    if (cls === 'n' && /^\d{13}$/.test(m[0])) {
      const end = text.indexOf('\n', token.lastIndex);
      const rest = text.slice(token.lastIndex, end === -1 ? undefined : end);
      parts.push(rest, el('span', { class: 'c' }, `  // ${iso(Number(m[0]))}`));
      token.lastIndex += rest.length;
    }
    last = token.lastIndex;
  }
  parts.push(text.slice(last));
  target.replaceChildren(...parts);
}

export function showJsonText(target, text, fallback) {
  if (text === null || text === undefined) {
    target.textContent = fallback;
    return;
  }
  try {
    prettyJson(target, JSON.parse(text));
  } catch {
    target.textContent = text;
  }
}
