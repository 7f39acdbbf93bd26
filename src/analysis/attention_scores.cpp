// Attention-side scores (spec §3.1 rows 3-5, cells 6, 7, 11): every head, every head x source
// position, every attention neuron (layer, head, dim, source position), in the context h_P^{l-1}.
// All three are linear in the attention neurons' value vectors W_O[:, h*d_head+n], so their
// vocabulary projections are combinations of one projected matrix per layer: [n_heads*d_head, V].
#include <algorithm>
#include <cmath>
#include <utility>

#include "analysis/contrast.h"
#include "analysis/explain_internal.h"
#include "core/parallel.h"
#include "model/weight_rows.h"
#include "ops/vector_ops.h"

namespace reslens::analysis {

std::vector<float> attn_value_vectors(const Model& model, int64_t layer) {
  const ModelConfig& c = model.config();
  const FloatWeights W_O(model.weights().layers[static_cast<size_t>(layer)].W_O);  // [d_model, H*d_head]
  const int64_t cols = c.n_heads * c.d_head;
  std::vector<float> out(static_cast<size_t>(cols * c.d_model));  // [H*d_head, d_model]
  for (int64_t i = 0; i < c.d_model; ++i) {
    for (int64_t j = 0; j < cols; ++j) out[static_cast<size_t>(j * c.d_model + i)] = W_O->at(i, j);
  }
  return out;
}

void init_attention_arrays(const ExplainContext& ctx, Explanation& ex) {
  const ModelConfig& c = ctx.model.config();
  const int64_t L = c.n_layers, H = c.n_heads, dh = c.d_head;
  const int64_t Pn = ctx.P + 1;  // source positions 0..P
  ex.head = ScoreArray({L, H});
  ex.head_position = ScoreArray({L, H, Pn});
  ex.attn_weight = ScoreArray({L, H, Pn});
  ex.attn_neuron = ScoreArray({L, H, dh, Pn});
  ex.attn_coef = ScoreArray({L, H, dh, Pn});
  if (ex.has_contrast) {
    ex.contrast_head = ScoreArray({L, H});
    ex.contrast_attn_neuron = ScoreArray({L, H, dh, Pn});
  }
}

void fill_attention_coefficients(const ExplainContext& ctx, Explanation& ex, int64_t l) {
  const ModelConfig& c = ctx.model.config();
  const int64_t H = c.n_heads, dh = c.d_head, Pn = ctx.P + 1;
  const int64_t group = c.n_heads / c.n_key_value_heads;
  // Coefficients s[h][n][p] = alpha_{P,p} v_{p,n}: the scalar each attention neuron carries.
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t p = 0; p < Pn; ++p) {
      ex.attn_weight.at({l, h, p}) = static_cast<double>(ctx.trace.pattern(l, h, ctx.P, p));
      const double a = ctx.trace.coef_pattern(l, h, ctx.P, p);  // post-norm models: over the frozen scale
      const float* v = ctx.trace.v(l, p, h / group);
      for (int64_t n = 0; n < dh; ++n) ex.attn_coef.at({l, h, n, p}) = a * static_cast<double>(v[n]);
    }
  }
}

// Rows of W_O are copied 16 at a time into a contiguous tile first: read column by column in place,
// those 16 rows (d_model floats apart, the same L1 set on a 7B model) evicted one another at every
// element.
void head_columns_as_rows(const MatrixView& W_O, int64_t h, int64_t dh, int64_t ld, std::vector<float>& out) {
  const int64_t d = W_O.rows;
  constexpr int64_t kRows = 16;
  out.resize(static_cast<size_t>(dh * ld));
  std::vector<float> tile(static_cast<size_t>(kRows * dh));  // [16, d_head]
  for (int64_t i0 = 0; i0 < d; i0 += kRows) {
    const int64_t m = std::min(kRows, d - i0);
    for (int64_t i = 0; i < m; ++i) {
      const float* w = W_O.row(i0 + i) + h * dh;
      std::copy(w, w + dh, tile.begin() + i * dh);
    }
    for (int64_t n = 0; n < dh; ++n) {
      float* o = out.data() + n * ld + i0;
      for (int64_t i = 0; i < m; ++i) o[i] = tile[static_cast<size_t>(i * dh + n)];
    }
  }
}

