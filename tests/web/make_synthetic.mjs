// A synthetic explanation of the largest size the report must stay fast with: 32 layers x 32 heads
// (a Llama-7B shape), 48 prompt tokens, 1000 entries in every neuron list, each with its vocabulary
// views, a foil (so the contrast views exist too), and hostile token texts ("</script>", markup,
// newlines) that must show as text. Deterministic (a seeded generator).
//
//   node make_synthetic.mjs DOC.json HEADS.json
import fs from 'node:fs';

export const SHAPE = { L: 32, H: 32, dh: 128, N: 11008, V: 32000, T: 48, top: 1000 };

function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HOSTILE = [
  '</script><script>document.title="pwned"</script>',
  '<img src=x onerror="document.title=\'pwned\'">',
  '<!--',
  '&amp;',
  '\n',
  ' \t',
];

export function synthetic() {
  const { L, H, dh, N, V, T, top } = SHAPE;
  const r = rng(42);
  const words = ['the', ' the', ' Paris', ' France', ' capital', ' of', ' is', 'ing', ' and', ' river', ' 🙂', ' Ж', ...HOSTILE];
  const word = () => words[Math.floor(r() * words.length)];
  const words10 = () => Array.from({ length: 10 }, word);
  const signed = (scale) => (r() - 0.45) * scale;
  const P = T - 1;
  const tokens = Array.from({ length: T }, (_, i) => ({ id: i * 7, text: i === 3 ? HOSTILE[0] : word() }));
  const target = { id: 3681, text: ' Paris', log_prob: -0.4, prob: 0.67, rank: 1, logit: 17.2, bs_log_prob: -0.41, bs_log_prob_embedding: -10.3 };
  const layers = Array.from({ length: L }, (_, l) => ({ layer: l, attn: signed(0.8), ffn: signed(0.8) }));
  const heads = Array.from({ length: L }, () => Array.from({ length: H }, () => signed(0.3) * (r() < 0.1 ? 3 : 1)));
  const ranked = (make) => Array.from({ length: top }, (_, i) => make(i)).sort((a, b) => b.score - a.score);
  const ffnNeuron = () => {
    const layer = Math.floor(r() * L);
    const neuron = Math.floor(r() * N);
    return { layer, neuron, label: `L${layer}N${neuron}`, score: signed(0.5), coef: signed(3), top: words10(), bottom: words10(), promoted: words10() };
  };
  const attnNeuron = () => {
    const layer = Math.floor(r() * L);
    const head = Math.floor(r() * H);
    const dim = Math.floor(r() * dh);
    const pos = Math.floor(r() * T);
    return { layer, head, dim, pos, label: `L${layer}H${head}D${dim}@${pos}`, score: signed(0.2), coef: signed(2), top: words10(), bottom: words10(), promoted: words10() };
  };
  const queryNeuron = () => {
    const layer = Math.floor(r() * L);
    const neuron = Math.floor(r() * N);
    return { layer, neuron, label: `L${layer}N${neuron}`, score: signed(0.1) };
  };
  const topHeads = [];
  for (let l = 0; l < L; ++l) for (let h = 0; h < H; ++h) topHeads.push({ layer: l, head: h, label: `L${l}H${h}`, score: heads[l][h] });
  topHeads.sort((a, b) => b.score - a.score);
  const headPos = Array.from({ length: L }, () => Array.from({ length: H }, () => Array.from({ length: T }, () => signed(0.1))));
  const attnWeight = Array.from({ length: L }, () =>
    Array.from({ length: H }, () => {
      const w = Array.from({ length: T }, () => r());
      const s = w.reduce((a, b) => a + b, 0);
      return w.map((x) => x / s);
    }),
  );
  const positions = (l, h) =>
    Array.from({ length: T }, (_, p) => ({
      pos: p, token: tokens[p].text, score: headPos[l][h][p], attn: attnWeight[l][h][p],
      layer_input: words10(), key: words10(), value: words10(),
    }));
  const slots = () => Array.from({ length: 2 * L + 1 }, (_, s) => ({ label: s === 0 ? 'emb' : (s % 2 ? 'a' : 'f') + Math.floor((s - 1) / 2), score: signed(0.2) }));
  const counts = () => Array.from({ length: L }, () => Math.floor(r() * 20));
  const lens = Array.from({ length: 2 * L + 1 }, (_, s) => {
    const prob = Math.min(1, Math.pow(s / (2 * L), 2) * 0.7 + r() * 0.02);
    return {
      label: s === 0 ? 'emb' : (s % 2 ? 'a' : 'f') + Math.floor((s - 1) / 2),
      rank: Math.max(1, Math.floor(V * Math.pow(1 - s / (2 * L), 3))),
      prob, log_prob: Math.log(Math.max(prob, 1e-12)),
      top: Array.from({ length: 10 }, (_, k) => ({ id: k, text: k === 0 && s > L ? ' Paris' : word(), prob: 0.5 / (k + 1) })),
    };
  });
  const doc = {
    schema_version: 1,
    tool: 'reslens 0.1.0 (synthetic)',
    model: { path: 'synthetic/llama-7b-shape', architecture: 'llama', n_layers: L, n_heads: H, d_head: dh, d_model: H * dh, d_mlp: N, d_vocab: V },
    tokens,
    position: P,
    target,
    foil: { id: 5, text: ' London' },
    options: { include_final_bias: false, compat_notebook: false, query_top_n: 30, set_size: 300 },
    frozen_norm: { kind: 'rmsnorm', scale: 1.234 },
    lens,
    layers,
    layer_sums: { attn: layers.reduce((a, d) => a + d.attn, 0), ffn: layers.reduce((a, d) => a + d.ffn, 0), total: 0, final_minus_embedding: 0 },
    heads,
    top_heads: topHeads.slice(0, top),
    head_positions: topHeads.slice(0, 3).map((t) => ({ layer: t.layer, head: t.head, label: t.label, positions: positions(t.layer, t.head) })),
    ffn_neurons: ranked(ffnNeuron),
    attn_neurons: ranked(attnNeuron),
    query_ffn_neurons: ranked(queryNeuron),
    query_layers: {
      ffn_value_neurons: { key: 'up', top_n: 30, variants: { up: slots(), gate: slots() } },
      attn_value_neurons: { top_n: 30, slots: slots(), avg_layer: 7.5 },
    },
    histograms: { size: 300, ffn_value: counts(), attn_value: counts(), ffn_query: counts(), query_only: counts(), query_value: counts() },
    contrast: {
      measure: 'log p(target) - log p(foil)',
      layers: layers.map((d) => ({ layer: d.layer, attn: d.attn * 0.7, ffn: -d.ffn * 0.5 })),
      heads: heads.map((row) => row.map((v) => -v)),
      ffn_neurons: ranked(() => { const n = ffnNeuron(); return { layer: n.layer, neuron: n.neuron, label: n.label, score: n.score }; }),
      attn_neurons: ranked(() => { const n = attnNeuron(); return { layer: n.layer, head: n.head, dim: n.dim, pos: n.pos, label: n.label, score: n.score }; }),
    },
    checks: { layer_sum: 1e-12, head_sum: 3e-13 },
  };
  const round = (a) => a.map((x) => (Array.isArray(x) ? round(x) : Number(x.toPrecision(5))));
  return { doc, heads: { head_pos: round(headPos), attn_weight: round(attnWeight) } };
}

if (process.argv[1] && process.argv[1].endsWith('make_synthetic.mjs')) {
  const { doc, heads } = synthetic();
  fs.writeFileSync(process.argv[2], JSON.stringify(doc));
  fs.writeFileSync(process.argv[3], JSON.stringify(heads));
}
