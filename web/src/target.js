// A target of several tokens (the document of reslens' target_json, docs/explain.md): the answer as
// a token strip under the prompt. "summed" shows every level summed over the steps, each entry with
// its per-step scores (a cell per answer token, coloured by sign); a token shows its step's own
// report, the single-position report of renderReport.
import { esc, tokenInner, signed, pct, fixed } from './format.js';
import { renderReport } from './report.js';
import { disposeAll, signColor, layerStepHeatmap } from './charts.js';

const ROWS = 20;

function card(part, title, what, body) {
  return `<section class="card" data-part="${part}">
    <div class="card-head"><h2>${title}</h2></div>
    ${what ? `<p class="what">${what}</p>` : ''}
    ${body}
  </section>`;
}

// A score cell tinted by its sign and size relative to the table's largest |score|.
function cell(v, m) {
  // signColor is '#rrggbb': an alpha byte appended tints the cell (up to ~45% opaque).
  const alpha = Math.round(115 * Math.min(1, Math.abs(v) / m));
  const bg = v === 0 ? 'transparent' : signColor(v) + alpha.toString(16).padStart(2, '0');
  return `<td class="num" style="background:${bg}">${signed(v, 3)}</td>`;
}

// Rows {label, score, steps[]} as a table: the summed score, then one column per target token.
function stepTable(rows, tokens, firstColumn) {
  let m = 0;
  for (const r of rows) for (const v of r.steps) m = Math.max(m, Math.abs(v));
  m = m || 1;
  const head = tokens.map((t, i) => `<th class="num" title="step ${i}">${tokenInner(t.text)}</th>`).join('');
  const body = rows
    .map((r) => `<tr><td class="label">${esc(r.label)}</td><td class="num"><b>${signed(r.score, 4)}</b></td>${r.steps.map((v) => cell(v, m)).join('')}</tr>`)
    .join('');
  return `<div class="table-wrap"><table class="data"><tr><th>${firstColumn}</th><th class="num">summed</th>${head}</tr>${body}</table></div>`;
}

function plainTable(rows, firstColumn) {
  const body = rows.map((r) => `<tr><td class="label">${esc(r.label)}</td><td class="num">${signed(r.score, 4)}</td></tr>`).join('');
  return `<div class="table-wrap"><table class="data"><tr><th>${firstColumn}</th><th class="num">score</th></tr>${body}</table></div>`;
}

function summedHtml(data) {
  const s = data.summed;
  const tokens = data.target.tokens;
  const layers = [];
  for (const l of s.layers) {
    layers.push({ label: `L${l.layer} attn`, score: l.attn, steps: l.attn_steps });
    layers.push({ label: `L${l.layer} ffn`, score: l.ffn, steps: l.ffn_steps });
  }
  const what =
    'Each component’s log-probability increase of its step’s target token, summed over the steps (teacher forcing: step t reads the prompt and the target’s tokens before it). A component is one parameter at every step, so its summed score is its part in log p(target).';
  let html =
    card('summed-heatmap', 'Layers × answer tokens', 'Each layer’s attention + FFN log-probability increase of each step’s token (click a cell for that step’s report).', '<div class="chart" data-chart="layer-steps" style="height:' + Math.max(220, 26 * s.layers.length + 90) + 'px"></div>') +
    card('summed-layers', 'Layers × target tokens', what + ` The layers sum to ${signed(s.layer_sums.total, 4)} = the steps’ final − embedding log-probabilities (${signed(s.layer_sums.final_minus_embedding, 4)}).`, stepTable(layers, tokens, 'layer')) +
    card('summed-heads', 'Top heads', '', stepTable(s.top_heads.slice(0, ROWS), tokens, 'head')) +
    card('summed-ffn', 'Top FFN neurons', '', stepTable(s.ffn_neurons.slice(0, ROWS), tokens, 'neuron')) +
    card('summed-attn', 'Top attention neurons', 'Layer, head, dimension @ source position (positions after the prompt hold the target’s own tokens, read by the later steps).', stepTable(s.attn_neurons.slice(0, ROWS), tokens, 'neuron')) +
    card('summed-query', 'Query FFN neurons', 'The FFN neurons that activate the top attention value neurons, summed over the steps.', stepTable(s.query_ffn_neurons.slice(0, ROWS), tokens, 'neuron'));
  if (s.contrast) {
    html += card(
      'summed-contrast',
      'Contrast with the foil',
      `The same scores for ${esc(s.contrast.measure)} (${signed(s.contrast.log_prob, 4)}).`,
      `<div class="grid-2">${plainTable(s.contrast.ffn_neurons.slice(0, ROWS), 'FFN neuron')}${plainTable(s.contrast.attn_neurons.slice(0, ROWS), 'attention neuron')}</div>`,
    );
  }
  return html;
}

