// Query analyses (spec §4.3): which lower vectors activate the value neurons.
//   Q1  query layers of the top-N FFN value neurons: components at P, key = fc1_k * gamma_2
//       (Llama: up_proj and gate_proj rows; compat: the notebook's down_proj column, A3).
//   Q2  query layers of the top-N attention value neurons, at their source position, key = the
//       value-projection row of (kv head, dim) * gamma_1.
//   Q3  query FFN neurons of the top-N attention value neurons: (m fc2 . K / h_p^{l-1} . K) * Imp.
//   Q5  top-300 value vs top-300 query FFN neurons: query-only and query-value counts per layer.
// Inner products without norm scale, mean term or biases, as the authors' code (the ratio cancels
// the common 1/sigma); the "exact_ln" variant of Q1 keeps LayerNorm's centering (spec §4.1).
#include <cmath>
#include <set>
#include <utility>

#include "analysis/explain_internal.h"
#include "analysis/ranking.h"
#include "core/parallel.h"
#include "model/weight_rows.h"
#include "ops/vector_ops.h"
#include "reslens/error.h"

namespace reslens::analysis {

namespace {

double dot(const float* a, const std::vector<double>& k, int64_t d, bool centered) {
  double mean = 0;
  if (centered) {
    for (int64_t i = 0; i < d; ++i) mean += static_cast<double>(a[i]);
    mean /= static_cast<double>(d);
  }
  double s = 0;
  for (int64_t i = 0; i < d; ++i) s += (static_cast<double>(a[i]) - mean) * k[static_cast<size_t>(i)];
  return s;
}

// key[i] = m[r, i] * gamma[i] (row r of a [rows, d] matrix) or m[i, col] (column `col` of a [d, cols] matrix).
// (gamma empty: no pre-norm, OLMo 2, so the key is the row itself.)
std::vector<double> key_from_row(const MatrixView& m, int64_t r, const VectorView& gamma, int64_t d) {
  std::vector<float> decoded;  // [d] when m is encoded
  const float* row = row_floats(m, r, decoded);
  std::vector<double> k(static_cast<size_t>(d));
  for (int64_t i = 0; i < d; ++i) {
    k[static_cast<size_t>(i)] = static_cast<double>(row[i]) * (gamma.empty() ? 1.0 : static_cast<double>(gamma[i]));
  }
  return k;
}

std::vector<double> key_from_column(const MatrixView& m, int64_t col, const VectorView& gamma) {
  std::vector<double> k(static_cast<size_t>(m.rows));
  std::vector<float> column(static_cast<size_t>(m.rows));  // [rows]
  read_column(m, col, column.data());
  for (int64_t i = 0; i < m.rows; ++i) {
    k[static_cast<size_t>(i)] = static_cast<double>(column[static_cast<size_t>(i)]) * (gamma.empty() ? 1.0 : static_cast<double>(gamma[i]));
  }
  return k;
}

// The attention neuron's key: the value-projection row of its KV head and dim, times gamma_1.
std::vector<double> attn_key(const Model& model, int64_t l, int64_t h, int64_t n) {
  const ModelConfig& c = model.config();
  const LayerWeights& Lw = model.weights().layers[static_cast<size_t>(l)];
  const int64_t kvh = h / (c.n_heads / c.n_key_value_heads);
  return key_from_row(Lw.W_V, kvh * c.d_head + n, Lw.ln1_w, c.d_model);
}

// An attention neuron (layer, head, dim) at source position pos, weighted by `multiplier` in Q3.
struct QueryNeuron {
  int64_t layer, head, dim, pos;
  double multiplier;
};

// Adds (m_{p,k} fc2_k . K / h_p^{l-1} . K) * multiplier to q[l', k] for every layer l' below each
// attention neuron at its source position p (spec §4.3 Q3). All neurons' keys are applied to each
// W_out row in one pass (W_out is read once per layer, not once per neuron, in a small product whose
// accumulators stay in registers); each fc2_k . K is still the same double sum over d_model in
// order, and the neurons add to q in the order given.
void add_query_ffn_neurons(const Model& model, const TraceView& trace, const std::vector<QueryNeuron>& neurons,
                           ScoreArray& q, int threads) {
  const ModelConfig& c = model.config();
  const int64_t N = c.d_mlp, d = c.d_model;
  std::vector<std::vector<double>> keys;
  std::vector<double> D;
  for (const QueryNeuron& u : neurons) {
    keys.push_back(attn_key(model, u.layer, u.head, u.dim));
    D.push_back(dot(trace.resid_pre(u.layer, u.pos), keys.back(), d, false));  // no guard against D ~ 0 (A17)
  }
  FloatWeights W_out;  // [d, N] layer lp's, decoded into the same storage every layer
  for (int64_t lp = 0; lp + 1 < c.n_layers; ++lp) {
    std::vector<size_t> active;  // the neurons above layer lp
    for (size_t a = 0; a < neurons.size(); ++a) {
      if (neurons[a].layer > lp) active.push_back(a);
    }
    if (active.empty()) continue;
    W_out = FloatWeights(model.weights().layers[static_cast<size_t>(lp)].W_out, threads, std::move(W_out));
    const auto na = static_cast<int64_t>(active.size());
    std::vector<double> K(static_cast<size_t>(na * d));  // [active, d]: the active neurons' keys
    for (int64_t a = 0; a < na; ++a) {
      std::copy(keys[active[static_cast<size_t>(a)]].begin(), keys[active[static_cast<size_t>(a)]].end(),
                K.begin() + a * d);
    }
    std::vector<double> proj(static_cast<size_t>(na * N), 0.0);  // [active, N]: fc2_k . K
    parallel_for(threads, N, [&](int64_t k0, int64_t k1) {
      ops::matmul_nn_accumulate_small(na, k1 - k0, d, K.data(), d, W_out->row(0) + k0, W_out->ld, proj.data() + k0, N);
    });
    for (size_t a = 0; a < active.size(); ++a) {
      const QueryNeuron& u = neurons[active[a]];
      const float* m = trace.post(lp, u.pos);
      const double* pr = proj.data() + a * static_cast<size_t>(N);
      for (int64_t k = 0; k < N; ++k) q.at({lp, k}) += static_cast<double>(m[k]) * pr[k] / D[active[a]] * u.multiplier;
    }
  }
}

}  // namespace

void score_queries(const ExplainContext& ctx, Explanation& ex) {
  const ModelConfig& c = ctx.model.config();
  const ModelWeights& W = ctx.model.weights();
  const int64_t L = c.n_layers, N = c.d_mlp, d = c.d_model, H = c.n_heads, dh = c.d_head;
  const int64_t Pn = ex.n_positions;
  const bool llama = c.gated_mlp;  // gate/up keys; GPT-2 and GPT-NeoX: c_fc
  const int64_t top_n = ctx.opts.query_top_n;

  // ---- Q1: query layers of the top-N FFN value neurons, components at P ----
  const std::vector<int64_t> top_ffn = top_indices(ex.ffn_neuron.values, top_n);
  std::vector<std::string> variants;
  if (llama) {
    variants = {"up", "gate"};
    if (ctx.opts.compat_notebook) variants.insert(variants.begin(), "notebook");
  } else {
    variants = {"c_fc", "exact"};  // exact: v1's LayerNorm-centred share (spec 4.1)
  }
  for (const std::string& variant : variants) {
    QueryLayers q{variant, std::vector<double>(static_cast<size_t>(2 * L + 1), 0.0)};
    const bool centered = variant == "exact";
    for (int64_t idx : top_ffn) {
      const int64_t l = idx / N, k = idx % N;
      const LayerWeights& Lw = W.layers[static_cast<size_t>(l)];
      const std::vector<double> K = variant == "gate"       ? key_from_row(Lw.W_gate, k, Lw.ln2_w, d)
                                    : variant == "notebook" ? key_from_column(Lw.W_out, k, Lw.ln2_w)
                                                            : key_from_row(Lw.W_in, k, Lw.ln2_w, d);
      // Components of r_P^l: h^{-1}, A^0, F^0, ..., A^{l-1}, F^{l-1}, A^l (0 with a parallel residual).
      std::vector<double> inner;
      inner.push_back(dot(ctx.trace.embed(ctx.P), K, d, centered));
      for (int64_t j = 0; j < l; ++j) {
        inner.push_back(dot(ctx.trace.attn_out(j, ctx.P), K, d, centered));
        inner.push_back(dot(ctx.trace.mlp_out(j, ctx.P), K, d, centered));
      }
      // A parallel-residual block's MLP reads h^{l-1}, not h^{l-1} + A^l: A^l is no query of it.
      inner.push_back(c.parallel_residual ? 0.0 : dot(ctx.trace.attn_out(l, ctx.P), K, d, centered));
      double total = 0;
      for (double x : inner) total += x;
      const double imp = ex.ffn_neuron.values[static_cast<size_t>(idx)];
      for (size_t s = 0; s < inner.size(); ++s) q.slots[s] += inner[s] / total * imp;
    }
    ex.ffn_value_query_layers.push_back(std::move(q));
  }

  // ---- Q2: query layers of the top-N attention value neurons, at their source position ----
  const std::vector<int64_t> top_attn = top_indices(ex.attn_neuron.values, top_n);
  ex.attn_value_query_layers = QueryLayers{"v", std::vector<double>(static_cast<size_t>(2 * L + 1), 0.0)};  // same slots as Q1
  double layer_sum = 0;
  auto unpack = [&](int64_t idx, int64_t& l, int64_t& h, int64_t& n, int64_t& p) {
    p = idx % Pn;
    idx /= Pn;
    n = idx % dh;
    idx /= dh;
    h = idx % H;
    l = idx / H;
  };
  for (int64_t idx : top_attn) {
    int64_t l = 0, h = 0, n = 0, p = 0;
    unpack(idx, l, h, n, p);
    layer_sum += static_cast<double>(l);
    const std::vector<double> K = attn_key(ctx.model, l, h, n);
    std::vector<double> inner;
    inner.push_back(dot(ctx.trace.embed(p), K, d, false));
    for (int64_t j = 0; j < l; ++j) {
      inner.push_back(dot(ctx.trace.attn_out(j, p), K, d, false));
      inner.push_back(dot(ctx.trace.mlp_out(j, p), K, d, false));
    }
    double total = 0;
    for (double x : inner) total += x;
    const double imp = ex.attn_neuron.values[static_cast<size_t>(idx)];
    for (size_t s = 0; s < inner.size(); ++s) ex.attn_value_query_layers.slots[s] += inner[s] / total * imp;
  }
  ex.attn_value_query_avg_layer = top_attn.empty() ? 0.0 : layer_sum / static_cast<double>(top_attn.size());

  // ---- Q3: query FFN neurons of the top-N attention value neurons ----
  ex.query_ffn_neuron = ScoreArray({L, N});
  std::vector<QueryNeuron> q3_neurons;
  for (int64_t idx : top_attn) {
    int64_t l = 0, h = 0, n = 0, p = 0;
    unpack(idx, l, h, n, p);
    q3_neurons.push_back({l, h, n, p, ex.attn_neuron.values[static_cast<size_t>(idx)]});
  }
  add_query_ffn_neurons(ctx.model, ctx.trace, q3_neurons, ex.query_ffn_neuron, ctx.threads);

  // ---- Q5: query-only vs query-value FFN neurons ----
  const std::vector<int64_t> value_set = top_indices(ex.ffn_neuron.values, ctx.opts.set_size);
  const std::vector<int64_t> query_set = top_indices(ex.query_ffn_neuron.values, ctx.opts.set_size);
  const std::set<int64_t> values(value_set.begin(), value_set.end());
  ex.query_only_per_layer.assign(static_cast<size_t>(L), 0);
  ex.query_value_per_layer.assign(static_cast<size_t>(L), 0);
  for (int64_t idx : query_set) {
    auto& counts = values.count(idx) ? ex.query_value_per_layer : ex.query_only_per_layer;
    ++counts[static_cast<size_t>(idx / N)];
  }
}

}  // namespace reslens::analysis

namespace reslens {

ScoreArray query_ffn_neurons(const Model& model, const RunResult& run, int layer, int head, int dim, int pos,
                             double multiplier) {
  const ModelConfig& c = model.config();
  const analysis::TraceView trace(model, run);
  auto check = [](int64_t v, int64_t n, const char* what) {
    if (v < 0 || v >= n) throw OutOfRange(std::string(what) + " " + std::to_string(v) + " is out of range (0.." + std::to_string(n - 1) + ")");
  };
  check(layer, c.n_layers, "layer");
  check(head, c.n_heads, "head");
  check(dim, c.d_head, "head dimension");
  check(pos, trace.n_positions(), "position");
  ScoreArray q({c.n_layers, c.d_mlp});
  analysis::add_query_ffn_neurons(model, trace, {{layer, head, dim, pos, multiplier}}, q, default_threads());
  return q;
}

}  // namespace reslens
