// FFN neuron scores (spec §3.1 row 6, cell 9): every neuron's subvalue m_k fc2_k in the context
// r_P^l, plus the alternative scores of spec §3.3 with A8's definitions when asked. This is the
// straightforward exact method: project every value vector to the vocabulary (a GEMM per chunk of
// neurons), then one log-sum-exp per neuron.
#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "analysis/contrast.h"
#include "analysis/explain_internal.h"
#include "core/parallel.h"
#include "model/weight_rows.h"
#include "ops/vector_ops.h"

namespace reslens::analysis {

std::vector<float> ffn_value_vectors(const Model& model, int64_t layer) {
  const ModelConfig& c = model.config();
  const MatrixView& W_out = model.weights().layers[static_cast<size_t>(layer)].W_out;  // [d_model, d_mlp]
  std::vector<float> out(static_cast<size_t>(c.d_mlp * c.d_model));                   // [d_mlp, d_model]
  std::vector<float> row;  // [d_mlp] a decoded row of an encoded W_out
  for (int64_t i = 0; i < c.d_model; ++i) {
    const float* r = row_floats(W_out, i, row);
    for (int64_t k = 0; k < c.d_mlp; ++k) out[static_cast<size_t>(k * c.d_model + i)] = r[k];
  }
  return out;
}

namespace {

// 1 + the number of tokens whose value beats token w's (the rank of w, 1 = top).
int64_t rank_of(const float* g, double s, int32_t w, int64_t V) {
  const double gw = s * static_cast<double>(g[w]);
  int64_t r = 1;
  for (int64_t j = 0; j < V; ++j) r += s * static_cast<double>(g[j]) > gw ? 1 : 0;
  return r;
}

}  // namespace

void score_ffn_neurons(const ExplainContext& ctx, Explanation& ex) {
  const ModelConfig& c = ctx.model.config();
  const int64_t L = c.n_layers, N = c.d_mlp, d = c.d_model, V = c.d_vocab;
  const int32_t w = ctx.w, f = ctx.foil;
  ex.ffn_neuron = ScoreArray({L, N});
  ex.ffn_coef = ScoreArray({L, N});
  if (ex.has_contrast) ex.contrast_ffn_neuron = ScoreArray({L, N});
  // Pointers taken before the parallel loops: the workers write disjoint elements, never the map.
  std::map<std::string, ScoreArray*> base;
  if (ctx.opts.baselines) {
    for (const char* b : kBaselineScores) base[b] = &(ex.baselines[b] = ScoreArray({L, N}));
  }
  ScoreArray* b_lpi = ctx.opts.baselines ? base["log_prob_increase"] : nullptr;
  ScoreArray* b_lp = ctx.opts.baselines ? base["log_prob"] : nullptr;
  ScoreArray* b_pi = ctx.opts.baselines ? base["prob_increase"] : nullptr;
  ScoreArray* b_norm = ctx.opts.baselines ? base["norm"] : nullptr;
  ScoreArray* b_coef = ctx.opts.baselines ? base["coef"] : nullptr;
  ScoreArray* b_rank = ctx.opts.baselines ? base["rank"] : nullptr;
  ScoreArray* b_mnorm = ctx.opts.baselines ? base["m_norm"] : nullptr;
  ScoreArray* b_mrank = ctx.opts.baselines ? base["m_rank"] : nullptr;
  Distribution no_context;  // softmax(bs(v) + bias): the context-free distribution of v alone
  {
    std::vector<float> zeros(static_cast<size_t>(V), 0.0f);
    no_context = make_distribution(zeros, ctx.proj.bias(), static_cast<double>(c.final_softcap));
  }
  constexpr int64_t kChunk = 256;  // neurons projected at once: kChunk * V floats of scratch

  for (int64_t l = 0; l < L; ++l) {
    ctx.report("ffn", l, L);
    const Distribution& dist = ctx.before_ffn(l);
    const double p_w = std::exp(dist.log_prob(w));
    const std::vector<float> fc2 = ffn_value_vectors(ctx.model, l);  // [d_mlp, d_model]
    const float* m = ctx.trace.post(l, ctx.P);
    std::vector<float> G(static_cast<size_t>(std::min(kChunk, N) * V));
    for (int64_t k0 = 0; k0 < N; k0 += kChunk) {
      const int64_t n = std::min(kChunk, N - k0);
      ctx.proj.project(fc2.data() + k0 * d, n, d, G.data());
      parallel_for(ctx.threads, n, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          const int64_t k = k0 + i;
          const float* g = G.data() + i * V;
          const double s = static_cast<double>(m[k]);
          const double imp = log_prob_increase(dist, g, s, w);
          ex.ffn_neuron.at({l, k}) = imp;
          ex.ffn_coef.at({l, k}) = s;
          if (f >= 0) ex.contrast_ffn_neuron.at({l, k}) = foil_contrast(dist, s, static_cast<double>(g[w]), static_cast<double>(g[f]), w, f);
          if (!ctx.opts.baselines) continue;
          double norm2 = 0;
          for (int64_t j = 0; j < d; ++j) {
            const double x = static_cast<double>(fc2[static_cast<size_t>(k * d + j)]);
            norm2 += x * x;
          }
          const double norm = std::sqrt(norm2);
          b_lpi->at({l, k}) = imp;
          // log softmax(bs(m fc2) (+ bias))_w: the vector alone, no context (a DLA-like score).
          b_lp->at({l, k}) = log_prob_increase(no_context, g, s, w) + no_context.log_prob(w);
          b_pi->at({l, k}) = p_w * std::expm1(imp);
          b_norm->at({l, k}) = std::abs(s) * norm;
          b_coef->at({l, k}) = s;
          b_rank->at({l, k}) = 1.0 / static_cast<double>(rank_of(g, s, w, V));
          b_mnorm->at({l, k}) = std::abs(s) * norm;
          b_mrank->at({l, k}) = std::abs(s) / static_cast<double>(rank_of(g, 1.0, w, V));
        }
      });
    }
  }
  ctx.report("ffn", L, L);
}

void check_ffn_identities(const ExplainContext& ctx, Explanation& ex) {
  const ModelConfig& c = ctx.model.config();
  const int64_t N = c.d_mlp, d = c.d_model;
  // Every layer's W_out is read once (a TinyLlama-sized model: 1 GB), so its rows are split across
  // threads; each row's sum is the same either way, and a maximum does not depend on the order.
  std::vector<double> worst(static_cast<size_t>(c.n_layers * d), 0.0);  // [L, d_model]
  parallel_for(ctx.threads, c.n_layers * d, [&](int64_t r0, int64_t r1) {
    std::vector<float> row;  // [d_mlp] a decoded row of an encoded W_out
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t l = r / d, i = r % d;
      const LayerWeights& Lw = ctx.model.weights().layers[static_cast<size_t>(l)];
      const double b = Lw.b_out.empty() ? 0.0 : static_cast<double>(Lw.b_out[i]);
      const double s = b + ops::dot(ctx.trace.post(l, ctx.P), row_floats(Lw.W_out, i, row), N);  // sum_k m_k fc2_k[i], in double
      worst[static_cast<size_t>(r)] = std::abs(s - static_cast<double>(ctx.trace.mlp_out(l, ctx.P)[i]));
    }
  });
  ex.checks["ffn_neurons_plus_bias_vs_mlp_out"] = *std::max_element(worst.begin(), worst.end());
}

}  // namespace reslens::analysis
