// The charts of the report, drawn with Apache ECharts (tree-shaken: only bar, line and heatmap
// charts and the SVG renderer are bundled). Colours: signed scores always use one diverging scale
// (red lowers the target, blue raises it, white is zero); counts use one colour per component kind.
import * as echarts from 'echarts/core';
import { BarChart, HeatmapChart, LineChart } from 'echarts/charts';
import {
  GridComponent,
  TooltipComponent,
  VisualMapComponent,
  LegendComponent,
  TitleComponent,
  MarkLineComponent,
} from 'echarts/components';
import { SVGRenderer } from 'echarts/renderers';

import { esc, signed, fixed, pct, tokenPlain, pointLabel, maxAbs } from './format.js';

echarts.use([
  BarChart,
  HeatmapChart,
  LineChart,
  GridComponent,
  TooltipComponent,
  VisualMapComponent,
  LegendComponent,
  TitleComponent,
  MarkLineComponent,
  SVGRenderer,
]);

// ColorBrewer RdBu (11 classes), red = negative, blue = positive.
export const RDBU = [
  '#67001f', '#b2182b', '#d6604d', '#f4a582', '#fddbc7', '#f7f7f7',
  '#d1e5f0', '#92c5de', '#4393c3', '#2166ac', '#053061',
];
export const POS = '#2166ac';
export const NEG = '#b2182b';
export const KIND = { attn: '#0f766e', ffn: '#b45309', emb: '#6b7280', queryOnly: '#64748b', queryValue: '#b45309' };

const FONT = 'system-ui, -apple-system, "Segoe UI", "Noto Sans", "DejaVu Sans", Helvetica, Arial, sans-serif';
const INK = '#1c2430';
const INK2 = '#4a5565';
const RULE = '#e3e7ee';

export const signColor = (v) => (v < 0 ? NEG : POS);

