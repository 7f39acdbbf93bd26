// Text and number formatting shared by the report and the explorer. Everything that reaches
// innerHTML passes through esc() (token texts come from the model's vocabulary and can hold
// any characters, "</script>" included).

export function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

// A token with its whitespace made visible: spaces as faint dots, newlines and tabs as arrows.
export function tokenInner(text) {
  if (text === '') return '<span class="ws">∅</span>';
  return esc(text)
    .replace(/ /g, '<span class="ws">·</span>')
    .replace(/\n/g, '<span class="ws">⏎</span>')
    .replace(/\t/g, '<span class="ws">⇥</span>')
    .replace(/\r/g, '<span class="ws">␍</span>');
}

export function tokenHtml(text, cls = '') {
  const title = text.length > 14 ? ` title="${esc(text)}"` : '';
  return `<span class="tok${cls ? ' ' + cls : ''}"${title}>${tokenInner(text)}</span>`;
}

export function tokenList(texts, n = texts.length, highlight = null) {
  return `<span class="toks">${texts
    .slice(0, n)
    .map((t) => tokenHtml(t, highlight !== null && t === highlight ? 'hit' : ''))
    .join('')}</span>`;
}

// Token text for a tooltip or axis label: quoted, whitespace visible, plain text.
export function tokenPlain(text) {
  return "'" + text.replace(/\n/g, '⏎').replace(/\t/g, '⇥') + "'";
}

// |v| with `digits` decimals; values too small for them keep two significant digits (0.0072,
// and 1.2e-7 once below 1e-4).
function magnitude(a, digits) {
  if (a === 0 || a >= Math.pow(10, -digits)) return a.toFixed(digits);
  return a >= 1e-4 ? a.toPrecision(2) : a.toExponential(1);
}

export function signed(v, digits = 3) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  return (v > 0 ? '+' : v < 0 ? '−' : '') + magnitude(Math.abs(v), digits);
}

export function fixed(v, digits = 3) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  return (v < 0 ? '−' : '') + magnitude(Math.abs(v), digits);
}

export function pct(p) {
  if (p === null || p === undefined) return '–';
  const v = 100 * p;
  if (v >= 10) return v.toFixed(1) + '%';
  if (v >= 0.01) return v.toFixed(2) + '%';
  if (v >= 0.0001) return v.toPrecision(2) + '%';
  if (v === 0) return '0%';
  return v.toExponential(1) + '%';
}

// Labels every view uses (the same as the library's label_* functions).
export const labelLayer = (l, ffn) => `L${l} ${ffn ? 'ffn' : 'attn'}`;
export const labelHead = (l, h) => `L${l}H${h}`;
export const labelNeuron = (l, n) => `L${l}N${n}`;
export const labelAttnNeuron = (l, h, d, p) => `L${l}H${h}D${d}@${p}`;

// "emb", "a3", "f3" (lens points and query-layer slots) -> "emb", "L3 attn", "L3 ffn".
export function pointLabel(label) {
  if (label === 'emb') return 'emb';
  const m = /^([af])(\d+)$/.exec(label);
  return m ? labelLayer(Number(m[2]), m[1] === 'f') : label;
}

export function maxAbs(values) {
  let m = 0;
  for (const v of values) if (Math.abs(v) > m) m = Math.abs(v);
  return m || 1;
}
