// analysis/layer_scores.cpp: the layer scores of spec §3.1 (rows 1-2) on hand-made residual points,
// against values worked out here: Imp(A^l) = log p(w|r^l) - log p(w|h^{l-1}), Imp(F^l) =
// log p(w|h^l) - log p(w|r^l), their telescoping sum, and the layer contrasts with a foil.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "analysis/explain_internal.h"
#include "reslens/error.h"

namespace reslens::analysis {
namespace {

std::vector<Distribution> points_from(const std::vector<std::vector<float>>& logits) {
  std::vector<Distribution> out;
  for (const auto& l : logits) out.push_back(make_distribution(l, {}));
  return out;
}

// log softmax(z)_i, directly.
double log_softmax_at(const std::vector<float>& z, size_t i) {
  double s = 0;
  for (float v : z) s += std::exp(static_cast<double>(v));
  return static_cast<double>(z[i]) - std::log(s);
}

TEST(LayerScores, OneLayerByHand) {
  // Three tokens; the target 0 and the foil 1. The embedding is uncommitted, attention raises the
  // target's logit by 1, the FFN raises the target and the foil by 1 each and lowers token 2 by 1.
  //   emb   (0, 0, 0):  log p(0) = -log 3
  //   a0    (1, 0, 0):  log p(0) = 1 - log(e + 2)
  //   f0    (2, 1, -1): log p(0) = 2 - log(e^2 + e + e^-1)
  const std::vector<Distribution> pts = points_from({{0, 0, 0}, {1, 0, 0}, {2, 1, -1}});
  const double e = std::exp(1.0);
  const double lp_emb = -std::log(3.0), lp_a = 1 - std::log(e + 2), lp_f = 2 - std::log(e * e + e + 1 / e);
  const LayerScores s = layer_scores(pts, 0, 1);
  ASSERT_EQ(s.attn.size(), 1u);
  ASSERT_EQ(s.ffn.size(), 1u);
  EXPECT_NEAR(s.attn[0], lp_a - lp_emb, 1e-14);  // +0.5472: attention promotes the target
  EXPECT_NEAR(s.ffn[0], lp_f - lp_a, 1e-14);     // +0.2024
  EXPECT_GT(s.attn[0], 0.547);
  EXPECT_LT(s.attn[0], 0.548);
  EXPECT_LE(s.telescoping, 1e-15);
  // The logit difference target - foil: 0 -> 1 (attention), 1 -> 1 (the FFN moves both alike).
  ASSERT_EQ(s.contrast_attn.size(), 1u);
  EXPECT_EQ(s.contrast_attn[0], 1.0);
  EXPECT_EQ(s.contrast_ffn[0], 0.0);
}

TEST(LayerScores, NoFoilNoContrast) {
  const LayerScores s = layer_scores(points_from({{0, 0}, {1, 0}, {1, 2}}), 1, -1);
  EXPECT_TRUE(s.contrast_attn.empty());
  EXPECT_TRUE(s.contrast_ffn.empty());
  EXPECT_NEAR(s.attn[0], log_softmax_at({1, 0}, 1) - log_softmax_at({0, 0}, 1), 1e-14);
  EXPECT_NEAR(s.ffn[0], log_softmax_at({1, 2}, 1) - log_softmax_at({1, 0}, 1), 1e-14);
}

TEST(LayerScores, ManyLayersTelescopeAndMatchTheDirectForm) {
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  const int L = 6;
  const size_t V = 50;
  std::vector<std::vector<float>> logits(2 * L + 1, std::vector<float>(V));
  for (auto& l : logits) {
    for (float& x : l) x = normal(rng);
  }
  const int32_t w = 7, f = 3;
  const auto ws = static_cast<size_t>(w), fs = static_cast<size_t>(f);
  const LayerScores s = layer_scores(points_from(logits), w, f);
  ASSERT_EQ(s.attn.size(), static_cast<size_t>(L));
  double sum = 0;
  for (int l = 0; l < L; ++l) {
    const auto i = static_cast<size_t>(2 * l);
    EXPECT_NEAR(s.attn[static_cast<size_t>(l)], log_softmax_at(logits[i + 1], ws) - log_softmax_at(logits[i], ws), 1e-12);
    EXPECT_NEAR(s.ffn[static_cast<size_t>(l)], log_softmax_at(logits[i + 2], ws) - log_softmax_at(logits[i + 1], ws), 1e-12);
    const double diff_before = static_cast<double>(logits[i][ws]) - static_cast<double>(logits[i][fs]);
    const double diff_mid = static_cast<double>(logits[i + 1][ws]) - static_cast<double>(logits[i + 1][fs]);
    const double diff_after = static_cast<double>(logits[i + 2][ws]) - static_cast<double>(logits[i + 2][fs]);
    EXPECT_EQ(s.contrast_attn[static_cast<size_t>(l)], diff_mid - diff_before);
    EXPECT_EQ(s.contrast_ffn[static_cast<size_t>(l)], diff_after - diff_mid);
    sum += s.attn[static_cast<size_t>(l)] + s.ffn[static_cast<size_t>(l)];
  }
  EXPECT_NEAR(sum, log_softmax_at(logits.back(), ws) - log_softmax_at(logits.front(), ws), 1e-12);
  EXPECT_LE(s.telescoping, 1e-13);
}

TEST(LayerScores, NeedsAnOddNumberOfPoints) {
  EXPECT_THROW(layer_scores({}, 0, -1), InvalidArgument);
  EXPECT_THROW(layer_scores(points_from({{0, 0}, {1, 0}}), 0, -1), InvalidArgument);
}

}  // namespace
}  // namespace reslens::analysis
