// A target of several tokens (the document of reslens' target_json, docs/explain.md): the answer as
// a token strip under the prompt. "summed" shows every level summed over the steps, each entry with
// its per-step scores (a cell per answer token, coloured by sign); a token shows its step's own
// report, the single-position report of renderReport. streamTarget() draws the same strip while
// `reslens serve` is still explaining the answer: the steps explained so far open their reports, the
// others wait (pending), and the finished document then becomes renderTarget's page.
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

// The prompt's tokens as the strip's first part.
function promptHtml(prompt) {
  return prompt.map((t, i) => `<span class="tok" title="position ${i}, id ${t.id}">${tokenInner(t.text)}<sub>${i}</sub></span>`).join('');
}

// An answer token of the strip: a button that opens step i's report, or, while the step is not
// explained yet (`t.pending`), a disabled one with the token's text when it is known.
function stepButton(t, i) {
  if (t.pending) {
    const text = t.text === null ? '<span class="ws">…</span>' : tokenInner(t.text);
    return `<button class="tok step target pending" data-step="${i}" disabled title="step ${i}: not explained yet">${text}<sub>…</sub></button>`;
  }
  return `<button class="tok step target" data-step="${i}" title="step ${i}: position ${t.position}, id ${t.id}, rank ${t.rank}">${tokenInner(t.text)}<sub>${pct(t.prob)}</sub></button>`;
}

// The strip: prompt → answer tokens, then "summed" (which needs every step, so it waits for them).
function stripHtml(prompt, tokens, allDone) {
  return `${promptHtml(prompt)}<span class="arrow">→</span>${tokens.map(stepButton).join('')}<button class="tok step" data-step="all"${allDone ? '' : ' disabled title="every step is needed for the sums"'}>summed</button>`;
}

// Marks the strip's button of `which` (a step index or 'all') as the one on view.
function markShown(root, which) {
  for (const b of root.querySelectorAll('[data-step]')) b.classList.toggle('on', b.dataset.step === String(which));
}

/// The page of a finished target document. ctx.heads: the report file's per-step head arrays;
/// ctx.show: what opens first (a step index, default 'all': the summed scores).
export function renderTarget(root, data, ctx = {}) {
  const heads = ctx.heads || [];
  const tokens = data.target.tokens;
  const foil = data.foil
    ? `<div class="stat"><div class="k">foil</div><div class="v mono">${esc(data.foil.text)}<small>log p ${fixed(data.foil.log_prob, 3)}</small></div></div>`
    : '';
  const g = data.generated;
  const stop = g ? { end_of_turn: `ended its turn${g.stop_token ? ' (' + esc(g.stop_token.text) + ')' : ''}`, max_tokens: 'reached the token limit', context: 'filled the context window' }[g.stop] : '';
  disposeAll(root);
  root.innerHTML = `${card(
    'target-strip',
    g ? `Answer of ${tokens.length} tokens, generated by the model` : `Target of ${tokens.length} tokens`,
    'Click a token for its step’s report, or “summed” for every level summed over the steps.',
    `<div class="prompt" data-part="prompt">${stripHtml(data.prompt, tokens, true)}</div>
     <div class="stats">
       <div class="stat"><div class="k">target</div><div class="v mono">${esc(data.target.text)}<small>${tokens.length} tokens</small></div></div>
       <div class="stat"><div class="k">log p(target)</div><div class="v">${fixed(data.target.log_prob, 3)}<small>p = ${pct(data.target.prob)}</small></div></div>
       ${foil}
       ${g ? `<div class="stat"><div class="k">generated</div><div class="v">${g.temperature === 0 ? 'greedy' : 'temperature ' + fixed(g.temperature, 2) + ', seed ' + g.seed}<small>${stop}</small></div></div>` : ''}
     </div>`,
  )}<div data-part="step"></div>`;
  root.querySelector('[data-part="target-strip"]').dataset.state = 'done';
  const body = root.querySelector('[data-part="step"]');
  const buttons = [...root.querySelectorAll('[data-step]')];
  const show = (which) => {
    markShown(root, which);
    disposeAll(body);
    if (which === 'all') {
      body.innerHTML = summedHtml(data);
      const el = body.querySelector('[data-chart="layer-steps"]');
      if (el) layerStepHeatmap(el, data.summed.layers, tokens, (t) => setTimeout(() => show(t), 0));
    } else renderReport(body, data.steps[which], { heads: heads[which] || null });
  };
  for (const b of buttons) b.addEventListener('click', () => show(b.dataset.step === 'all' ? 'all' : Number(b.dataset.step)));
  show(ctx.show !== undefined && ctx.show !== 'all' && data.steps[ctx.show] ? ctx.show : 'all');
}

