// The frozen-norm vocabulary projection bs(v) (spec §2.2) and the distributions it induces.
//   GPT-2: bs(v) = W_U (gamma_f * (v - mean(v))) / sigma_f        (+ W_U beta_f only if asked)
//   Llama: bs(v) = W_U (gamma_f * v) / sqrt(mean(h^2) + eps)
// where the scale is frozen at the real final vector h = h_P^{L-1}. bs is linear in v, so
// bs(x + v) = bs(x) + bs(v) and bs(s v) = s bs(v).
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "reslens/model.h"

namespace reslens::analysis {

class VocabProjector {
 public:
  VocabProjector(const Model& model, std::span<const float> final_resid, bool include_final_bias,
                 int n_threads);

  double scale() const { return scale_; }
  int64_t d_model() const { return d_; }
  int64_t d_vocab() const { return V_; }

  /// y = gamma * c(v) / scale: the vector whose dot with row j of W_U is bs_j(v). [d_model]
  void prepare(const float* v, float* y) const;

  /// out[i] = bs(vs[i]) for n vectors vs [n, d_model] (row stride ld) -> out [n, d_vocab].
  void project(const float* vs, int64_t n, int64_t ld, float* out) const;
  /// g0[i] = W_U (gamma * c(vs[i])): bs(vs[i]) before the division by the frozen scale, so
  /// bs(s v) = (s / scale()) g0. It depends on the weights only, not on the explained state, which
  /// lets several explains share it (analysis/shared_projections.h). [n, d_vocab]
  void project_unscaled(const float* vs, int64_t n, int64_t ld, float* out) const;
  /// The same for vectors already prepared (y = prepare(v)).
  void project_prepared(const float* ys, int64_t n, float* out) const;
  /// gamma * c(v), the vector whose product with W_U is project_unscaled's row. [d_model]
  void prepare_unscaled(const float* v, float* y) const;
  /// Columns [v0, v1) of project_prepared's rows (or of project_unscaled's, for vectors from
  /// prepare_unscaled), the same bits: out[i, j - v0] = W_U[j] . ys[i], row stride ldo. Lets a caller
  /// use a block of the rows while it is in cache. [n, v1 - v0]
  void project_prepared_block(const float* ys, int64_t n, int64_t v0, int64_t v1, float* out, int64_t ldo) const;

  /// bs_w(v) for one token: the dot of W_U[w] with prepare(v). Double accumulation.
  double logit(const float* v, int32_t w) const;

  /// Constant added to every state's logits (W_U beta_f + b_U) when the final bias is included;
  /// empty otherwise. [d_vocab]
  const std::vector<float>& bias() const { return bias_; }

  const Model& model() const { return model_; }
  int n_threads() const { return threads_; }

 private:
  const Model& model_;
  int64_t d_ = 0, V_ = 0;
  bool centered_ = false;
  double scale_ = 1.0;
  std::vector<float> gamma_over_scale_;  // [d_model]
  std::vector<float> gamma_;             // [d_model] gamma_f (ln_final_w) as float
  std::vector<float> bias_;
  int threads_ = 0;
};

/// softmax(logits) in double with its log-normaliser: the distribution of a residual state.
/// With a final-logit softcap c (Gemma 2) the logits are c * tanh((bs(x) + bias) / c), and `raw`
/// keeps bs(x) (+ bias): a vector v then moves the capped logits by cap(raw + bs(v)) - logits, which
/// is no longer linear in v (docs/explain.md, "Family features").
struct Distribution {
  std::vector<double> logits;  ///< [d_vocab] bs(x) (+ bias), capped when softcap > 0
  std::vector<double> q;       ///< [d_vocab] softmax
  double lse = 0;              ///< log sum exp(logits)
  double softcap = 0;          ///< the model's final-logit softcap; 0: none
  std::vector<double> raw;     ///< [d_vocab] bs(x) (+ bias) before the cap; empty without one

  /// The change of token j's logit when `delta` (= bs_j(v)) is added to the state: delta itself
  /// without a cap, cap(raw_j + delta) - logits_j with one.
  double logit_change(int64_t j, double delta) const {
    if (softcap <= 0) return delta;
    const auto i = static_cast<size_t>(j);
    return softcap * std::tanh((raw[i] + delta) / softcap) - logits[i];
  }

  double log_prob(int32_t w) const { return logits[static_cast<size_t>(w)] - lse; }
  /// 1 + number of tokens with a larger logit.
  int64_t rank(int32_t w) const;
};
/// softcap > 0: the logits pass c * tanh(x / c) first (the model's final_softcap).
Distribution make_distribution(std::span<const float> logits, const std::vector<float>& bias, double softcap = 0);

/// f = log sum_j q_j exp(s * g_j) for the state d (q = d.q): the change of the log-normaliser when
/// s*g [d_vocab, float] is added to its logits (with a softcap: log sum_j q_j exp(logit_change(j, s g_j)),
/// exact in double; the capped changes are bounded by 2c, so the sum needs no fallback). Shifted by max_j s g_j; when that maximum belongs to
/// a token the state rules out (q_j = 0: a logit ~708 or more below its largest, or -inf) and
/// exceeds the others by hundreds, so that the shifted sum underflows, f is taken from the logits
/// instead, as log sum_j exp(x_j + s g_j) - log sum_j exp(x_j).
double log_expectation(const Distribution& d, const float* g, double s);

/// Importance (spec §3.1) from its two parts: log p(w|x+v) - log p(w|x) = delta_w - f, where delta =
/// bs(v), delta_w its target entry and f = log sum_j q_j exp(delta_j) the change of the log-normaliser
/// (exact from log_expectation, or certified by the bounded method: analysis/bounds.h).
inline double log_prob_increase_from(double delta_w, double f) { return delta_w - f; }

/// Importance (log-probability increase of w, spec §3.1) of adding s*g to a state with distribution
/// q: log softmax(x + s g)_w - log softmax(x)_w without forming either softmax, exact in double.
inline double log_prob_increase(const Distribution& d, const float* g, double s, int32_t w) {
  return log_prob_increase_from(d.logit_change(w, s * static_cast<double>(g[w])), log_expectation(d, g, s));
}

}  // namespace reslens::analysis
