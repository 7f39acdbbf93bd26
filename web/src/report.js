// Renders one explanation (the document of reslens' explain_json, docs/explain-schema.json) as the
// report's cards. Used by the self-contained HTML report and by the explorer of `reslens serve`,
// which passes `api` to fetch what the report file does not carry (any head's token views, any
// neuron's vocabulary projection, query neurons and ablation).
import {
  esc,
  tokenHtml,
  tokenInner,
  tokenList,
  tokenPlain,
  signed,
  fixed,
  pct,
  labelHead,
  pointLabel,
  maxAbs,
} from './format.js';
import {
  layerChart,
  headHeatmap,
  headPositionChart,
  countChart,
  slotChart,
  rankedBars,
  lensChart,
  signColor,
  disposeAll,
  markHead,
  KIND,
} from './charts.js';
import { renderCircuit, liveCircuit } from './circuit.js';

const PAGE_ROWS = 50;

function card(part, title, what, body, extraHead = '') {
  return `<section class="card" data-part="${part}">
    <div class="card-head"><h2>${title}</h2>${extraHead}</div>
    ${what ? `<p class="what">${what}</p>` : ''}
    ${body}
  </section>`;
}

function scoreCell(v, m) {
  const w = Math.min(100, (100 * Math.abs(v)) / m);
  return `<div class="scorebar"><span>${signed(v, 4)}</span><span class="track"><span class="fill" style="width:${w.toFixed(1)}%;background:${signColor(v)}"></span></span></div>`;
}

function tokValList(list, highlight) {
  if (!list || !list.length) return '<span class="muted">–</span>';
  return `<div class="tokvals">${list
    .map(
      (t) =>
        `<div>${tokenHtml(t.text, t.text === highlight ? 'hit' : '')}<span class="muted">${t.value === undefined ? '' : fixed(t.value, 3)}</span></div>`,
    )
    .join('')}</div>`;
}