void check_attention_identities(const ExplainContext& ctx, Explanation& ex) {
  const ModelConfig& c = ctx.model.config();
  const int64_t L = c.n_layers, H = c.n_heads, dh = c.d_head, d = c.d_model, Pn = ctx.P + 1;
  const int64_t group = c.n_heads / c.n_key_value_heads;
  double worst_heads = 0, worst_neurons = 0;
  FloatWeights W_O;  // [d_model, H*d_head] layer l's, decoded once when encoded, into the same storage
  for (int64_t l = 0; l < L; ++l) {
    const LayerWeights& Lw = ctx.model.weights().layers[static_cast<size_t>(l)];
    W_O = FloatWeights(Lw.W_O, ctx.threads, std::move(W_O));
    // Identities in d_model space, in double, per head h with w_n = W_O[:, h*d_head + n]:
    //  - its attention neurons summed over source positions and dims, sum_n (sum_p c_{n,p}) w_n from
    //    the stored coefficients (sum_p c_{n,p} w_n = (sum_p c_{n,p}) w_n), against the head
    //    rebuilt from the hooks alone, sum_n z_n w_n with z = sum_p pattern_p v_p: a wrong index in
    //    the coefficients the scores use shows here;
    //  - the heads plus b_O against the model's own attention output at P.
    // Each costs d_head x d_model per head, not a pass over W_O per source position.
    std::vector<double> by_head(static_cast<size_t>(H * d), 0.0);  // [H, d_model] from the coefficients
    std::vector<double> worst(static_cast<size_t>(H), 0.0);
    parallel_for(ctx.threads, H, [&](int64_t h0, int64_t h1) {
      std::vector<double> coef_z(static_cast<size_t>(2 * dh));  // [2, d_head]: the coefficients' sums, then z
      std::vector<double> rebuilt(static_cast<size_t>(2 * d));   // [2, d_model]: by the coefficients, from the hooks
      std::vector<float> w_t;  // [d_head, d_model] (row stride ld) the head's columns of W_O as rows
      const int64_t ld = d + kRowPad;
      double* coef = coef_z.data();
      double* z = coef_z.data() + dh;
      for (int64_t h = h0; h < h1; ++h) {
        // attn_coef is [L, H, d_head, Pn]: neuron n's coefficients over positions are contiguous.
        const double* coefs = ex.attn_coef.values.data() + ((l * H + h) * dh) * Pn;
        std::fill(z, z + dh, 0.0);
        for (int64_t n = 0; n < dh; ++n) {
          double sum = 0;
          for (int64_t p = 0; p < Pn; ++p) sum += coefs[n * Pn + p];
          coef[n] = sum;
        }
        for (int64_t p = 0; p < Pn; ++p) {
          const double a = ctx.trace.coef_pattern(l, h, ctx.P, p);
          const float* v = ctx.trace.v(l, p, h / group);
          for (int64_t n = 0; n < dh; ++n) z[n] += a * static_cast<double>(v[n]);
        }
        // Both sums over n of every row i of W_O's head block, each element a double chain over n in
        // order, as one small product against the block's columns as rows.
        head_columns_as_rows(W_O.view(), h, dh, ld, w_t);
        std::fill(rebuilt.begin(), rebuilt.end(), 0.0);
        ops::matmul_nn_accumulate_small(2, d, dh, coef_z.data(), dh, w_t.data(), ld, rebuilt.data(), d);
        double* by_coef = by_head.data() + h * d;
        const double* from_hooks = rebuilt.data() + d;
        std::copy(rebuilt.begin(), rebuilt.begin() + d, by_coef);
        for (int64_t i = 0; i < d; ++i) {
          worst[static_cast<size_t>(h)] = std::max(worst[static_cast<size_t>(h)], std::abs(from_hooks[i] - by_coef[i]));
        }
      }
    });
    std::vector<double> total(static_cast<size_t>(d), 0.0);
    for (int64_t h = 0; h < H; ++h) {
      worst_neurons = std::max(worst_neurons, worst[static_cast<size_t>(h)]);
      for (int64_t i = 0; i < d; ++i) total[static_cast<size_t>(i)] += by_head[static_cast<size_t>(h * d + i)];
    }
    const float* A = ctx.trace.attn_out(l, ctx.P);
    for (int64_t i = 0; i < d; ++i) {
      const double b = Lw.b_O.empty() ? 0.0 : static_cast<double>(Lw.b_O[i]);
      worst_heads = std::max(worst_heads, std::abs(total[static_cast<size_t>(i)] + b - static_cast<double>(A[i])));
    }
  }
  ex.checks["heads_plus_bias_vs_attn_out"] = worst_heads;
  ex.checks["attn_neurons_vs_heads"] = worst_neurons;
}

