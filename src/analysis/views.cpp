// Token views of vectors: the vocabulary projection of a neuron's value vector (spec cells 9, 11,
// 16), of one head's per-position shares (cell 7), and of an FFN neuron seen through a head
// (cell 19, "hidden-interpretable" query neurons).
#include <cmath>

#include "analysis/explain_internal.h"
#include "analysis/ranking.h"
#include "model/weight_rows.h"
#include "ops/norm.h"
#include "reslens/error.h"

namespace reslens {

namespace {

int64_t resolve_position(const analysis::TraceView& t, int position) {
  const int64_t P = position < 0 ? t.n_positions() + position : position;
  if (P < 0 || P >= t.n_positions()) {
    throw OutOfRange("position " + std::to_string(position) + " is out of range (0.." +
                     std::to_string(t.n_positions() - 1) + ")");
  }
  return P;
}

void check_index(int64_t v, int64_t n, const char* what) {
  if (v < 0 || v >= n) {
    throw OutOfRange(std::string(what) + " " + std::to_string(v) + " is out of range (0.." + std::to_string(n - 1) + ")");
  }
}

TokenList top_bottom(const std::vector<float>& logits, int k) {
  std::vector<double> v(logits.begin(), logits.end());
  TokenList out;
  for (int64_t j : analysis::top_indices(v, k)) {
    out.top.push_back(static_cast<int32_t>(j));
    out.top_values.push_back(v[static_cast<size_t>(j)]);
  }
  for (double& x : v) x = -x;
  for (int64_t j : analysis::top_indices(v, k)) {
    out.bottom.push_back(static_cast<int32_t>(j));
    out.bottom_values.push_back(-v[static_cast<size_t>(j)]);
  }
  return out;
}

struct Projection {
  analysis::TraceView trace;
  int64_t P;
  analysis::VocabProjector proj;
  Projection(const Model& m, const RunResult& r, const ExplainOptions& o)
      : trace(m, r, /*check_finite=*/false),  // explain() scanned this run
        P(resolve_position(trace, o.position)),
        proj(m, {trace.resid_post(m.config().n_layers - 1, P), static_cast<size_t>(m.config().d_model)},
             false, o.n_threads > 0 ? o.n_threads : default_threads()) {}
  std::vector<float> logits(const float* v) const {
    std::vector<float> out(static_cast<size_t>(proj.d_vocab()));
    proj.project(v, 1, proj.d_model(), out.data());
    return out;
  }
};

}  // namespace

TokenList project_tokens(const Model& model, const RunResult& run, const ExplainOptions& options,
                         std::span<const float> v, int k) {
  if (static_cast<int64_t>(v.size()) != model.config().d_model) {
    throw InvalidArgument("project_tokens: the vector has " + std::to_string(v.size()) + " values, d_model is " +
                          std::to_string(model.config().d_model));
  }
  const Projection p(model, run, options);
  return top_bottom(p.logits(v.data()), k);
}

std::vector<PositionView> head_position_views(const Model& model, const RunResult& run, const Explanation& ex,
                                              const ExplainOptions& options, int layer, int head, int k) {
  const ModelConfig& c = model.config();
  check_index(layer, c.n_layers, "layer");
  check_index(head, c.n_heads, "head");
  ExplainOptions o = options;
  o.position = ex.position;
  const Projection pr(model, run, o);
  const int64_t d = c.d_model, dh = c.d_head;
  const int64_t kvh = head / (c.n_heads / c.n_key_value_heads);
  std::vector<float> W_Oh(static_cast<size_t>(d * dh));  // [d_model, d_head] the head's columns of W_O
  read_submatrix(model.weights().layers[static_cast<size_t>(layer)].W_O, 0, d, head * dh, dh, W_Oh.data());
  // Three vectors per source position (the layer input, the attention-written "key" part, the
  // value the head moves), projected together in chunks: one GEMM reads W_U once for many vectors.
  const int64_t Pn = ex.n_positions;
  std::vector<float> vecs(static_cast<size_t>(3 * Pn * d), 0.0f);  // [Pn, 3, d_model]
  std::vector<PositionView> out(static_cast<size_t>(Pn));
  for (int64_t p = 0; p < Pn; ++p) {
    PositionView& pv = out[static_cast<size_t>(p)];
    pv.position = p;
    pv.imp = ex.head_position.at({layer, head, p});
    pv.attn = ex.attn_weight.at({layer, head, p});
    float* input = vecs.data() + (3 * p) * d;
    float* key = input + d;  // h_p^{l-1} - h_p^{-1} - sum of earlier FFN outputs = the attention-written part
    float* value = key + d;
    const float* x = pr.trace.resid_pre(layer, p);
    std::copy(x, x + d, input);
    for (int64_t j = 0; j < layer; ++j) {
      const float* a = pr.trace.attn_out(j, p);
      for (int64_t i = 0; i < d; ++i) key[i] += a[i];
    }
    const double a = pr.trace.coef_pattern(layer, head, ex.position, p);
    const float* v = pr.trace.v(layer, p, kvh);
    for (int64_t i = 0; i < d; ++i) {
      double s = 0;
      for (int64_t n = 0; n < dh; ++n) s += a * static_cast<double>(v[n]) * static_cast<double>(W_Oh[static_cast<size_t>(i * dh + n)]);
      value[i] = static_cast<float>(s);
    }
  }
  constexpr int64_t kChunk = 48;
  const int64_t V = pr.proj.d_vocab();
  std::vector<float> logits(static_cast<size_t>(kChunk * V));
  for (int64_t r0 = 0; r0 < 3 * Pn; r0 += kChunk) {
    const int64_t n = std::min(kChunk, 3 * Pn - r0);
    pr.proj.project(vecs.data() + r0 * d, n, d, logits.data());
    for (int64_t r = 0; r < n; ++r) {
      const std::vector<float> row(logits.begin() + r * V, logits.begin() + (r + 1) * V);
      PositionView& pv = out[static_cast<size_t>((r0 + r) / 3)];
      const int64_t which = (r0 + r) % 3;
      (which == 0 ? pv.layer_input_top : which == 1 ? pv.key_top : pv.value_top) = top_bottom(row, k).top;
    }
  }
  return out;
}

namespace {

// Neurons' value vectors [n, d_model] projected raw in one GEMM, each view also scaled by its
// coefficient (the subvalue it writes).
std::vector<NeuronView> neuron_views(const Projection& pr, const std::vector<float>& values, const std::vector<double>& coefs,
                                     int k) {
  const int64_t d = pr.proj.d_model(), V = pr.proj.d_vocab();
  const auto n = static_cast<int64_t>(coefs.size());
  std::vector<NeuronView> out(static_cast<size_t>(n));
  constexpr int64_t kChunk = 32;
  std::vector<float> raw(static_cast<size_t>(std::min(n, kChunk) * V));
  for (int64_t r0 = 0; r0 < n; r0 += kChunk) {
    const int64_t m = std::min(kChunk, n - r0);
    pr.proj.project(values.data() + r0 * d, m, d, raw.data());
    for (int64_t r = 0; r < m; ++r) {
      NeuronView& nv = out[static_cast<size_t>(r0 + r)];
      const double coef = coefs[static_cast<size_t>(r0 + r)];
      const std::vector<float> row(raw.begin() + r * V, raw.begin() + (r + 1) * V);
      nv.coef = coef;
      nv.raw = top_bottom(row, k);
      std::vector<float> sig(row.size());
      for (size_t j = 0; j < row.size(); ++j) sig[j] = static_cast<float>(coef * static_cast<double>(row[j]));
      nv.signed_ = top_bottom(sig, k);
    }
  }
  return out;
}

}  // namespace

std::vector<NeuronView> ffn_neuron_views(const Model& model, const RunResult& run, const Explanation& ex,
                                         const ExplainOptions& options, const std::vector<std::array<int, 2>>& neurons,
                                         int k) {
  const ModelConfig& c = model.config();
  for (const auto& [layer, neuron] : neurons) {
    check_index(layer, c.n_layers, "layer");
    check_index(neuron, c.d_mlp, "FFN neuron");
  }
  ExplainOptions o = options;
  o.position = ex.position;
  const Projection pr(model, run, o);
  std::vector<float> values(neurons.size() * static_cast<size_t>(c.d_model));
  std::vector<double> coefs;
  for (size_t i = 0; i < neurons.size(); ++i) {
    const auto [layer, neuron] = neurons[i];
    read_column(model.weights().layers[static_cast<size_t>(layer)].W_out, neuron, values.data() + i * static_cast<size_t>(c.d_model));
    coefs.push_back(static_cast<double>(pr.trace.post(layer, ex.position)[neuron]));
  }
  return neuron_views(pr, values, coefs, k);
}

std::vector<NeuronView> attn_neuron_views(const Model& model, const RunResult& run, const Explanation& ex,
                                          const ExplainOptions& options, const std::vector<std::array<int, 4>>& neurons,
                                          int k) {
  const ModelConfig& c = model.config();
  for (const auto& [layer, head, dim, pos] : neurons) {
    check_index(layer, c.n_layers, "layer");
    check_index(head, c.n_heads, "head");
    check_index(dim, c.d_head, "head dimension");
    check_index(pos, ex.n_positions, "source position");
  }
  ExplainOptions o = options;
  o.position = ex.position;
  const Projection pr(model, run, o);
  std::vector<float> values(neurons.size() * static_cast<size_t>(c.d_model));
  std::vector<double> coefs;
  for (size_t i = 0; i < neurons.size(); ++i) {
    const auto [layer, head, dim, pos] = neurons[i];
    read_column(model.weights().layers[static_cast<size_t>(layer)].W_O, head * c.d_head + dim,
                values.data() + i * static_cast<size_t>(c.d_model));
    coefs.push_back(ex.attn_coef.at({layer, head, dim, pos}));
  }
  return neuron_views(pr, values, coefs, k);
}

NeuronView ffn_neuron_view(const Model& model, const RunResult& run, const Explanation& ex,
                           const ExplainOptions& options, int layer, int neuron, int k) {
  return ffn_neuron_views(model, run, ex, options, {{layer, neuron}}, k).front();
}

NeuronView attn_neuron_view(const Model& model, const RunResult& run, const Explanation& ex,
                            const ExplainOptions& options, int layer, int head, int dim, int pos, int k) {
  return attn_neuron_views(model, run, ex, options, {{layer, head, dim, pos}}, k).front();
}

TokenList hidden_view(const Model& model, const RunResult& run, const ExplainOptions& options, int ffn_layer,
                      int neuron, int attn_layer, int head, int k) {
  const ModelConfig& c = model.config();
  check_index(ffn_layer, c.n_layers, "layer");
  check_index(neuron, c.d_mlp, "FFN neuron");
  check_index(attn_layer, c.n_layers, "layer");
  check_index(head, c.n_heads, "head");
  const Projection pr(model, run, options);
  const int64_t d = c.d_model, dh = c.d_head;
  const LayerWeights& A = model.weights().layers[static_cast<size_t>(attn_layer)];
  std::vector<float> u(static_cast<size_t>(d)), un(static_cast<size_t>(d));
  read_column(model.weights().layers[static_cast<size_t>(ffn_layer)].W_out, neuron, u.data());
  // The head's own input norm, with u's own statistics (the notebook's ln_1(u) / input_layernorm(u)).
  if (!c.pre_norm) {  // OLMo 2: the attention reads the vector as it is
    un = u;
  } else if (c.normalization_type == NormType::kLayerNorm) {
    ops::layer_norm(un.data(), u.data(), A.ln1_w.data, A.ln1_b.data, d, c.eps);
  } else {
    ops::rms_norm(un.data(), u.data(), A.ln1_w.data, d, c.eps);
  }
  const int64_t kvh = head / (c.n_heads / c.n_key_value_heads);
  std::vector<double> v(static_cast<size_t>(dh));
  std::vector<float> decoded;  // [d] a row of an encoded W_V
  for (int64_t n = 0; n < dh; ++n) {
    const float* r = row_floats(A.W_V, kvh * dh + n, decoded);
    double s = A.b_V.empty() ? 0.0 : static_cast<double>(A.b_V[kvh * dh + n]);
    for (int64_t i = 0; i < d; ++i) s += static_cast<double>(r[i]) * static_cast<double>(un[static_cast<size_t>(i)]);
    v[static_cast<size_t>(n)] = s;
  }
  std::vector<float> vo(static_cast<size_t>(d));
  std::vector<float> W_Oh(static_cast<size_t>(d * dh));  // [d_model, d_head] the head's columns of W_O
  read_submatrix(A.W_O, 0, d, head * dh, dh, W_Oh.data());
  for (int64_t i = 0; i < d; ++i) {
    double s = 0;  // no b_O: the head's own output
    for (int64_t n = 0; n < dh; ++n) s += v[static_cast<size_t>(n)] * static_cast<double>(W_Oh[static_cast<size_t>(i * dh + n)]);
    vo[static_cast<size_t>(i)] = static_cast<float>(s);
  }
  return top_bottom(pr.logits(vo.data()), k);
}

}  // namespace reslens