/// An answer while `reslens serve` explains it (docs/report.md, "Jobs and progress"): add() takes
/// the streamed step lines ({"kind": "step", "step": t, "explanation": ...}) in order and redraws
/// the strip, a click on an explained token shows its step's report at once (renderReport, as the
/// finished page does), the others stay pending; finish(doc) draws renderTarget's page, keeping the
/// step on view; fail(message) ends the progress line with the error.
export function streamTarget(root) {
  const docs = [];  // the explanations of steps 0, 1, ... in order
  let shown = null;  // the step on view, or null
  disposeAll(root);
  root.innerHTML = `${card('target-strip', 'Answer, explained as it streams', 'Click an explained token for its step’s report; the dimmed ones are still being explained. The sums over the steps follow when every step is done.', '<div class="prompt" data-part="prompt"></div><div class="progress" data-part="progress"></div>')}<div data-part="step"></div>`;
  const strip = root.querySelector('[data-part="target-strip"]');
  const promptEl = root.querySelector('[data-part="prompt"]');
  const progressEl = root.querySelector('[data-part="progress"]');
  const body = root.querySelector('[data-part="step"]');
  strip.dataset.state = 'streaming';

  // Every step's document holds the whole teacher-forced pass: the prompt and the answer but its
  // last token. Step t is explained at position P + t (P: the prompt's last position) and its token
  // is tokens[P + t + 1], so the first document gives the answer's length m = tokens.length - P and
  // every pending token's text but the last one's.
  const total = () => docs[0].tokens.length - docs[0].position;
  const tokenOf = (t) => {
    const e = docs[t];
    if (e) return { id: e.target.id, text: e.target.text, position: e.position, prob: e.target.prob, rank: e.target.rank };
    const k = docs[0].position + t + 1;
    return { pending: true, text: k < docs[0].tokens.length ? docs[0].tokens[k].text : null };
  };
  const progress = () => (docs.length ? `step ${docs.length} of ${total()} explained` : 'waiting for the first step');
  const draw = () => {
    const P = docs[0].position;
    const tokens = Array.from({ length: total() }, (_, t) => tokenOf(t));
    promptEl.innerHTML = stripHtml(docs[0].tokens.slice(0, P + 1), tokens, false);
    if (shown !== null) markShown(root, shown);
    progressEl.innerHTML = `<progress max="${total()}" value="${docs.length}"></progress> ${progress()}`;
    strip.dataset.steps = String(docs.length);
    strip.dataset.total = String(total());
  };
  promptEl.addEventListener('click', (e) => {
    const b = e.target.closest('button[data-step]');
    if (!b || b.disabled || b.dataset.step === 'all') return;
    shown = Number(b.dataset.step);
    markShown(root, shown);
    disposeAll(body);
    renderReport(body, docs[shown], {});
  });
  return {
    add(lines) {
      for (const line of lines) {
        if (line.step !== docs.length) throw new Error(`the server sent step ${line.step} where step ${docs.length} was due`);
        docs.push(line.explanation);
      }
      if (docs.length) draw();
    },
    progress,
    steps: () => docs.length,
    finish(data) {
      renderTarget(root, data, { show: shown === null ? 'all' : shown });
    },
    fail(message) {
      strip.dataset.state = 'failed';
      progressEl.innerHTML = `${docs.length ? progress() + '; ' : ''}<span class="err">stopped: ${esc(message)}</span>`;
    },
  };
}