export function renderReport(root, data, ctx = {}) {
  disposeAll(root);
  const api = ctx.api || null;
  const fullHeads = ctx.heads || null;
  const M = data.model;
  const L = M.n_layers;
  const H = M.n_heads;
  const target = data.target;
  const targetText = target.text;
  const hasContrast = !!data.contrast;
  const st = {
    measure: 'target',
    head: data.top_heads.length ? { l: data.top_heads[0].layer, h: data.top_heads[0].head } : { l: 0, h: 0 },
    tab: 'ffn',
    shown: PAGE_ROWS,
    selected: null,
    variant: Object.keys(data.query_layers.ffn_value_neurons.variants)[0] || null,
  };
  const measureName = () => (st.measure === 'contrast' ? 'Δ (log p target − log p foil)' : 'Δ log p(target)');

  // ---------------- the skeleton ----------------
  const toks = data.tokens
    .map((t, i) => {
      const cls = i === data.position ? 'explained' : i > data.position ? 'after' : '';
      return `<span class="tok ${cls}" title="position ${i}, id ${t.id}">${tokenInner(t.text)}<sub>${i}</sub></span>`;
    })
    .join('');
  const foil = data.foil ? `<span class="arrow">vs</span><span class="tok foil" title="foil, id ${data.foil.id}">${tokenInner(data.foil.text)}</span>` : '';
  const sums = data.layer_sums;
  const summary = card(
    'summary',
    'Prediction',
    '',
    `<div class="prompt" data-part="prompt">${toks}<span class="arrow">→</span><span class="tok target" title="target, id ${target.id}">${tokenInner(targetText)}</span>${foil}</div>
     <div class="stats">
       <div class="stat"><div class="k">target</div><div class="v mono">${esc(tokenPlain(targetText))}<small>id ${target.id}</small></div></div>
       <div class="stat"><div class="k">probability</div><div class="v">${pct(target.prob)}<small>rank ${target.rank}</small></div></div>
       <div class="stat"><div class="k">log p under frozen norm</div><div class="v">${fixed(target.bs_log_prob_embedding, 2)} → ${fixed(target.bs_log_prob, 2)}<small>embedding → final</small></div></div>
       <div class="stat"><div class="k">attention layers</div><div class="v" style="color:${signColor(sums.attn)}">${signed(sums.attn, 3)}</div></div>
       <div class="stat"><div class="k">FFN layers</div><div class="v" style="color:${signColor(sums.ffn)}">${signed(sums.ffn, 3)}</div></div>
       ${data.foil ? `<div class="stat"><div class="k">foil</div><div class="v mono">${esc(tokenPlain(data.foil.text))}<small>id ${data.foil.id}</small></div></div>` : ''}
     </div>`,
  );
  const measureSeg = hasContrast
    ? `<div class="seg" data-part="measure"><button data-m="target" class="on">log p(target)</button><button data-m="contrast">target − foil</button></div>`
    : '';
  const legend = `<div class="legend-line"><span>lowers the target</span><span class="scale-bar"></span><span>raises it</span></div>`;

  root.innerHTML = `
    ${summary}
    <div class="grid-2 row-gap">
      ${card('layers', 'Layers', 'How much each attention and FFN layer raises the log-probability of the target when added to the residual stream before it (log p(w | x + v) − log p(w | x), final norm frozen). Both panels share one scale.', '<div class="chart tall" data-chart="layers"></div>', measureSeg)}
      ${card('heads', 'Attention heads', 'Each head’s importance, layers down and heads across; hover for the value, click a cell for its source positions.', `${legend}<div class="chart tall" data-chart="heads"></div>`)}
    </div>
    ${card('head-positions', 'Head by source position', 'The selected head’s score split by the source position it reads from (bars), and how much the explained position attends there (line). The table lists, per position, the top tokens of the head’s layer input, of the key (earlier attention outputs at that position) and of the value it writes.', '<div class="tabs" data-part="head-tabs"></div><div class="chart" data-chart="head-positions"></div><div data-part="head-table"></div>')}
    ${card('neurons', 'Neurons', 'The top value neurons: FFN neurons (their subvalue m·fc2 added to the stream) and attention neurons (one head dimension at one source position), and the query FFN neurons that activate the top attention neurons. Click a row for its vocabulary projection' + (api ? ', its query neurons and an ablation.' : '.'), '<div class="tabs" data-part="neuron-tabs"></div><div class="table-wrap" data-part="neuron-table"></div><div data-part="neuron-detail"></div>')}
    ${'graph' in ctx ? card('circuit', 'Circuit', 'The prediction’s circuit (reslens graph): input tokens left, a column per layer, the target logit right; value neurons and heads with their log-probability increase as edges to the logit, query neurons with their inner-product share of the value neurons they activate. Edge width by |weight|, blue raises, red lowers. Click a node for its explanation.', '<div data-part="circuit-body"></div>') : ''}
    <div class="grid-2 row-gap">
      ${card('hist-value', 'Value neurons per layer', `Layers of the top ${data.histograms.size} FFN and attention value neurons.`, '<div class="chart short" data-chart="hist-value"></div>')}
      ${card('hist-query', 'Query neurons per layer', `Layers of the top ${data.histograms.size} query FFN neurons, split into those that are also top value neurons (query-value) and those that are not (query-only).`, '<div class="chart short" data-chart="hist-query"></div>')}
    </div>
    ${card('query', 'Query flow', `Which lower layers activate the top ${data.query_layers.ffn_value_neurons.top_n} value neurons: each slot’s share of the neurons’ activation, weighted by their importance. Right: the FFN neurons that activate the top attention value neurons the most.`, `
      <div class="grid-2">
        <div><div class="legend-line" data-part="variant"></div><div class="chart short" data-chart="query-ffn"></div></div>
        <div><div class="legend-line">attention value neurons (at their source position)<span class="muted" data-part="avg-layer"></span></div><div class="chart short" data-chart="query-attn"></div></div>
      </div>
      <h3 style="font-size:13px;margin:14px 0 4px">Top query FFN neurons</h3>
      <div class="chart short" data-chart="query-neurons"></div>`)}
    ${card('lens', 'Logit lens', 'The target’s probability and rank when the residual stream is read out (with the frozen final norm) at the embedding and after every attention and FFN layer; hover for the top tokens there.', '<div class="chart" data-chart="lens"></div><div class="table-wrap scroll" data-part="lens-table"></div>')}
    <footer class="foot" data-part="foot"></footer>`;

  const $ = (sel) => root.querySelector(sel);
  const chartEl = (name) => $(`[data-chart="${name}"]`);
  const layersWhat = $('[data-part="layers"] .what').textContent;

  // ---------------- layers and heads (depend on the measure) ----------------
  function drawMeasure() {
    const layers = st.measure === 'contrast' ? data.contrast.layers : data.layers;
    const heads = st.measure === 'contrast' ? data.contrast.heads : data.heads;
    layerChart(chartEl('layers'), layers, { measure: measureName() });
    headHeatmap(chartEl('heads'), heads, (l, h) => selectHead(l, h, true), { measure: measureName() });
    markHead(chartEl('heads'), st.head.l, st.head.h);
    $('[data-part="layers"] .what').textContent =
      st.measure === 'contrast'
        ? 'How much each attention and FFN layer raises log p(target) − log p(foil) (a logit difference) when added to the residual stream before it, final norm frozen. Both panels share one scale.'
        : layersWhat;
    st.shown = PAGE_ROWS;
    st.selected = null;
    drawNeuronTabs();
    drawNeuronTable();
    $('[data-part="neuron-detail"]').innerHTML = '';
  }
  if (hasContrast) {
    $('[data-part="measure"]').addEventListener('click', (e) => {
      const m = e.target.dataset && e.target.dataset.m;
      if (!m || m === st.measure) return;
      st.measure = m;
      for (const b of $('[data-part="measure"]').querySelectorAll('button')) b.classList.toggle('on', b.dataset.m === m);
      drawMeasure();
    });
  }

  // ---------------- head positions ----------------
  const viewFor = (l, h) => data.head_positions.find((x) => x.layer === l && x.head === h) || null;
  const headScore = (l, h) => data.heads[l][h];
  function headFromArrays(l, h) {
    if (!fullHeads) return null;
    const P = data.position;
    const positions = [];
    for (let p = 0; p <= P; ++p) {
      positions.push({ pos: p, token: data.tokens[p].text, score: fullHeads.head_pos[l][h][p], attn: fullHeads.attn_weight[l][h][p] });
    }
    return { layer: l, head: h, label: labelHead(l, h), positions };
  }
  function drawHeadTabs() {
    const tabs = data.top_heads.slice(0, 8).map((t) => ({ l: t.layer, h: t.head }));
    if (!tabs.some((t) => t.l === st.head.l && t.h === st.head.h)) tabs.push(st.head);
    $('[data-part="head-tabs"]').innerHTML = tabs
      .map(
        (t) =>
          `<button data-l="${t.l}" data-h="${t.h}" class="${t.l === st.head.l && t.h === st.head.h ? 'on' : ''}">${labelHead(t.l, t.h)} ${signed(headScore(t.l, t.h), 3)}</button>`,
      )
      .join('');
  }
  $('[data-part="head-tabs"]').addEventListener('click', (e) => {
    const b = e.target.closest('button');
    if (b) selectHead(Number(b.dataset.l), Number(b.dataset.h), false);
  });
  function drawHeadEntry(entry) {
    headPositionChart(chartEl('head-positions'), entry.positions);
    const hasViews = entry.positions.length && entry.positions[0].value !== undefined;
    const rows = entry.positions
      .map(
        (p) => `<tr>
          <td class="num">${p.pos}</td><td>${tokenHtml(p.token)}</td>
          <td class="num" style="color:${signColor(p.score)}">${signed(p.score, 4)}</td><td class="num">${fixed(p.attn, 3)}</td>
          ${hasViews ? `<td>${tokenList(p.layer_input, 6, targetText)}</td><td>${tokenList(p.key, 6, targetText)}</td><td>${tokenList(p.value, 6, targetText)}</td>` : ''}
        </tr>`,
      )
      .join('');
    const note = hasViews
      ? ''
      : `<p class="note">Token views are in this file for the top ${data.head_positions.length} heads; <code>reslens serve</code> shows them for any head.</p>`;
    $('[data-part="head-table"]').innerHTML = `<div class="table-wrap scroll"><table class="data"><thead><tr><th class="num">pos</th><th>token</th><th class="num">Δ log p</th><th class="num">attention</th>${hasViews ? '<th>layer input (top)</th><th>key (top)</th><th>value (top)</th>' : ''}</tr></thead><tbody>${rows}</tbody></table></div>${note}`;
    root.dataset.head = labelHead(entry.layer, entry.head);
  }
  async function selectHead(l, h, scroll) {
    st.head = { l, h };
    drawHeadTabs();
    markHead(chartEl('heads'), l, h);
    const local = viewFor(l, h) || (api ? null : headFromArrays(l, h));
    if (local) drawHeadEntry(local);
    else if (api) {
      $('[data-part="head-table"]').innerHTML = `<p class="note"><span class="spinner"></span>loading ${labelHead(l, h)}…</p>`;
      try {
        drawHeadEntry(await api.head(l, h));
      } catch (err) {
        $('[data-part="head-table"]').innerHTML = `<p class="note" style="color:var(--neg)">${esc(err.message)}</p>`;
      }
    } else {
      $('[data-part="head-table"]').innerHTML = `<p class="note">No per-position data for ${labelHead(l, h)} in this file.</p>`;
    }
    if (scroll) $('[data-part="head-positions"]').scrollIntoView({ behavior: 'instant', block: 'nearest' });
  }

  // ---------------- neurons ----------------
  function lists() {
    if (st.measure === 'contrast') {
      return { ffn: data.contrast.ffn_neurons, attn: data.contrast.attn_neurons, query: data.query_ffn_neurons };
    }
    return { ffn: data.ffn_neurons, attn: data.attn_neurons, query: data.query_ffn_neurons };
  }
  const tabNames = { ffn: 'FFN value neurons', attn: 'attention value neurons', query: 'query FFN neurons' };
  function drawNeuronTabs() {
    const ls = lists();
    $('[data-part="neuron-tabs"]').innerHTML = Object.keys(tabNames)
      .map((k) => `<button data-tab="${k}" class="${k === st.tab ? 'on' : ''}">${tabNames[k]} (${ls[k].length})</button>`)
      .join('');
  }
  $('[data-part="neuron-tabs"]').addEventListener('click', (e) => {
    const b = e.target.closest('button');
    if (!b || b.dataset.tab === st.tab) return;
    st.tab = b.dataset.tab;
    st.shown = PAGE_ROWS;
    st.selected = null;
    drawNeuronTabs();
    drawNeuronTable();
    $('[data-part="neuron-detail"]').innerHTML = '';
  });
  // The neuron table: one line per neuron (tokens that do not fit are cut; the row's details show
  // them all). Up to 200 rows are plain rows; a longer list ("show all") is windowed: only the rows
  // in view (and a margin) exist, so 1000 or 100000 neurons scroll as fast as 50.
  let unbindScroll = null;
  function drawNeuronTable() {
    if (unbindScroll) unbindScroll();
    unbindScroll = null;
    const list = lists()[st.tab];
    const m = maxAbs(list.map((e) => e.score));
    const withTokens = list.some((e) => e.top);
    const withCoef = list.some((e) => e.coef !== undefined);
    const n = Math.min(st.shown, list.length);
    const windowed = n > 200;
    const cols = 3 + (withCoef ? 1 : 0) + (withTokens ? 3 : 0);
    const scoreName = st.tab === 'query' ? 'query score' : st.measure === 'contrast' ? 'Δ target − foil' : 'Δ log p';
    const dash = '<span class="muted">–</span>';
    const row = (i) => {
      const e = list[i];
      return `<tr class="click${st.selected === i ? ' sel' : ''}" data-i="${i}"><td class="num muted">${i + 1}</td><td class="label">${esc(e.label)}</td><td class="num">${scoreCell(e.score, m)}</td>${
        withCoef ? `<td class="num">${e.coef === undefined ? '–' : signed(e.coef, 3)}</td>` : ''
      }${
        withTokens
          ? `<td>${e.promoted ? tokenList(e.promoted, 6, targetText) : dash}</td><td>${e.top ? tokenList(e.top, 5, targetText) : dash}</td><td>${e.bottom ? tokenList(e.bottom, 5) : dash}</td>`
          : ''
      }</tr>`;
    };
    const colgroup = `<colgroup><col style="width:44px"><col style="width:${st.tab === 'attn' ? 150 : 110}px"><col style="width:170px">${withCoef ? '<col style="width:76px">' : ''}${withTokens ? '<col><col><col>' : ''}</colgroup>`;
    const head = `<thead><tr><th class="num">#</th><th>neuron</th><th class="num">${scoreName}</th>${withCoef ? '<th class="num">coef</th>' : ''}${withTokens ? '<th>subvalue promotes</th><th>value vector: top</th><th>bottom</th>' : ''}</tr></thead>`;
    let body = '';
    if (!windowed) for (let i = 0; i < n; ++i) body += row(i);
    const more = n < list.length ? `<div class="more"><button class="btn ghost" data-act="more">Show all ${list.length}</button></div>` : '';
    const box = $('[data-part="neuron-table"]');
    box.innerHTML = `<div class="${windowed ? 'table-wrap scroll tall' : ''}" data-part="neuron-scroll"><table class="data lines" data-rows="${n}">${colgroup}${head}<tbody>${body}</tbody></table></div>${more}`;
    if (!windowed) return;
    const wrap = box.querySelector('[data-part="neuron-scroll"]');
    const tbody = box.querySelector('tbody');
    let rowH = 31;
    let shown = [-1, -1];
    const spacer = (h) => (h > 0 ? `<tr class="spacer"><td colspan="${cols}" style="height:${h}px"></td></tr>` : '');
    const render = (force) => {
      const start = Math.max(0, Math.floor(wrap.scrollTop / rowH) - 15);
      const end = Math.min(n, Math.ceil((wrap.scrollTop + wrap.clientHeight) / rowH) + 15);
      if (!force && start === shown[0] && end === shown[1]) return;
      shown = [start, end];
      let html = spacer(start * rowH);
      for (let i = start; i < end; ++i) html += row(i);
      tbody.innerHTML = html + spacer((n - end) * rowH);
    };
    render(true);
    const first = tbody.querySelector('tr[data-i]');
    if (first && first.offsetHeight > 0 && first.offsetHeight !== rowH) {
      rowH = first.offsetHeight;
      render(true);
    }
    let pending = false;
    const onScroll = () => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        render(false);
      });
    };
    wrap.addEventListener('scroll', onScroll);
    unbindScroll = () => wrap.removeEventListener('scroll', onScroll);
  }
  $('[data-part="neuron-table"]').addEventListener('click', (e) => {
    if (e.target.closest('[data-act="more"]')) {
      st.shown = Infinity;
      drawNeuronTable();
      return;
    }
    const tr = e.target.closest('tr[data-i]');
    if (!tr) return;
    selectNeuron(Number(tr.dataset.i));
  });

  function neuronKind(tab, e) {
    return tab === 'attn' || e.head !== undefined ? 'attn' : 'ffn';
  }
  async function selectNeuron(i, via) {
    st.selected = i;
    for (const tr of root.querySelectorAll('[data-part="neuron-table"] tr[data-i]')) tr.classList.toggle('sel', Number(tr.dataset.i) === i);
    const e = lists()[st.tab][i];
    const box = $('[data-part="neuron-detail"]');
    const kind = neuronKind(st.tab, e);
    const head = `<h3>${esc(e.label)} <span class="muted" style="font-family:var(--sans);font-weight:400">${kind === 'attn' ? 'attention neuron (layer, head, dim @ source position)' : 'FFN neuron'} · ${st.tab === 'query' ? 'query score' : 'score'} ${signed(e.score, 4)}${e.coef !== undefined ? ` · coefficient ${signed(e.coef, 4)}` : ''}</span></h3>`;
    if (!api) {
      const have = e.top || e.promoted;
      box.innerHTML = `<div class="detail" data-neuron="${esc(e.label)}">${head}${
        have
          ? `<div class="cols">
          <div class="box"><h4>subvalue promotes</h4>${tokenList(e.promoted || [], 10, targetText)}</div>
          <div class="box"><h4>value vector: top tokens</h4>${tokenList(e.top || [], 10, targetText)}</div>
          <div class="box"><h4>value vector: bottom tokens</h4>${tokenList(e.bottom || [], 10)}</div></div>`
          : `<p class="note">This file carries vocabulary projections for the top neurons only; <code>reslens serve</code> shows them for any neuron, with its query neurons and an ablation.</p>`
      }</div>`;
      return;
    }
    box.innerHTML = `<div class="detail">${head}<p class="note"><span class="spinner"></span>projecting, finding query neurons and ablating…</p></div>`;
    try {
      const d = await api.neuron(kind, e, via);
      if (st.selected !== i) return;
      box.innerHTML = neuronDetailHtml(d, head);
      const qn = d.query_ffn_neurons;
      if (qn && qn.length) {
        rankedBars(box.querySelector('[data-chart="neuron-query"]'), qn.slice(0, 15), null, { valueName: 'query score' });
      }
    } catch (err) {
      if (st.selected === i) box.innerHTML = `<div class="detail">${head}<p class="note" style="color:var(--neg)">${esc(err.message)}</p></div>`;
    }
  }
  function neuronDetailHtml(d, head) {
    const ab = d.ablation;
    const abl = ab
      ? `<div class="box" style="grid-column:span 2"><h4>ablation: the target when it is zeroed (${esc(ab.level)} level)</h4><div class="ablation">
          <div class="stat"><div class="k">before</div><div class="v">${pct(ab.before.prob)}<small>rank ${ab.before.rank}</small></div></div>
          <div class="stat"><div class="k">zeroed</div><div class="v" style="color:${signColor(ab.after.prob - ab.before.prob)}">${pct(ab.after.prob)}<small>rank ${ab.after.rank}</small></div></div>
          <div class="stat"><div class="k">Δ log p</div><div class="v">${signed(ab.after.log_prob - ab.before.log_prob, 4)}</div></div></div></div>`
      : '';
    const hidden = d.hidden
      ? `<div class="box"><h4>through ${esc(d.hidden.head)}’s V/O</h4>${tokValList(d.hidden.top, targetText)}</div>`
      : '';
    const q = d.query_ffn_neurons && d.query_ffn_neurons.length
      ? `<div class="box" style="grid-column:1/-1"><h4>query FFN neurons (what activates it)</h4><div class="chart short" data-chart="neuron-query"></div></div>`
      : '';
    return `<div class="detail" data-neuron="${esc(d.label)}">${head}<div class="cols">
      <div class="box"><h4>subvalue promotes</h4>${tokValList(d.promoted.top, targetText)}</div>
      <div class="box"><h4>subvalue suppresses</h4>${tokValList(d.promoted.bottom, targetText)}</div>
      <div class="box"><h4>value vector: top</h4>${tokValList(d.raw.top, targetText)}</div>
      <div class="box"><h4>value vector: bottom</h4>${tokValList(d.raw.bottom, targetText)}</div>
      ${hidden}${abl}${q}</div></div>`;
  }

  // ---------------- histograms ----------------
  const hg = data.histograms;
  countChart(chartEl('hist-value'), [
    { name: 'FFN value neurons', values: hg.ffn_value, color: KIND.ffn },
    { name: 'attention value neurons', values: hg.attn_value, color: KIND.attn },
  ]);
  countChart(
    chartEl('hist-query'),
    [
      { name: 'query-value', values: hg.query_value, color: KIND.queryValue },
      { name: 'query-only', values: hg.query_only, color: KIND.queryOnly },
    ],
    { stacked: true },
  );

  // ---------------- query flow ----------------
  const qf = data.query_layers.ffn_value_neurons;
  const variants = Object.keys(qf.variants);
  function drawVariant() {
    $('[data-part="variant"]').innerHTML =
      `FFN value neurons${variants.length > 1 ? '' : st.variant ? `, key ${esc(st.variant)}` : ''}` +
      (variants.length > 1
        ? ` <span class="seg">${variants.map((v) => `<button data-v="${esc(v)}" class="${v === st.variant ? 'on' : ''}">key ${esc(v)}</button>`).join('')}</span>`
        : '');
    if (st.variant) slotChart(chartEl('query-ffn'), qf.variants[st.variant]);
  }
  $('[data-part="variant"]').addEventListener('click', (e) => {
    const b = e.target.closest('button');
    if (b && b.dataset.v !== st.variant) {
      st.variant = b.dataset.v;
      drawVariant();
    }
  });
  drawVariant();
  const qa = data.query_layers.attn_value_neurons;
  slotChart(chartEl('query-attn'), qa.slots);
  $('[data-part="avg-layer"]').textContent = ` · average query layer ${fixed(qa.avg_layer, 2)}`;
  const qTop = data.query_ffn_neurons.slice(0, 15);
  rankedBars(
    chartEl('query-neurons'),
    qTop,
    (i) => {
      st.tab = 'query';
      st.shown = Math.max(st.shown, i + 1);
      drawNeuronTabs();
      drawNeuronTable();
      selectNeuron(i);
      $('[data-part="neurons"]').scrollIntoView({ behavior: 'instant', block: 'start' });
    },
    { valueName: 'query score' },
  );

  // ---------------- logit lens ----------------
  lensChart(chartEl('lens'), data.lens, targetText);
  const lensRows = data.lens
    .map((p) => {
      const tops = p.top
        .slice(0, 8)
        .map((t) => `${tokenHtml(t.text, t.text === targetText ? 'hit' : '')}<span class="muted" style="font-size:11px;margin:0 6px 0 2px">${pct(t.prob)}</span>`)
        .join('');
      return `<tr><td class="label">${esc(pointLabel(p.label))}</td><td class="num">${p.rank}</td><td class="num">${pct(p.prob)}</td><td><span class="toks" style="align-items:center">${tops}</span></td></tr>`;
    })
    .join('');
  $('[data-part="lens-table"]').innerHTML = `<table class="data"><thead><tr><th>point</th><th class="num">rank</th><th class="num">p(target)</th><th>top tokens</th></tr></thead><tbody>${lensRows}</tbody></table>`;

  // ---------------- footer ----------------
  const checks = Object.entries(data.checks || {})
    .map(([k, v]) => `${esc(k)} ${Number(v).toExponential(1)}`)
    .join(' · ');
  $('[data-part="foot"]').innerHTML = `${esc(data.tool)} · schema ${data.schema_version} · model <code>${esc(M.path)}</code> (${esc(M.architecture)}, ${L} layers × ${H} heads, d_model ${M.d_model}, d_mlp ${M.d_mlp}) · frozen ${esc(data.frozen_norm.kind)} scale ${fixed(data.frozen_norm.scale, 4)}${checks ? `<br>identity checks (max |error|): ${checks}` : ''}`;

  // ---------------- circuit (when the page carries one, or the explorer fetches it) ----------------
  // The host is taken now: a reply for this report never reaches a later one drawn into `root`.
  const circuitHost = $('[data-part="circuit-body"]');
  // The explorer's circuit re-requests the graph with the pruning shares its controls set.
  const live = ctx.graphApi && circuitHost ? liveCircuit(circuitHost, data, ctx.graphApi) : null;
  const showCircuit = (doc) => {
    if (live) live.show(doc);
    else if (circuitHost) renderCircuit(circuitHost, doc, data);
  };
  if ('graph' in ctx) showCircuit(ctx.graph);
  const loadCircuit = (shares = {}) => (live ? live.load(shares) : Promise.resolve());

  drawMeasure();
  selectHead(st.head.l, st.head.h, false);
  root.dataset.state = 'ready';
  root.dataset.layers = String(L);
  root.dataset.heads = String(H);
  return { showCircuit, loadCircuit, selectHead, selectNeuron: (tab, i) => { st.tab = tab; drawNeuronTabs(); drawNeuronTable(); return selectNeuron(i); } };
}

