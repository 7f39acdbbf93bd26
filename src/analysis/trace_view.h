// TraceView: typed access to the activations explain() reads from a finished run, validated once
// (hooks present, shapes right, every value finite), so the analyses index plain arrays.
#pragma once

#include <cstdint>
#include <span>

#include "reslens/cache.h"
#include "reslens/model.h"
#include "reslens/run.h"

namespace reslens::analysis {

class TraceView {
 public:
  /// Throws InvalidArgument naming a missing hook or the first non-finite activation.
  /// Checks that the run holds explain_capture()'s hooks and logits at every position, and (when
  /// `check_finite`) that none of them holds a NaN or Inf. Views over a run that explain() already
  /// accepted skip the scan.
  TraceView(const Model& model, const RunResult& run, bool check_finite = true);

  /// h^{-1}: the layer-0 input (embedding + positions). [d_model]
  const float* embed(int64_t p) const { return resid_pre(0, p); }
  const float* resid_pre(int64_t l, int64_t p) const { return row(Hook::kResidPre, l, p); }   // h^{l-1}
  const float* attn_out(int64_t l, int64_t p) const { return row(Hook::kAttnOut, l, p); }     // A^l
  const float* resid_mid(int64_t l, int64_t p) const { return row(Hook::kResidMid, l, p); }   // r^l
  const float* mlp_out(int64_t l, int64_t p) const { return row(Hook::kMlpOut, l, p); }       // F^l
  const float* resid_post(int64_t l, int64_t p) const { return row(Hook::kResidPost, l, p); } // h^l
  const float* post(int64_t l, int64_t p) const { return row(Hook::kMlpPost, l, p); }         // m [d_mlp]
  /// Value vector of KV head `kvh` at position p. [d_head]
  const float* v(int64_t l, int64_t p, int64_t kvh) const;
  /// Attention of query q to key k for head h.
  float pattern(int64_t l, int64_t h, int64_t q, int64_t k) const;
  /// Logits of the real model at position p. [d_vocab]
  std::span<const float> logits(int64_t p) const;

  int64_t n_positions() const { return T_; }

 private:
  const float* row(Hook h, int64_t l, int64_t p) const;

  const Model& model_;
  const RunResult& run_;
  int64_t T_ = 0;
};

}  // namespace reslens::analysis
