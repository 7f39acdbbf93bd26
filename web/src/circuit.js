// The report's "circuit" section: the graph of reslens' graph_json (docs/graph.md) drawn by
// graph.js, and a click on a node shows its explanation: for a neuron or head, its scores from the
// explain document on the page (the report's own entry, found by its label, or the head's score in
// the heads grid) and its edges; for a token, its position in the prompt.
import { drawGraph, graphNodeDetails, signedFixed } from './graph.js';
import { esc } from './format.js';

// The report's entries for a graph node: [what, entry] pairs from the explain document.
function reportEntries(data, n) {
  const out = [];
  const find = (list, what) => {
    const e = (list || []).find((x) => x.label === n.clerp);
    if (e) out.push([what, e]);
  };
  if (n.feature_type === 'mlp neuron' || n.feature_type === 'mlp neuron (query)') {
    find(data.ffn_neurons, 'FFN value neuron');
    find(data.query_ffn_neurons, 'query FFN neuron');
  } else if (n.feature_type === 'attention neuron') {
    find(data.attn_neurons, 'attention value neuron');
  }
  return out;
}

function explanationOf(data, doc, n) {
  const box = document.createElement('div');
  box.className = 'graph-explain';
  const lines = [];
  if (n.feature_type === 'embedding') {
    const t = data.tokens[n.ctx_idx];
    lines.push(`the input token at position ${n.ctx_idx}` + (t ? ` (id ${t.id}) of the ${data.tokens.length}-token prompt` : ''));
  } else if (n.feature_type === 'logit') {
    lines.push(`the target's log-probability: ${signedFixed(data.target.log_prob ?? n.score ?? 0)} (rank ${data.target.rank})`);
  } else if (n.feature_type === 'attention head') {
    const m = /^L(\d+)H(\d+)$/.exec(n.clerp);
    if (m && data.heads[Number(m[1])]) lines.push(`head score in this report (Δ log p): ${signedFixed(data.heads[Number(m[1])][Number(m[2])])}`);
  } else {
    const found = reportEntries(data, n);
    for (const [what, e] of found) {
      lines.push(`${what} in this report: score ${signedFixed(e.score)}` + (e.coef !== undefined ? `, coefficient ${signedFixed(e.coef)}` : ''));
    }
    if (!found.length) lines.push(`not among this report's top neurons`);
  }
  for (const l of lines) {
    const p = document.createElement('p');
    p.className = 'graph-report';
    p.textContent = l;
    box.append(p);
  }
  return box;
}

/// Fills `host` with the circuit of `doc` (graph_json's document, or {unavailable: reason}, or null
/// while it is being built) for the explanation `data`.
export function renderCircuit(host, doc, data) {
  if (!doc) {
    host.innerHTML = '<p class="muted" data-part="circuit-state">building the circuit…</p>';
    return;
  }
  if (doc.unavailable) {
    host.innerHTML = `<p class="note" data-part="circuit-state">No circuit for this prediction: ${esc(doc.unavailable)}</p>`;
    return;
  }
  if (doc.error) {  // the server's answer to a request the explorer made (a bad share, an empty pruning)
    host.innerHTML = `<p class="note err" data-part="circuit-state" data-error="1">${esc(doc.error)}</p>`;
    return;
  }
  const M = doc.metadata.generation_settings;
  host.innerHTML = `<p class="muted" data-part="circuit-state">${doc.nodes.length} nodes and ${doc.links.length} edges (of ${M.nodes_before_pruning} and ${M.edges_before_pruning} before pruning at node share ${doc.metadata.pruning_settings.node_threshold}, edge share ${doc.metadata.pruning_settings.edge_threshold}). Click a node.</p>
    <div class="circuit-wrap"><div class="circuit-svg" data-part="circuit-svg"></div><div class="circuit-detail" data-part="circuit-detail"></div></div>`;
  const detail = host.querySelector('[data-part="circuit-detail"]');
  drawGraph(host.querySelector('[data-part="circuit-svg"]'), doc, (id) => {
    const n = doc.nodes.find((x) => x.node_id === id);
    detail.replaceChildren(graphNodeDetails(doc, id, explanationOf(data, doc, n)));
  });
}

// One pruning share of the explorer's controls: a slider and a number box over [0, 1], kept in step.
// The number box takes any number, so a value outside [0, 1] reaches the server, whose error is shown.
function shareControl(name, label, title) {
  return `<label class="share" title="${title}">${label}<input type="range" min="0" max="1" step="0.01" data-share="${name}"><input type="number" min="0" max="1" step="0.01" name="${name}" placeholder="default"></label>`;
}

/// The explorer's circuit: node-share and edge-share controls above the drawing; applying them (the
/// button, Enter in a box, or releasing a slider) asks `fetchGraph({node_threshold, edge_threshold})`
/// (POST /api/graph) for the graph pruned so, and draws it, or the server's error in its place. A
/// reply that a newer request overtook is dropped. Returns load(shares) for the first drawing ({}:
/// the server's defaults, which then fill the controls) and show(doc) to draw a document as it is.
export function liveCircuit(host, data, fetchGraph) {
  host.innerHTML = `<div class="circuit-controls" data-part="circuit-controls">
      ${shareControl('node_threshold', 'node share', 'keep the nodes that carry this share of the total influence (0..1)')}
      ${shareControl('edge_threshold', 'edge share', 'keep the edges that carry this share of the total |weight| (0..1)')}
      <button class="btn ghost" type="button" data-part="circuit-apply">Redraw</button>
    </div><div data-part="circuit-drawing"></div>`;
  const body = host.querySelector('[data-part="circuit-drawing"]');
  const boxes = Object.fromEntries([...host.querySelectorAll('input[type="number"]')].map((b) => [b.name, b]));
  const sliders = Object.fromEntries([...host.querySelectorAll('input[type="range"]')].map((r) => [r.dataset.share, r]));
  let asked = 0;
  let answered = 0;  // replies received, drawn or dropped (data-replies: the tests wait on it)
  const received = () => (host.dataset.replies = String(++answered));
  const load = (shares) => {
    const mine = ++asked;
    host.dataset.state = 'loading';
    renderCircuit(body, null, data);
    return fetchGraph(shares).then(
      (doc) => {
        received();
        if (mine !== asked) return;
        const p = doc.metadata && doc.metadata.pruning_settings;
        for (const name of Object.keys(boxes)) {
          if (p && p[name] !== undefined) {
            boxes[name].value = String(p[name]);
            sliders[name].value = String(p[name]);
          }
        }
        renderCircuit(body, doc, data);
        host.dataset.state = 'ready';
      },
      (e) => {
        received();
        if (mine !== asked) return;
        renderCircuit(body, { error: e.message }, data);
        host.dataset.state = 'error';
      },
    );
  };
  // The shares typed: numbers as typed (the server checks the range), an empty box its default.
  const shares = () => {
    const out = {};
    for (const [name, b] of Object.entries(boxes)) if (b.value.trim() !== '') out[name] = Number(b.value);
    return out;
  };
  host.querySelector('[data-part="circuit-apply"]').addEventListener('click', () => load(shares()));
  for (const [name, b] of Object.entries(boxes)) {
    b.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') load(shares());
    });
    sliders[name].addEventListener('input', () => (b.value = sliders[name].value));
    sliders[name].addEventListener('change', () => load(shares()));
  }
  return { load, show: (doc) => renderCircuit(body, doc, data) };
}
