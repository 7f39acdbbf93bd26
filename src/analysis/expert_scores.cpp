// Expert scores (mixture-of-experts models): the output vector of each expert e of layer l at P,
// u_e = sum_k m_{e,k} fc2_{e,k} over its neurons (m includes the router weight; 0 for an expert the
// router did not pick), scored like the FFN layer itself in the FFN's context r_P^l: the
// log-probability increase of the target (and, with a foil, the logit-difference increase). The
// experts of a layer add up to its FFN output minus b_out, which check_expert_identities measures.
#include <cmath>

#include "analysis/contrast.h"
#include "analysis/explain_internal.h"
#include "core/parallel.h"
#include "model/weight_rows.h"

namespace reslens::analysis {

void score_experts(const ExplainContext& ctx, Explanation& ex) {
  const ModelConfig& c = ctx.model.config();
  const int64_t F = c.d_expert, L = c.n_layers, d = c.d_model, V = c.d_vocab;
  if (c.n_experts == 0) return;
  // Qwen2-MoE's shared expert is scored as one more expert, after the routed ones.
  const int64_t E = c.n_experts + (c.d_shared_expert > 0 ? 1 : 0);
  auto first = [&](int64_t e) { return e * F; };
  auto size = [&](int64_t e) { return e < c.n_experts ? F : c.d_shared_expert; };
  ex.expert = ScoreArray({L, E});
  if (ex.has_contrast) ex.contrast_expert = ScoreArray({L, E});
  double worst = 0;
  std::vector<float> u(static_cast<size_t>(E * d));   // [E, d_model] expert outputs
  std::vector<float> g(static_cast<size_t>(E * V));   // [E, d_vocab] their projections
  for (int64_t l = 0; l < L; ++l) {
    const LayerWeights& Lw = ctx.model.weights().layers[static_cast<size_t>(l)];
    const float* m = ctx.trace.post(l, ctx.P);  // [E * F]
    std::vector<double> sum(static_cast<size_t>(d), 0.0);
    parallel_for(ctx.threads, d, [&](int64_t i0, int64_t i1) {
      std::vector<float> decoded;  // [E * F] a decoded row when W_out is encoded
      for (int64_t i = i0; i < i1; ++i) {
        const float* row = row_floats(Lw.W_out, i, decoded);
        for (int64_t e = 0; e < E; ++e) {
          double s = 0;  // in double, neurons in order
          for (int64_t k = first(e); k < first(e) + size(e); ++k) s += static_cast<double>(m[k]) * static_cast<double>(row[k]);
          u[static_cast<size_t>(e * d + i)] = static_cast<float>(s);
        }
      }
    });
    for (int64_t e = 0; e < E; ++e) {
      for (int64_t i = 0; i < d; ++i) sum[static_cast<size_t>(i)] += static_cast<double>(u[static_cast<size_t>(e * d + i)]);
    }
    const float* out = ctx.trace.mlp_out(l, ctx.P);
    for (int64_t i = 0; i < d; ++i) {
      const double b = Lw.b_out.empty() ? 0.0 : static_cast<double>(Lw.b_out[i]);
      worst = std::max(worst, std::abs(sum[static_cast<size_t>(i)] + b - static_cast<double>(out[i])));
    }
    ctx.proj.project(u.data(), E, d, g.data());
    const Distribution& dist = ctx.before_ffn(l);
    for (int64_t e = 0; e < E; ++e) {
      const float* ge = g.data() + e * V;
      ex.expert.at({l, e}) = log_prob_increase(dist, ge, 1.0, ctx.w);
      if (ex.has_contrast) {
        ex.contrast_expert.at({l, e}) = foil_contrast(dist, 1.0, static_cast<double>(ge[ctx.w]), static_cast<double>(ge[ctx.foil]), ctx.w, ctx.foil);
      }
    }
  }
  ex.checks["experts_plus_bias_vs_mlp_out"] = worst;
}

}  // namespace reslens::analysis