void score_attention(const ExplainContext& ctx, Explanation& ex) {
  const ModelConfig& c = ctx.model.config();
  const int64_t L = c.n_layers, H = c.n_heads, dh = c.d_head, d = c.d_model, V = c.d_vocab;
  const int64_t Pn = ctx.P + 1;  // source positions 0..P
  init_attention_arrays(ctx, ex);
  const int32_t w = ctx.w, f = ctx.foil;

  for (int64_t l = 0; l < L; ++l) {
    ctx.report("attention", l, L);
    const Distribution& dist = ctx.before_attn(l);
    const std::vector<float> dirs = attn_value_vectors(ctx.model, l);  // [H*d_head, d_model]
    std::vector<float> G(static_cast<size_t>(H * dh * V));            // [H*d_head, V] bs of each direction
    ctx.proj.project(dirs.data(), H * dh, d, G.data());
    fill_attention_coefficients(ctx, ex, l);
    parallel_for(ctx.threads, H, [&](int64_t h0, int64_t h1) {
      std::vector<float> delta_p(static_cast<size_t>(V)), delta_h(static_cast<size_t>(V));
      for (int64_t h = h0; h < h1; ++h) {
        std::fill(delta_h.begin(), delta_h.end(), 0.0f);
        std::vector<double> head_sum(static_cast<size_t>(V), 0.0);
        for (int64_t p = 0; p < Pn; ++p) {
          std::vector<double> acc(static_cast<size_t>(V), 0.0);
          for (int64_t n = 0; n < dh; ++n) {
            const double s = ex.attn_coef.at({l, h, n, p});
            const float* g = G.data() + (h * dh + n) * V;
            ex.attn_neuron.at({l, h, n, p}) = log_prob_increase(dist, g, s, w);
            if (f >= 0) ex.contrast_attn_neuron.at({l, h, n, p}) = foil_contrast(dist, s, static_cast<double>(g[w]), static_cast<double>(g[f]), w, f);
            for (int64_t j = 0; j < V; ++j) acc[static_cast<size_t>(j)] += s * static_cast<double>(g[j]);
          }
          for (int64_t j = 0; j < V; ++j) {
            delta_p[static_cast<size_t>(j)] = static_cast<float>(acc[static_cast<size_t>(j)]);
            head_sum[static_cast<size_t>(j)] += acc[static_cast<size_t>(j)];
          }
          ex.head_position.at({l, h, p}) = log_prob_increase(dist, delta_p.data(), 1.0, w);
        }
        for (int64_t j = 0; j < V; ++j) delta_h[static_cast<size_t>(j)] = static_cast<float>(head_sum[static_cast<size_t>(j)]);
        ex.head.at({l, h}) = log_prob_increase(dist, delta_h.data(), 1.0, w);
        if (f >= 0) ex.contrast_head.at({l, h}) = foil_contrast(dist, 1.0, head_sum[static_cast<size_t>(w)], head_sum[static_cast<size_t>(f)], w, f);
      }
    });
  }
  ctx.report("attention", L, L);
}

}  // namespace reslens::analysis
