// Layer scores (spec §3.1 table rows 1-2, notebook cell 5): the importance of A^l in the context
// h_P^{l-1} and of F^l in the context r_P^l. The context and context + vector are both real points
// of the residual stream, so each score is a difference of two points' log-probabilities of the
// target, and the scores telescope exactly (spec §3.1, "Invariant"): their sum is
// log p(w|h_P^{L-1}) - log p(w|h_P^{-1}).
#include <cmath>

#include "analysis/contrast.h"
#include "analysis/explain_internal.h"
#include "reslens/error.h"

namespace reslens::analysis {

LayerScores layer_scores(const std::vector<Distribution>& points, int32_t w, int32_t foil) {
  if (points.empty() || points.size() % 2 != 1) {
    throw InvalidArgument("layer_scores: " + std::to_string(points.size()) + " residual points, not 2L+1");
  }
  const auto L = static_cast<int64_t>(points.size() / 2);
  auto at = [&](int64_t i) -> const Distribution& { return points[static_cast<size_t>(i)]; };
  LayerScores out;
  double sum = 0;
  for (int64_t l = 0; l < L; ++l) {
    out.attn.push_back(at(2 * l + 1).log_prob(w) - at(2 * l).log_prob(w));
    out.ffn.push_back(at(2 * l + 2).log_prob(w) - at(2 * l + 1).log_prob(w));
    sum += out.attn.back() + out.ffn.back();
  }
  out.telescoping = std::abs(sum - (points.back().log_prob(w) - points.front().log_prob(w)));
  if (foil >= 0) {
    for (int64_t l = 0; l < L; ++l) {
      out.contrast_attn.push_back(foil_contrast_between(at(2 * l), at(2 * l + 1), w, foil));
      out.contrast_ffn.push_back(foil_contrast_between(at(2 * l + 1), at(2 * l + 2), w, foil));
    }
  }
  return out;
}

void score_layers(const ExplainContext& ctx, Explanation& ex) {
  LayerScores s = layer_scores(ctx.points, ctx.w, ctx.foil);
  ex.attn_layer = std::move(s.attn);
  ex.ffn_layer = std::move(s.ffn);
  ex.checks["telescoping"] = s.telescoping;
  if (ctx.foil >= 0) {
    ex.has_contrast = true;
    ex.contrast_attn_layer = std::move(s.contrast_attn);
    ex.contrast_ffn_layer = std::move(s.contrast_ffn);
  }
}

}  // namespace reslens::analysis
