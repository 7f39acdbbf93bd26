// analysis/contrast.h: the contrast score of a --foil, the increase of log p(w) - log p(f) when a
// vector is added, against its definition evaluated here in long double with each state's own
// normaliser (which the closed forms cancel): foil_contrast for a vector with projection s*g,
// foil_contrast_between for the step between two states.
#include "analysis/contrast.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace reslens::analysis {
namespace {

using LD = long double;

LD log_softmax_at(const std::vector<LD>& z, size_t i) {
  LD mx = -std::numeric_limits<LD>::infinity();
  for (LD v : z) mx = std::max(mx, v);
  LD s = 0;
  for (LD v : z) s += std::exp(v - mx);
  return z[i] - (mx + std::log(s));
}

// [log p(w|x+sg) - log p(f|x+sg)] - [log p(w|x) - log p(f|x)], every log p from its own softmax.
double direct_contrast(const std::vector<float>& x, const std::vector<float>& g, double s, int32_t w, int32_t f) {
  std::vector<LD> before, after;
  for (size_t j = 0; j < x.size(); ++j) {
    before.push_back(static_cast<LD>(x[j]));
    after.push_back(static_cast<LD>(x[j]) + static_cast<LD>(s) * static_cast<LD>(g[j]));
  }
  const auto ws = static_cast<size_t>(w), fs = static_cast<size_t>(f);
  return static_cast<double>((log_softmax_at(after, ws) - log_softmax_at(after, fs)) -
                             (log_softmax_at(before, ws) - log_softmax_at(before, fs)));
}

std::vector<float> normal_vector(std::mt19937& rng, size_t n, float scale, float offset = 0.0f) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = offset + scale * normal(rng);
  return v;
}

TEST(Contrast, IsTheLogProbabilityDifferenceIncreaseInEveryContext) {
  std::mt19937 rng(1);
  const size_t V = 3000;
  const std::vector<float> g = normal_vector(rng, V, 2.0f);
  // The same vector in very different contexts (sharp, flat, far from zero): one contrast.
  const std::vector<std::vector<float>> contexts = {normal_vector(rng, V, 1.0f), normal_vector(rng, V, 15.0f),
                                                    std::vector<float>(V, 0.0f), normal_vector(rng, V, 3.0f, 5e4f)};
  for (double s : {-7.5, -1.0, 0.0, 0.3, 12.0}) {
    for (const auto& [w, f] : {std::pair<int32_t, int32_t>{0, 1}, {17, 2999}, {2999, 17}, {1500, 3}}) {
      const double got = foil_contrast(s, static_cast<double>(g[static_cast<size_t>(w)]), static_cast<double>(g[static_cast<size_t>(f)]));
      for (const auto& x : contexts) {
        EXPECT_NEAR(got, direct_contrast(x, g, s, w, f), 1e-12 * (1 + std::abs(s) * 20)) << "s " << s << " w " << w << " f " << f;
      }
    }
  }
}

TEST(Contrast, IsLinearInTheCoefficientAndAntisymmetric) {
  std::mt19937 rng(2);
  std::normal_distribution<double> normal(0.0, 10.0);
  for (int i = 0; i < 1000; ++i) {
    const double s = normal(rng), a = normal(rng), b = normal(rng);
    // The callers' outputs are bit-identical to the s * (g_w - g_f) they used to write out.
    EXPECT_EQ(foil_contrast(s, a, b), s * (a - b));
    EXPECT_EQ(foil_contrast(s, a, b), -foil_contrast(s, b, a));
    EXPECT_EQ(foil_contrast(1.0, a, b), a - b);  // heads and experts pass s = 1
    EXPECT_EQ(foil_contrast(s, a, a), 0.0);
    EXPECT_NEAR(foil_contrast(2 * s, a, b), 2 * foil_contrast(s, a, b), 1e-15 * std::abs(s * (a - b)));
  }
}

TEST(Contrast, BetweenTwoStatesIsTheChangeOfTheirLogProbabilityDifference) {
  std::mt19937 rng(3);
  const size_t V = 512;
  const std::vector<float> x = normal_vector(rng, V, 4.0f);
  std::vector<float> g = normal_vector(rng, V, 1.0f), x2(V);
  for (size_t j = 0; j < V; ++j) x2[j] = x[j] + g[j];
  const Distribution before = make_distribution(x, {}), after = make_distribution(x2, {});
  for (const auto& [w, f] : {std::pair<int32_t, int32_t>{0, 1}, {511, 200}, {200, 511}}) {
    const double got = foil_contrast_between(before, after, w, f);
    const auto ws = static_cast<size_t>(w), fs = static_cast<size_t>(f);
    // Against each state's log-probabilities (normalisers included) ...
    EXPECT_NEAR(got, (after.log_prob(w) - after.log_prob(f)) - (before.log_prob(w) - before.log_prob(f)), 1e-12);
    // ... and against the vector between them: bs_w(x2 - x) - bs_f(x2 - x) (x2 was rounded to float).
    const double vw = static_cast<double>(x2[ws]) - static_cast<double>(x[ws]);
    const double vf = static_cast<double>(x2[fs]) - static_cast<double>(x[fs]);
    EXPECT_NEAR(got, foil_contrast(1.0, vw, vf), 1e-12);
    EXPECT_NEAR(got, static_cast<double>(g[ws]) - static_cast<double>(g[fs]), 1e-5);
    EXPECT_EQ(got, -foil_contrast_between(before, after, f, w));
    EXPECT_EQ(foil_contrast_between(before, before, w, f), 0.0);
  }
}

}  // namespace
}  // namespace reslens::analysis
