#include "analysis/trace_view.h"

#include <cmath>

#include "reslens/error.h"

namespace reslens::analysis {

TraceView::TraceView(const Model& model, const RunResult& run) : model_(model), run_(run) {
  const ModelConfig& c = model.config();
  const ActivationCache& cache = run.cache;
  if (!cache.contains(HookName{Hook::kResidPre, 0})) {
    throw InvalidArgument("explain needs a run that recorded explain_capture() hooks");
  }
  T_ = cache.at(Hook::kResidPre, 0).dim(0);
  const Hook needed[] = {Hook::kResidPre, Hook::kAttnOut, Hook::kResidMid, Hook::kMlpOut,
                         Hook::kResidPost, Hook::kMlpPost, Hook::kV, Hook::kPattern};
  for (int l = 0; l < c.n_layers; ++l) {
    for (Hook h : needed) {
      const HookName name{h, l};
      const Tensor& t = cache.at(name);  // throws InvalidArgument naming the hook
      for (float x : t.values()) {
        if (!std::isfinite(x)) {
          throw InvalidArgument("the model's activations are not finite (NaN or Inf in " + name.to_string() +
                                "): nothing can be attributed");
        }
      }
    }
  }
  if (run.logits.dim(0) != T_) {
    throw InvalidArgument("explain needs logits at every position (RunOptions::all_logits)");
  }
  for (float x : run.logits.values()) {
    if (!std::isfinite(x)) throw InvalidArgument("the model's logits are not finite (NaN or Inf)");
  }
}

const float* TraceView::row(Hook h, int64_t l, int64_t p) const {
  return run_.cache.at(h, static_cast<int>(l)).row(p);
}

const float* TraceView::v(int64_t l, int64_t p, int64_t kvh) const {
  return run_.cache.at(Hook::kV, static_cast<int>(l)).row(p) + kvh * model_.config().d_head;
}

float TraceView::pattern(int64_t l, int64_t h, int64_t q, int64_t k) const {
  const Tensor& t = run_.cache.at(Hook::kPattern, static_cast<int>(l));
  return t.data()[(h * t.dim(1) + q) * t.dim(2) + k];
}

std::span<const float> TraceView::logits(int64_t p) const {
  return {run_.logits.row(p), static_cast<size_t>(run_.logits.dim(1))};
}

}  // namespace reslens::analysis
