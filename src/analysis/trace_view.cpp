#include "analysis/trace_view.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "reslens/error.h"

namespace reslens::analysis {

namespace {

// True when every value is finite. Tests the exponent bits with integer operations, which the compiler
// vectorizes (a float comparison chain would not be), so scanning a long run's cache stays cheap.
bool all_finite(std::span<const float> xs) {
  uint32_t bad = 0;
  for (float x : xs) {
    uint32_t bits = 0;
    std::memcpy(&bits, &x, sizeof x);
    bad |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  return bad == 0;
}

}  // namespace

TraceView::TraceView(const Model& model, const RunResult& run, bool check_finite) : model_(model), run_(run) {
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
      if (check_finite && !all_finite(t.values())) {
        throw InvalidArgument("the model's activations are not finite (NaN or Inf in " + name.to_string() +
                              "): nothing can be attributed");
      }
    }
  }
  // The pattern holds every query row, or those RunOptions::pattern_rows kept.
  const int64_t rows = run.pattern_rows.empty() ? T_ : static_cast<int64_t>(run.pattern_rows.size());
  for (int l = 0; l < c.n_layers; ++l) {
    const Tensor& pat = cache.at(Hook::kPattern, l);
    if (pat.ndim() != 3 || pat.dim(0) != c.n_heads || pat.dim(1) != rows || pat.dim(2) != T_) {
      throw InvalidArgument("explain needs hook_pattern as [n_heads, " + std::to_string(rows) + ", " +
                            std::to_string(T_) + "] (" + HookName{Hook::kPattern, l}.to_string() + ")");
    }
  }
  // Post-norm models (OLMo 2): the coefficients are divided by the frozen post-sublayer scales.
  if (c.post_norm) {
    const int64_t N = c.d_mlp;
    scaled_post_.resize(static_cast<size_t>(c.n_layers * T_ * N));
    attn_scale_.resize(static_cast<size_t>(c.n_layers * T_));
    for (int l = 0; l < c.n_layers; ++l) {
      const Tensor& s1 = cache.at(HookName{Hook::kLn1PostScale, l});
      const Tensor& s2 = cache.at(HookName{Hook::kLn2PostScale, l});
      const Tensor& m = cache.at(HookName{Hook::kMlpPost, l});
      for (int64_t t = 0; t < T_; ++t) {
        attn_scale_[static_cast<size_t>(l * T_ + t)] = s1.data()[t];
        const float inv = s2.data()[t];
        for (int64_t k = 0; k < N; ++k) {
          scaled_post_[static_cast<size_t>((l * T_ + t) * N + k)] = m.row(t)[k] / inv;
        }
      }
    }
  }
  // Logits at every position, or (RunOptions::all_logits off) at the last one only, which is all
  // an explanation of the last position reads.
  if (run.logits.dim(0) != T_ && run.logits.dim(0) != 1) {
    throw InvalidArgument("explain needs the run's logits (at every position, RunOptions::all_logits, or the last)");
  }
  if (check_finite && !all_finite(run.logits.values())) {
    throw InvalidArgument("the model's logits are not finite (NaN or Inf)");
  }
}

const float* TraceView::row(Hook h, int64_t l, int64_t p) const {
  return run_.cache.at(h, static_cast<int>(l)).row(p);
}

const float* TraceView::v(int64_t l, int64_t p, int64_t kvh) const {
  return run_.cache.at(Hook::kV, static_cast<int>(l)).row(p) + kvh * model_.config().d_head;
}

int64_t TraceView::pattern_row(int64_t q) const {
  const std::vector<int64_t>& rows = run_.pattern_rows;
  if (rows.empty()) return q;
  const auto it = std::lower_bound(rows.begin(), rows.end(), q);
  if (it == rows.end() || *it != q) {
    throw InvalidArgument("explaining position " + std::to_string(q) +
                          " needs its attention pattern row, which the run did not keep (RunOptions::pattern_rows)");
  }
  return it - rows.begin();
}

float TraceView::pattern(int64_t l, int64_t h, int64_t q, int64_t k) const {
  const Tensor& t = run_.cache.at(Hook::kPattern, static_cast<int>(l));
  return t.data()[(h * t.dim(1) + pattern_row(q)) * t.dim(2) + k];
}

std::span<const float> TraceView::logits(int64_t p) const {
  if (run_.logits.dim(0) == T_) return {run_.logits.row(p), static_cast<size_t>(run_.logits.dim(1))};
  if (p != T_ - 1) {
    throw InvalidArgument("explaining position " + std::to_string(p) + " of " + std::to_string(T_) +
                          " needs logits at every position (RunOptions::all_logits)");
  }
  return {run_.logits.row(0), static_cast<size_t>(run_.logits.dim(1))};
}

}  // namespace reslens::analysis
