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
  if (doc.unavailable || doc.error) {
    host.innerHTML = `<p class="note" data-part="circuit-state">No circuit for this prediction: ${esc(doc.unavailable || doc.error)}</p>`;
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
