#include "analysis/projector.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "model/weight_rows.h"
#include "ops/vector_ops.h"
#include "reslens/error.h"

namespace reslens::analysis {

VocabProjector::VocabProjector(const Model& model, std::span<const float> h, bool include_final_bias,
                               int n_threads)
    : model_(model), threads_(n_threads) {
  const ModelConfig& c = model.config();
  const ModelWeights& W = model.weights();
  d_ = c.d_model;
  V_ = c.d_vocab;
  centered_ = c.normalization_type == NormType::kLayerNorm;
  double mean = 0;
  if (centered_) {
    for (float x : h) mean += static_cast<double>(x);
    mean /= static_cast<double>(d_);
  }
  double sq = 0;
  for (float x : h) sq += (static_cast<double>(x) - mean) * (static_cast<double>(x) - mean);
  scale_ = std::sqrt(sq / static_cast<double>(d_) + static_cast<double>(c.eps));
  gamma_over_scale_.resize(static_cast<size_t>(d_));
  gamma_.resize(static_cast<size_t>(d_));
  for (int64_t i = 0; i < d_; ++i) {
    gamma_[static_cast<size_t>(i)] = W.ln_final_w[i];
    gamma_over_scale_[static_cast<size_t>(i)] = static_cast<float>(static_cast<double>(W.ln_final_w[i]) / scale_);
  }
  if (include_final_bias && (!W.ln_final_b.empty() || !W.b_U.empty())) {
    bias_.assign(static_cast<size_t>(V_), 0.0f);
    std::vector<float> row;  // [d_model] a decoded row of an encoded W_U
    for (int64_t j = 0; j < V_; ++j) {
      double s = W.b_U.empty() ? 0.0 : static_cast<double>(W.b_U[j]);
      if (!W.ln_final_b.empty()) {
        const float* u = row_floats(W.W_U, j, row);
        for (int64_t i = 0; i < d_; ++i) s += static_cast<double>(u[i]) * static_cast<double>(W.ln_final_b[i]);
      }
      bias_[static_cast<size_t>(j)] = static_cast<float>(s);
    }
  }
}

void VocabProjector::prepare(const float* v, float* y) const {
  double mean = 0;
  if (centered_) {
    for (int64_t i = 0; i < d_; ++i) mean += static_cast<double>(v[i]);
    mean /= static_cast<double>(d_);
  }
  for (int64_t i = 0; i < d_; ++i) {
    y[i] = static_cast<float>((static_cast<double>(v[i]) - mean) * static_cast<double>(gamma_over_scale_[static_cast<size_t>(i)]));
  }
}

void VocabProjector::project(const float* vs, int64_t n, int64_t ld, float* out) const {
  std::vector<float> ys(static_cast<size_t>(n * d_));
  for (int64_t r = 0; r < n; ++r) prepare(vs + r * ld, ys.data() + r * d_);
  project_prepared(ys.data(), n, out);
}

void VocabProjector::prepare_unscaled(const float* v, float* y) const {
  double mean = 0;
  if (centered_) {
    for (int64_t i = 0; i < d_; ++i) mean += static_cast<double>(v[i]);
    mean /= static_cast<double>(d_);
  }
  for (int64_t i = 0; i < d_; ++i) {
    y[i] = static_cast<float>((static_cast<double>(v[i]) - mean) * static_cast<double>(gamma_[static_cast<size_t>(i)]));
  }
}

void VocabProjector::project_unscaled(const float* vs, int64_t n, int64_t ld, float* out) const {
  std::vector<float> ys(static_cast<size_t>(n * d_));  // [n, d_model] gamma * c(v)
  for (int64_t r = 0; r < n; ++r) prepare_unscaled(vs + r * ld, ys.data() + r * d_);
  project_prepared(ys.data(), n, out);
}

void VocabProjector::project_prepared_block(const float* ys, int64_t n, int64_t v0, int64_t v1, float* out,
                                            int64_t ldo) const {
  // matmul_nt's element depends only on its row of A and of B, so a block of W_U's rows gives the
  // same bits as the whole product.
  matmul_weights(n, ys, d_, model_.weights().W_U.rows_slice(v0, v1 - v0), out, ldo, threads_);
}

void VocabProjector::project_prepared(const float* ys, int64_t n, float* out) const {
  matmul_weights(n, ys, d_, model_.weights().W_U, out, V_, threads_);
}

double VocabProjector::logit(const float* v, int32_t w) const {
  std::vector<float> y(static_cast<size_t>(d_));
  prepare(v, y.data());
  std::vector<float> row;  // [d_model]
  const float* u = row_floats(model_.weights().W_U, w, row);
  double s = 0;
  for (int64_t i = 0; i < d_; ++i) s += static_cast<double>(u[i]) * static_cast<double>(y[static_cast<size_t>(i)]);
  return s;
}

int64_t Distribution::rank(int32_t w) const {
  const double lw = logits[static_cast<size_t>(w)];
  int64_t r = 1;
  for (double l : logits) r += l > lw ? 1 : 0;
  return r;
}

Distribution make_distribution(std::span<const float> logits, const std::vector<float>& bias, double softcap) {
  Distribution d;
  const size_t V = logits.size();
  d.logits.resize(V);
  d.softcap = softcap > 0 ? softcap : 0;
  if (d.softcap > 0) d.raw.resize(V);
  double mx = -std::numeric_limits<double>::infinity();
  for (size_t j = 0; j < V; ++j) {
    d.logits[j] = static_cast<double>(logits[j]) + (bias.empty() ? 0.0 : static_cast<double>(bias[j]));
    if (d.softcap > 0) {
      d.raw[j] = d.logits[j];
      d.logits[j] = d.softcap * std::tanh(d.raw[j] / d.softcap);
    }
    mx = std::max(mx, d.logits[j]);
  }
  d.q.resize(V);
  const double sum = ops::exp_shifted(d.logits.data(), mx, d.q.data(), static_cast<int64_t>(V));
  for (double& x : d.q) x /= sum;
  d.lse = mx + std::log(sum);
  return d;
}

namespace {

// log sum_j exp(x_j + s g_j) - log sum_j exp(x_j), from the logits x (tokens at -inf contribute 0).
double log_expectation_from_logits(const Distribution& d, const float* g, double s) {
  double mx = -std::numeric_limits<double>::infinity();
  for (size_t j = 0; j < d.logits.size(); ++j) {
    if (d.logits[j] > -std::numeric_limits<double>::infinity()) mx = std::max(mx, d.logits[j] + s * static_cast<double>(g[j]));
  }
  double sum = 0;
  for (size_t j = 0; j < d.logits.size(); ++j) {
    if (d.logits[j] > -std::numeric_limits<double>::infinity()) sum += std::exp(d.logits[j] + s * static_cast<double>(g[j]) - mx);
  }
  return mx + std::log(sum) - d.lse;
}

// The softcapped form: log sum_j q_j exp(delta_j), delta_j = cap(raw_j + s g_j) - cap(raw_j). Every
// |delta_j| < 2c, so shifting by the largest keeps the sum at least the largest q_j's term.
double log_expectation_capped(const Distribution& d, const float* g, double s) {
  const size_t V = d.q.size();
  std::vector<double> delta(V);
  double mx = -std::numeric_limits<double>::infinity();
  for (size_t j = 0; j < V; ++j) {
    delta[j] = d.logit_change(static_cast<int64_t>(j), s * static_cast<double>(g[j]));
    if (d.q[j] > 0) mx = std::max(mx, delta[j]);
  }
  double sum = 0;
  for (size_t j = 0; j < V; ++j) sum += d.q[j] * std::exp(delta[j] - mx);
  return mx + std::log(sum);
}

}  // namespace

double log_expectation(const Distribution& d, const float* g, double s) {
  if (d.softcap > 0) return log_expectation_capped(d, g, s);
  const auto V = static_cast<int64_t>(d.q.size());
  const double mx = ops::max_scaled(g, s, V);
  const double sum = ops::exp_weighted_sum(d.q.data(), g, s, mx, V);
  // Each term is within a few ulp and the terms exp flushes (exponents below -708) add less than
  // e^-708 in all (sum_j q_j = 1), so a sum above 1e-200 is exact to rounding. A smaller one means
  // that the shift came from tokens the state rules out (below, the log would lose digits or be
  // -inf, and Imp +inf): take f from the logits instead. Real models' logits never get there.
  if (sum >= 1e-200) return mx + std::log(sum);
  return log_expectation_from_logits(d, g, s);
}

}  // namespace reslens::analysis
