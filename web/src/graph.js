// The one drawing of a circuit graph (the attribution-graph document of reslens' graph_json,
// docs/graph.md): a layered SVG, a column per layer (tokens left, the target logit right), edge
// width by |weight|, blue positive and red negative. Used by the report and the explorer (bundled by
// web/build.mjs) and, as raw text, by the standalone page of `reslens graph --html` (graph_html),
// which every build writes even without node: so this file imports nothing and builds its DOM with
// createElementNS / textContent only (token texts never reach innerHTML).

const SVG = 'http://www.w3.org/2000/svg';
const COLUMN = 170;
const ROW = 30;
const LEFT = 40;
const TOP = 40;

// A node's column key: tokens (layer "E") first, then each layer, the logit (layer n_layers) last.
const columnOf = (n) => (n.layer === 'E' ? -1 : Number(n.layer));

function svgEl(name, attrs) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

export const signedFixed = (x, d = 5) => (x >= 0 ? '+' : '') + Number(x).toFixed(d);

/// The links into (dir 'in') or out of ('out') node `id`, largest |weight| first.
export function graphEdges(doc, id, dir) {
  return doc.links
    .filter((l) => (dir === 'in' ? l.target : l.source) === id)
    .sort((a, b) => Math.abs(b.weight) - Math.abs(a.weight));
}

/// Draws `doc` into `host` (replacing its content) as an <svg class="circuit">; a click on a node
/// marks it (class "sel") and calls onSelect(node_id). Returns the svg element.
export function drawGraph(host, doc, onSelect) {
  const columns = new Map();
  for (const n of doc.nodes) {
    const c = columnOf(n);
    if (!columns.has(c)) columns.set(c, []);
    columns.get(c).push(n);
  }
  const keys = [...columns.keys()].sort((a, b) => a - b);
  const xy = new Map();
  let rows = 1;
  keys.forEach((k, c) => {
    const members = columns.get(k);
    members.forEach((n, r) => xy.set(n.node_id, [LEFT + COLUMN * c, TOP + ROW * r]));
    rows = Math.max(rows, members.length);
  });
  const big = doc.links.reduce((m, l) => Math.max(m, Math.abs(l.weight)), 0);
  const byId = new Map(doc.nodes.map((n) => [n.node_id, n]));
  const svg = svgEl('svg', { class: 'circuit', width: LEFT * 2 + COLUMN * keys.length, height: TOP * 2 + ROW * rows });
  for (const l of doc.links) {
    const [x1, y1] = xy.get(l.source);
    const [x2, y2] = xy.get(l.target);
    const w = big > 0 ? 0.5 + (4 * Math.abs(l.weight)) / big : 1;
    const line = svgEl('line', {
      x1, y1, x2, y2,
      stroke: l.weight >= 0 ? '#2b6cb0' : '#c53030',
      'stroke-opacity': 0.55,
      'stroke-width': w.toFixed(2),
      'data-source': l.source,
      'data-target': l.target,
    });
    const title = svgEl('title', {});
    title.textContent = `${byId.get(l.source).clerp} -> ${byId.get(l.target).clerp}: ${signedFixed(l.weight, 6)}`;
    line.append(title);
    svg.append(line);
  }
  for (const n of doc.nodes) {
    const [x, y] = xy.get(n.node_id);
    const g = svgEl('g', { class: 'node', 'data-id': n.node_id, 'data-type': n.feature_type });
    g.append(svgEl('circle', { cx: x, cy: y, r: 6 }));
    const text = svgEl('text', { x: x + 9, y: y + 4 });
    text.textContent = n.clerp;
    g.append(text);
    g.addEventListener('click', () => {
      svg.querySelectorAll('.node').forEach((o) => o.classList.toggle('sel', o === g));
      if (onSelect) onSelect(n.node_id);
    });
    svg.append(g);
  }
  host.replaceChildren(svg);
  return svg;
}

/// The facts of node `id` the graph itself holds, as DOM: its kind, position, scores and its
/// incoming and outgoing edges. `extra` (a node or null) goes after the first line.
export function graphNodeDetails(doc, id, extra = null) {
  const byId = new Map(doc.nodes.map((n) => [n.node_id, n]));
  const n = byId.get(id);
  const box = document.createElement('div');
  box.className = 'graph-node';
  box.dataset.id = id;
  const h = document.createElement('h3');
  h.textContent = n.clerp;
  const p = document.createElement('p');
  p.textContent =
    n.feature_type === 'embedding'
      ? `input token at position ${n.ctx_idx} (id ${n.feature}), influence ${Number(n.influence).toFixed(5)}`
      : `${n.feature_type}, layer ${n.layer}, position ${n.ctx_idx}` +
        (n.score !== undefined ? `, score (log-prob increase) ${signedFixed(n.score)}` : '') +
        `, activation ${signedFixed(n.activation)}, influence ${Number(n.influence).toFixed(5)}`;
  box.append(h, p);
  if (extra) box.append(extra);
  for (const dir of ['in', 'out']) {
    const list = graphEdges(doc, id, dir);
    if (!list.length) continue;
    const t = document.createElement('h4');
    t.textContent = dir === 'in' ? 'from' : 'to';
    const ul = document.createElement('ul');
    ul.className = 'graph-edges';
    for (const l of list) {
      const o = byId.get(dir === 'in' ? l.source : l.target);
      const li = document.createElement('li');
      li.textContent = `${signedFixed(l.weight)}  ${o.clerp} (${o.feature_type})`;
      ul.append(li);
    }
    box.append(t, ul);
  }
  return box;
}
