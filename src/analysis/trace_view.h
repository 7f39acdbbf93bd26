// TraceView: typed access to the activations explain() reads from a finished run, validated once
// (hooks present, shapes right, every value finite), so the analyses index plain arrays.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

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
  /// FFN neuron coefficients at p: m [d_mlp], divided by the post-MLP norm's frozen scale when the
  /// model has one (ModelConfig::post_norm), so that sum_k post_k W_out[:, k] is F^l.
  const float* post(int64_t l, int64_t p) const {
    return scaled_post_.empty() ? row(Hook::kMlpPost, l, p) : scaled_post_.data() + (l * T_ + p) * model_.config().d_mlp;
  }
  /// Value vector of KV head `kvh` at position p. [d_head]
  const float* v(int64_t l, int64_t p, int64_t kvh) const;
  /// Attention of query q to key k for head h. InvalidArgument when the run kept other query rows
  /// only (RunOptions::pattern_rows).
  float pattern(int64_t l, int64_t h, int64_t q, int64_t k) const;
  /// The attention neurons' coefficient factor alpha for query q: the pattern, divided by the
  /// post-attention norm's frozen scale at q when the model has one (alpha_{q,k} v_k W_O[:, n] summed
  /// is then A^l).
  double coef_pattern(int64_t l, int64_t h, int64_t q, int64_t k) const {
    const double a = static_cast<double>(pattern(l, h, q, k));
    return attn_scale_.empty() ? a : a / static_cast<double>(attn_scale_[static_cast<size_t>(l * T_ + q)]);
  }
  /// Logits of the real model at position p. [d_vocab]
  std::span<const float> logits(int64_t p) const;

  int64_t n_positions() const { return T_; }

 private:
  const float* row(Hook h, int64_t l, int64_t p) const;
  /// Query q's row in the recorded pattern.
  int64_t pattern_row(int64_t q) const;

  const Model& model_;
  const RunResult& run_;
  int64_t T_ = 0;
  std::vector<float> scaled_post_;  ///< post-norm models: hook_post / ln2_post scale [L, T, d_mlp]
  std::vector<float> attn_scale_;   ///< post-norm models: ln1_post scale [L, T]
};

}  // namespace reslens::analysis