function hexToRgb(h) {
  const n = parseInt(h.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}
const RDBU_RGB = RDBU.map(hexToRgb);

// A value on the diverging scale, with m the value that saturates it.
export function divColor(v, m) {
  const t = Math.max(-1, Math.min(1, m > 0 ? v / m : 0));
  const x = ((t + 1) / 2) * (RDBU.length - 1);
  const i = Math.min(RDBU.length - 2, Math.floor(x));
  const f = x - i;
  const a = RDBU_RGB[i];
  const b = RDBU_RGB[i + 1];
  const c = a.map((ai, k) => Math.round(ai + (b[k] - ai) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

const charts = new Set();
const byName = new Map();  // data-chart name -> instance, for window.reslens (tests, the console)
let resizeHooked = false;

function make(el, option, onClick) {
  const old = echarts.getInstanceByDom(el);
  if (old) {
    charts.delete(old);
    old.dispose();
  }
  const chart = echarts.init(el, null, { renderer: 'svg' });
  chart.setOption(option);
  if (onClick) chart.on('click', onClick);
  charts.add(chart);
  if (el.dataset && el.dataset.chart) byName.set(el.dataset.chart, chart);
  if (!resizeHooked) {
    resizeHooked = true;
    window.addEventListener('resize', () => charts.forEach((c) => c.resize()));
  }
  return chart;
}

export function disposeAll(root) {
  for (const c of [...charts]) {
    if (!root || root.contains(c.getDom())) {
      charts.delete(c);
      c.dispose();
    }
  }
}

function tooltip(extra = {}) {
  return {
    confine: true,
    backgroundColor: '#ffffff',
    borderColor: RULE,
    borderWidth: 1,
    padding: [8, 10],
    textStyle: { color: INK, fontSize: 12, fontFamily: FONT },
    extraCssText: 'box-shadow: 0 6px 20px rgba(20,30,50,0.14); border-radius: 8px; max-width: 360px; white-space: normal;',
    ...extra,
  };
}

function base(extra) {
  return {
    animation: false,
    textStyle: { fontFamily: FONT, color: INK2, fontSize: 11 },
    tooltip: tooltip(),
    ...extra,
  };
}

const axisName = (name, extra = {}) => ({
  name,
  nameTextStyle: { color: INK2, fontSize: 11, fontWeight: 600 },
  ...extra,
});
const valueAxis = (name, extra = {}) => ({
  type: 'value',
  ...axisName(name, { nameLocation: 'middle', nameGap: 44 }),
  axisLine: { show: false },
  axisTick: { show: false },
  splitLine: { lineStyle: { color: '#eef1f5' } },
  axisLabel: { color: INK2, fontSize: 10.5 },
  ...extra,
});
const catAxis = (data, name, extra = {}) => ({
  type: 'category',
  data,
  ...axisName(name, { nameLocation: 'middle', nameGap: 26 }),
  axisLine: { lineStyle: { color: '#c9d0da' } },
  axisTick: { show: false },
  axisLabel: { color: INK2, fontSize: 10.5 },
  ...extra,
});

// Symmetric-enough "nice" bounds shared by several axes.
function niceBounds(values) {
  let lo = 0;
  let hi = 0;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo === hi) return { min: -1, max: 1, interval: 0.5 };
  const raw = (hi - lo) / 5;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((k) => k * p).find((s) => s >= raw);
  return { min: Math.floor(lo / step) * step, max: Math.ceil(hi / step) * step, interval: step };
}

const signedBar = (v) => ({ value: v, itemStyle: { color: signColor(v) } });

// The paper's layer figure: attention and FFN layers' log-probability increase, one panel each, on
// the same scale.
export function layerChart(el, layers, { measure = 'log p' } = {}) {
  const cats = layers.map((d) => 'L' + d.layer);
  const b = niceBounds(layers.flatMap((d) => [d.attn, d.ffn]));
  const yAxis = (i) => valueAxis(i === 0 ? 'attention' : 'FFN', { gridIndex: i, ...b, nameGap: 46 });
  const many = cats.length > 24;
  return make(
    el,
    base({
      grid: [
        { left: 64, right: 14, top: 14, height: '38%' },
        { left: 64, right: 14, top: '53%', height: '38%' },
      ],
      xAxis: [
        catAxis(cats, '', { gridIndex: 0, axisLabel: { show: false } }),
        catAxis(cats, 'layer', {
          gridIndex: 1,
          axisLabel: { color: INK2, fontSize: 10.5, interval: many ? 1 : 0 },
        }),
      ],
      yAxis: [yAxis(0), yAxis(1)],
      tooltip: tooltip({
        trigger: 'axis',
        axisPointer: { type: 'shadow' },
        formatter: (ps) => {
          const d = layers[ps[0].dataIndex];
          return (
            `<b>L${d.layer}</b> <span style="color:${INK2}">(${esc(measure)})</span><br>` +
            `attention <b style="color:${signColor(d.attn)}">${signed(d.attn, 4)}</b><br>` +
            `FFN <b style="color:${signColor(d.ffn)}">${signed(d.ffn, 4)}</b>`
          );
        },
      }),
      series: [
        { name: 'attention', type: 'bar', xAxisIndex: 0, yAxisIndex: 0, barMaxWidth: 26, data: layers.map((d) => signedBar(d.attn)) },
        { name: 'FFN', type: 'bar', xAxisIndex: 1, yAxisIndex: 1, barMaxWidth: 26, data: layers.map((d) => signedBar(d.ffn)) },
      ],
    }),
  );
}

// Layers x heads, on the diverging scale, with hover values. onClick(layer, head).
export function headHeatmap(el, heads, onClick, { measure = 'log p' } = {}) {
  const L = heads.length;
  const H = L ? heads[0].length : 0;
  const data = [];
  const all = [];
  for (let l = 0; l < L; ++l) {
    for (let h = 0; h < H; ++h) {
      // A unique name per cell: ECharts selects by name (else a whole column would be selected).
      data.push({ name: `L${l}H${h}`, value: [h, l, heads[l][h]] });
      all.push(heads[l][h]);
    }
  }
  const m = maxAbs(all);
  return make(
    el,
    base({
      grid: { left: 52, right: 86, top: 8, bottom: 44 },
      xAxis: catAxis(
        Array.from({ length: H }, (_, h) => 'H' + h),
        'head',
        { splitArea: { show: false }, axisLabel: { color: INK2, fontSize: 10, interval: H > 24 ? 1 : 0 } },
      ),
      yAxis: catAxis(
        Array.from({ length: L }, (_, l) => 'L' + l),
        'layer',
        { inverse: true, nameGap: 36, axisLabel: { color: INK2, fontSize: 10, interval: L > 24 ? 1 : 0 } },
      ),
      visualMap: {
        type: 'continuous',
        min: -m,
        max: m,
        dimension: 2,
        calculable: false,
        orient: 'vertical',
        right: 4,
        top: 'middle',
        itemHeight: 170,
        itemWidth: 12,
        precision: 3,
        text: [signed(m, 3), signed(-m, 3)],
        textGap: 6,
        textStyle: { color: INK2, fontSize: 10.5 },
        inRange: { color: RDBU },
      },
      tooltip: tooltip({
        formatter: (p) => {
          const [h, l, v] = p.value;
          return `<b style="font-family:monospace">L${l}H${h}</b><br>${esc(measure)} <b style="color:${signColor(v)}">${signed(v, 4)}</b><br><span style="color:${INK2}">click for its source positions</span>`;
        },
      }),
      series: [
        {
          type: 'heatmap',
          data,
          itemStyle: { borderColor: '#ffffff', borderWidth: H * L > 400 ? 0.5 : 1 },
          emphasis: { itemStyle: { borderColor: INK, borderWidth: 1.5 } },
          selectedMode: 'single',
          select: { itemStyle: { borderColor: INK, borderWidth: 2.5 } },
          progressive: 0,
        },
      ],
    }),
    onClick ? (p) => onClick(p.value[1], p.value[0]) : null,
  );
}

// Layers x answer tokens (a target of several tokens, or a generated answer): each cell the layer's
// attention + FFN log-probability increase of that step's token, on the diverging scale.
// onClick(step) opens the step's report.
export function layerStepHeatmap(el, layers, tokens, onClick) {
  const L = layers.length;
  const T = tokens.length;
  const data = [];
  const all = [];
  for (let l = 0; l < L; ++l) {
    for (let t = 0; t < T; ++t) {
      const v = layers[l].attn_steps[t] + layers[l].ffn_steps[t];
      data.push({ name: `L${l}s${t}`, value: [t, l, v] });
      all.push(v);
    }
  }
  const m = maxAbs(all);
  return make(
    el,
    base({
      grid: { left: 52, right: 86, top: 8, bottom: 58 },
      xAxis: catAxis(
        tokens.map((t, i) => `${i}:${tokenPlain(t.text)}`),
        'answer token',
        { splitArea: { show: false }, axisLabel: { color: INK2, fontSize: 10, rotate: T > 12 ? 45 : 0, interval: 0 } },
      ),
      yAxis: catAxis(
        Array.from({ length: L }, (_, l) => 'L' + l),
        'layer',
        { inverse: true, nameGap: 36, axisLabel: { color: INK2, fontSize: 10, interval: L > 24 ? 1 : 0 } },
      ),
      visualMap: {
        type: 'continuous', min: -m, max: m, dimension: 2, calculable: false, orient: 'vertical', right: 4,
        top: 'middle', itemHeight: 170, itemWidth: 12, precision: 3, text: [signed(m, 3), signed(-m, 3)], textGap: 6,
        textStyle: { color: INK2, fontSize: 10.5 }, inRange: { color: RDBU },
      },
      tooltip: tooltip({
        formatter: (p) => {
          const [t, l, v] = p.value;
          return `<b style="font-family:monospace">L${l}</b> at step ${t} (${esc(tokenPlain(tokens[t].text))})<br>attn + ffn <b style="color:${signColor(v)}">${signed(v, 4)}</b><br><span style="color:${INK2}">click for the step's report</span>`;
        },
      }),
      series: [{ type: 'heatmap', data, itemStyle: { borderColor: '#ffffff', borderWidth: 1 }, progressive: 0 }],
    }),
    onClick ? (p) => onClick(p.value[0]) : null,
  );
}

// One head: each source position's share of the head's score (bars) and the attention weight of
// the explained position to it (line, right axis).
export function headPositionChart(el, positions) {
  const cats = positions.map((p) => String(p.pos));
  const many = positions.length > 20;
  return make(
    el,
    base({
      grid: { left: 64, right: 56, top: 30, bottom: many ? 70 : 56 },
      legend: {
        top: 0,
        right: 50,
        itemWidth: 12,
        itemHeight: 8,
        textStyle: { color: INK2, fontSize: 11 },
        data: [{ name: 'Δ log p via this position', itemStyle: { color: POS } }, { name: 'attention weight' }],
      },
      xAxis: catAxis(cats, 'source position', {
        nameGap: many ? 52 : 40,
        axisLabel: {
          color: INK2,
          fontSize: 10.5,
          lineHeight: 15,
          interval: 0,
          rotate: many ? 50 : 0,
          formatter: (v, i) => {
            const t = positions[i].token;
            const s = t.length > 10 ? t.slice(0, 9) + '…' : t;
            return many ? `${tokenPlain(s)} ${v}` : `${tokenPlain(s)}\n${v}`;
          },
        },
      }),
      yAxis: [
        valueAxis('Δ log p', { ...niceBounds(positions.map((p) => p.score)) }),
        valueAxis('attention', { min: 0, max: 1, interval: 0.25, nameGap: 36, splitLine: { show: false } }),
      ],
      tooltip: tooltip({
        trigger: 'axis',
        axisPointer: { type: 'shadow' },
        formatter: (ps) => {
          const p = positions[ps[0].dataIndex];
          return `<b>position ${p.pos}</b> ${esc(tokenPlain(p.token))}<br>Δ log p <b style="color:${signColor(p.score)}">${signed(p.score, 4)}</b><br>attention ${fixed(p.attn, 4)}`;
        },
      }),
      series: [
        { name: 'Δ log p via this position', type: 'bar', barMaxWidth: 30, data: positions.map((p) => signedBar(p.score)) },
        {
          name: 'attention weight',
          type: 'line',
          yAxisIndex: 1,
          symbol: 'circle',
          symbolSize: 6,
          lineStyle: { color: '#6b7280', width: 1.5 },
          itemStyle: { color: '#6b7280' },
          data: positions.map((p) => p.attn),
        },
      ],
    }),
  );
}

// Counts per layer (the paper's histograms). series: [{name, values, color}], stacked when asked.
export function countChart(el, series, { stacked = false, name = 'neurons' } = {}) {
  const L = series.length ? series[0].values.length : 0;
  const cats = Array.from({ length: L }, (_, l) => 'L' + l);
  return make(
    el,
    base({
      grid: { left: 52, right: 12, top: 30, bottom: 40 },
      legend: { top: 0, left: 'center', itemWidth: 12, itemHeight: 8, textStyle: { color: INK2, fontSize: 11 } },
      xAxis: catAxis(cats, 'layer', { axisLabel: { color: INK2, fontSize: 10.5, interval: L > 24 ? 1 : 0 } }),
      yAxis: valueAxis(name, { minInterval: 1, nameGap: 36 }),
      tooltip: tooltip({ trigger: 'axis', axisPointer: { type: 'shadow' } }),
      series: series.map((s) => ({
        name: s.name,
        type: 'bar',
        stack: stacked ? 'all' : undefined,
        barMaxWidth: 22,
        itemStyle: { color: s.color },
        data: s.values,
      })),
    }),
  );
}

// Query-layer slots (emb, a0, f0, a1, ...): which lower components activate the value neurons.
export function slotChart(el, slots) {
  const cats = slots.map((s) => pointLabel(s.label));
  const many = cats.length > 16;
  return make(
    el,
    base({
      grid: { left: 60, right: 12, top: 12, bottom: many ? 64 : 48 },
      xAxis: catAxis(cats, '', { axisLabel: { color: INK2, fontSize: 10, interval: many ? 'auto' : 0, rotate: many ? 50 : 0 } }),
      yAxis: valueAxis('query score', { ...niceBounds(slots.map((s) => s.score)) }),
      tooltip: tooltip({
        trigger: 'axis',
        axisPointer: { type: 'shadow' },
        formatter: (ps) => {
          const s = slots[ps[0].dataIndex];
          return `<b>${esc(pointLabel(s.label))}</b><br>query score <b style="color:${signColor(s.score)}">${signed(s.score, 4)}</b>`;
        },
      }),
      series: [{ type: 'bar', barMaxWidth: 18, data: slots.map((s) => signedBar(s.score)) }],
    }),
  );
}

// Ranked entries as horizontal bars (label on the left). onClick(index).
export function rankedBars(el, entries, onClick, { valueName = 'score' } = {}) {
  const cats = entries.map((e) => e.label);
  return make(
    el,
    base({
      grid: { left: 96, right: 24, top: 6, bottom: 34 },
      yAxis: catAxis(cats, '', { inverse: true, axisLabel: { color: INK, fontSize: 11, fontFamily: 'monospace', interval: 0 } }),
      xAxis: valueAxis(valueName, { nameGap: 24, ...niceBounds(entries.map((e) => e.score)) }),
      tooltip: tooltip({
        trigger: 'axis',
        axisPointer: { type: 'shadow' },
        formatter: (ps) => {
          const e = entries[ps[0].dataIndex];
          return `<b style="font-family:monospace">${esc(e.label)}</b><br>${esc(valueName)} <b style="color:${signColor(e.score)}">${signed(e.score, 4)}</b>${onClick ? `<br><span style="color:${INK2}">click for details</span>` : ''}`;
        },
      }),
      series: [{ type: 'bar', barMaxWidth: 14, data: entries.map((e) => signedBar(e.score)) }],
    }),
    onClick ? (p) => onClick(p.dataIndex) : null,
  );
}

// The logit lens: the target's probability (left axis) and rank (right axis, log scale, rank 1 on
// top) at every residual point, with the top tokens there in the tooltip.
export function lensChart(el, lens, targetText) {
  const cats = lens.map((p) => pointLabel(p.label));
  const maxRank = Math.max(...lens.map((p) => p.rank), 10);
  const many = cats.length > 16;
  return make(
    el,
    base({
      grid: { left: 60, right: 64, top: 34, bottom: many ? 70 : 48 },
      legend: {
        top: 0,
        left: 'center',
        itemWidth: 14,
        itemHeight: 8,
        textStyle: { color: INK2, fontSize: 11 },
        data: ['p(target)', 'rank of target'],
      },
      xAxis: catAxis(cats, 'residual point', {
        boundaryGap: false,
        nameGap: many ? 56 : 30,
        axisLabel: { color: INK2, fontSize: 10, rotate: many ? 50 : 0, interval: many ? 'auto' : 0 },
      }),
      yAxis: [
        valueAxis('p(target)', { min: 0, max: 1, interval: 0.25 }),
        {
          type: 'log',
          logBase: 10,
          inverse: true,
          min: 1,
          max: Math.pow(10, Math.ceil(Math.log10(maxRank))),
          ...axisName('rank', { nameLocation: 'middle', nameGap: 44 }),
          axisLine: { show: false },
          axisTick: { show: false },
          splitLine: { show: false },
          axisLabel: { color: INK2, fontSize: 10.5 },
        },
      ],
      tooltip: tooltip({
        trigger: 'axis',
        formatter: (ps) => {
          const p = lens[ps[0].dataIndex];
          const tops = p.top
            .slice(0, 6)
            .map(
              (t) =>
                `<div style="display:flex;justify-content:space-between;gap:12px"><span style="font-family:monospace;${t.text === targetText ? `color:${POS};font-weight:700` : ''}">${esc(tokenPlain(t.text))}</span><span>${pct(t.prob)}</span></div>`,
            )
            .join('');
          return `<b>${esc(pointLabel(p.label))}</b><br>target ${esc(tokenPlain(targetText))}: p ${pct(p.prob)}, rank ${p.rank}<div style="margin-top:6px;color:${INK2}">top tokens here</div>${tops}`;
        },
      }),
      series: [
        {
          name: 'p(target)',
          type: 'line',
          symbol: 'circle',
          symbolSize: 5,
          lineStyle: { color: POS, width: 2 },
          itemStyle: { color: POS },
          areaStyle: { color: 'rgba(33,102,172,0.08)' },
          data: lens.map((p) => p.prob),
        },
        {
          name: 'rank of target',
          type: 'line',
          yAxisIndex: 1,
          symbol: 'diamond',
          symbolSize: 6,
          lineStyle: { color: '#9aa3b0', width: 1.5, type: 'dashed' },
          itemStyle: { color: '#9aa3b0' },
          data: lens.map((p) => p.rank),
        },
      ],
    }),
  );
}

// Marks the head (layer, head) in a heatmap drawn by headHeatmap.
export function markHead(el, layer, head) {
  const chart = echarts.getInstanceByDom(el);
  if (!chart) return;
  const H = chart.getOption().xAxis[0].data.length;
  chart.dispatchAction({ type: 'select', seriesIndex: 0, dataIndex: layer * H + head });
}

export function chartNamed(name) {
  const c = byName.get(name);
  return c && !c.isDisposed() ? c : null;
}