export function renderTarget(root, data, ctx = {}) {
  const heads = ctx.heads || [];
  const tokens = data.target.tokens;
  const prompt = data.prompt.map((t, i) => `<span class="tok" title="position ${i}, id ${t.id}">${tokenInner(t.text)}<sub>${i}</sub></span>`).join('');
  const steps = tokens
    .map(
      (t, i) =>
        `<button class="tok step target" data-step="${i}" title="step ${i}: position ${t.position}, id ${t.id}, rank ${t.rank}">${tokenInner(t.text)}<sub>${pct(t.prob)}</sub></button>`,
    )
    .join('');
  const foil = data.foil
    ? `<div class="stat"><div class="k">foil</div><div class="v mono">${esc(data.foil.text)}<small>log p ${fixed(data.foil.log_prob, 3)}</small></div></div>`
    : '';
  const g = data.generated;
  const stop = g ? { end_of_turn: `ended its turn${g.stop_token ? ' (' + esc(g.stop_token.text) + ')' : ''}`, max_tokens: 'reached the token limit', context: 'filled the context window' }[g.stop] : '';
  root.innerHTML = `${card(
    'target-strip',
    g ? `Answer of ${tokens.length} tokens, generated by the model` : `Target of ${tokens.length} tokens`,
    'Click a token for its step’s report, or “summed” for every level summed over the steps.',
    `<div class="prompt" data-part="prompt">${prompt}<span class="arrow">→</span>${steps}<button class="tok step on" data-step="all">summed</button></div>
     <div class="stats">
       <div class="stat"><div class="k">target</div><div class="v mono">${esc(data.target.text)}<small>${tokens.length} tokens</small></div></div>
       <div class="stat"><div class="k">log p(target)</div><div class="v">${fixed(data.target.log_prob, 3)}<small>p = ${pct(data.target.prob)}</small></div></div>
       ${foil}
       ${g ? `<div class="stat"><div class="k">generated</div><div class="v">${g.temperature === 0 ? 'greedy' : 'temperature ' + fixed(g.temperature, 2) + ', seed ' + g.seed}<small>${stop}</small></div></div>` : ''}
     </div>`,
  )}<div data-part="step"></div>`;
  const body = root.querySelector('[data-part="step"]');
  const buttons = [...root.querySelectorAll('[data-step]')];
  const show = (which) => {
    for (const b of buttons) b.classList.toggle('on', b.dataset.step === String(which));
    disposeAll(body);
    if (which === 'all') {
      body.innerHTML = summedHtml(data);
      const el = body.querySelector('[data-chart="layer-steps"]');
      if (el) layerStepHeatmap(el, data.summed.layers, tokens, (t) => setTimeout(() => show(t), 0));
    } else renderReport(body, data.steps[which], { heads: heads[which] || null });
  };
  for (const b of buttons) b.addEventListener('click', () => show(b.dataset.step === 'all' ? 'all' : Number(b.dataset.step)));
  show('all');
}
