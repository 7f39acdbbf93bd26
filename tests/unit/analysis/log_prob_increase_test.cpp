// analysis/projector.h: log_prob_increase, the importance of spec §3.1, Imp(v|x) = log p(w|x+v) -
// log p(w|x), which explain() evaluates without forming either softmax (as s g_w - log E_q[exp(s g)]),
// against its direct form log softmax(x + s g)_w - log softmax(x)_w computed here in long double,
// on ordinary, large-magnitude and adversarial inputs (huge logits, ties, -inf and -1e30 logits,
// saturation). Also log_prob_increase_from, the form the bounded method finishes with.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "analysis/projector.h"

namespace reslens::analysis {
namespace {

using LD = long double;

// log sum_j exp(z_j) in long double, shifted by the maximum (-inf entries contribute 0).
LD log_sum_exp(const std::vector<LD>& z) {
  LD mx = -std::numeric_limits<LD>::infinity();
  for (LD v : z) mx = std::max(mx, v);
  LD s = 0;
  for (LD v : z) s += std::exp(v - mx);
  return mx + std::log(s);
}

// The direct form: log softmax(x + s g)_w - log softmax(x)_w.
double direct_increase(const std::vector<float>& x, const std::vector<float>& g, double s, int32_t w) {
  std::vector<LD> before, after;
  for (size_t j = 0; j < x.size(); ++j) {
    before.push_back(static_cast<LD>(x[j]));
    after.push_back(static_cast<LD>(x[j]) + static_cast<LD>(s) * static_cast<LD>(g[j]));
  }
  const auto ws = static_cast<size_t>(w);
  return static_cast<double>((after[ws] - log_sum_exp(after)) - (before[ws] - log_sum_exp(before)));
}

// How far the two may differ: double rounding (~1e-16) of the largest magnitude that matters, over
// the tokens with a representable probability in the context (within 745 of its largest logit).
double tolerance(const std::vector<float>& x, const std::vector<float>& g, double s) {
  double xmax = -std::numeric_limits<double>::infinity();
  for (float v : x) xmax = std::max(xmax, static_cast<double>(v));
  double big = 1;
  for (size_t j = 0; j < x.size(); ++j) {
    if (!(static_cast<double>(x[j]) >= xmax - 745)) continue;
    big = std::max(big, std::abs(static_cast<double>(x[j])));
    big = std::max(big, std::abs(s * static_cast<double>(g[j])));
  }
  return 1e-13 * big;
}

::testing::AssertionResult matches_direct(const std::vector<float>& x, const std::vector<float>& g, double s, int32_t w) {
  const Distribution d = make_distribution(x, {});
  const double got = log_prob_increase(d, g.data(), s, w);
  const double want = direct_increase(x, g, s, w);
  const double tol = tolerance(x, g, s);
  if (std::abs(got - want) <= tol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "log_prob_increase " << got << " vs direct " << want << " (diff "
                                       << got - want << ", tol " << tol << ") at s = " << s << ", w = " << w;
}

std::vector<float> normal_vector(std::mt19937& rng, size_t n, float scale, float offset = 0.0f) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = offset + scale * normal(rng);
  return v;
}

TEST(LogProbIncrease, MatchesTheDirectFormOnRandomInputs) {
  std::mt19937 rng(1);
  for (size_t V : {1u, 2u, 7u, 1000u, 32000u}) {
    const std::vector<float> x = normal_vector(rng, V, 3.0f), g = normal_vector(rng, V, 1.0f);
    for (double s : {-10.0, -1.0, -0.1, 0.0, 1e-8, 0.1, 1.0, 10.0}) {
      for (int32_t w : {0, static_cast<int32_t>(V / 2), static_cast<int32_t>(V - 1)}) {
        EXPECT_TRUE(matches_direct(x, g, s, w)) << "V = " << V;
      }
    }
  }
}

TEST(LogProbIncrease, IsZeroForAZeroOrUniformVector) {
  std::mt19937 rng(2);
  const std::vector<float> x = normal_vector(rng, 500, 4.0f);
  const Distribution d = make_distribution(x, {});
  const std::vector<float> zero(500, 0.0f), flat(500, 3.25f);
  // (log sum_j q_j, with the q_j as rounded: 0 within a few ulp)
  EXPECT_NEAR(log_prob_increase(d, zero.data(), 1.0, 7), 0.0, 1e-15);
  EXPECT_NEAR(log_prob_increase(d, flat.data(), 0.0, 7), 0.0, 1e-15);
  // s * g is the same for every token: the softmax does not move.
  EXPECT_NEAR(log_prob_increase(d, flat.data(), 2.0, 7), 0.0, 1e-14);
  EXPECT_TRUE(matches_direct(x, flat, -17.0, 7));
}

TEST(LogProbIncrease, HugeLogitsAndHugeVectors) {
  std::mt19937 rng(3);
  const size_t V = 4096;
  // Logits far from zero (softmax is shift-invariant; floats this size are 0.06 apart): a real
  // model's bs values are at most a few hundred, these go well past that.
  for (float offset : {1e4f, -1e6f, 3e7f}) {
    const std::vector<float> x = normal_vector(rng, V, 5.0f, offset), g = normal_vector(rng, V, 2.0f);
    for (double s : {-30.0, 1.0, 50.0}) EXPECT_TRUE(matches_direct(x, g, s, 11)) << "offset " << offset;
  }
  // A wide context (logits spread over 600) and a vector that moves logits by up to +-600.
  std::vector<float> x(V), g(V);
  std::uniform_real_distribution<float> u(-300.0f, 300.0f);
  for (size_t j = 0; j < V; ++j) x[j] = u(rng), g[j] = u(rng) / 300.0f;
  for (double s : {-600.0, -5.0, 600.0}) {
    for (int32_t w : {0, 100, 4095}) EXPECT_TRUE(matches_direct(x, g, s, w));
  }
}

TEST(LogProbIncrease, TiesInTheContextAndInTheVector) {
  const size_t V = 64;
  // Every logit equal: q uniform; the target tied with others for the vector's maximum.
  std::vector<float> x(V, 2.0f), g(V, -1.0f);
  for (size_t j : {3u, 9u, 40u}) g[j] = 4.0f;
  for (double s : {-100.0, -1.0, 1.0, 100.0, 1000.0}) {
    for (int32_t w : {3, 9, 5}) EXPECT_TRUE(matches_direct(x, g, s, w)) << "s = " << s;
  }
  // The saturated limit: a tied maximum of s*g shared by k tokens gives log(1/k) - log p(w|x).
  const Distribution d = make_distribution(x, {});
  EXPECT_NEAR(log_prob_increase(d, g.data(), 1000.0, 3), std::log(1.0 / 3.0) - std::log(1.0 / 64.0), 1e-12);
  // Two tied maxima of the context, one pushed down.
  std::vector<float> x2(V, -5.0f), g2(V, 0.0f);
  x2[0] = x2[1] = 10.0f;
  g2[1] = -3.0f;
  for (double s : {0.5, 5.0, 50.0}) {
    for (int32_t w : {0, 1, 2}) EXPECT_TRUE(matches_direct(x2, g2, s, w));
  }
}

TEST(LogProbIncrease, MinusInfinityAndHugelyNegativeLogits) {
  std::mt19937 rng(4);
  const size_t V = 300;
  std::vector<float> x = normal_vector(rng, V, 2.0f), g = normal_vector(rng, V, 3.0f);
  // Masked tokens (-inf), tokens at -1e30 and at the float minimum: probability 0 in both states,
  // whatever the vector adds to them.
  for (size_t j = 0; j < V; j += 3) x[j] = -std::numeric_limits<float>::infinity();
  for (size_t j = 1; j < V; j += 7) x[j] = -1e30f;
  x[2] = std::numeric_limits<float>::lowest();
  for (double s : {-4.0, 0.25, 4.0}) {
    for (int32_t w : {5, 10, 298}) {
      ASSERT_TRUE(std::isfinite(x[static_cast<size_t>(w)]) && x[static_cast<size_t>(w)] > -1e29f);
      EXPECT_TRUE(matches_direct(x, g, s, w));
    }
  }
  // The target's own logit pushed to -1e30 by the vector: log p(w) falls by ~1e30.
  std::vector<float> g2(V, 0.0f);
  g2[5] = -1e30f;
  const Distribution d = make_distribution(x, {});
  const double want = direct_increase(x, g2, 1.0, 5);
  EXPECT_NEAR(log_prob_increase(d, g2.data(), 1.0, 5), want, 1e-13 * 1e30);
}

TEST(LogProbIncrease, ATokenTheContextRulesOutCanCarryTheVectorsLargestEntry) {
  // Tokens with q_j = 0 in the context (-inf, or more than 708 below its largest logit, which the
  // exp flushes) whose s g_j is larger than every other token's by hundreds: the q-weighted sum
  // shifted by max s g underflows. The score must still be the direct form, not +inf or 0.
  std::mt19937 rng(8);
  const size_t V = 300;
  std::vector<float> x = normal_vector(rng, V, 2.0f), g = normal_vector(rng, V, 3.0f);
  x[0] = -std::numeric_limits<float>::infinity();
  g[0] = 1e4f;  // lifting a masked token changes nothing
  x[1] = -710.0f;  // q_1 = 0 after the flush, but x_1 + s g_1 ends 5 below the others' top
  for (double s : {0.25, 1.0, 4.0}) {
    g[1] = static_cast<float>((705.0 + static_cast<double>(x[7])) / s);
    for (int32_t w : {2, 7, 299}) EXPECT_TRUE(matches_direct(x, g, s, w)) << "s " << s;
  }
  // Two tokens; the second 750 below the first in the context, 50 above it once the vector is added.
  const std::vector<float> x2 = {0.0f, -750.0f}, g2 = {0.0f, 800.0f};
  const Distribution d2 = make_distribution(x2, {});
  EXPECT_EQ(d2.q[1], 0.0);
  EXPECT_NEAR(log_prob_increase(d2, g2.data(), 1.0, 0), -50.0, 1e-12);
  EXPECT_NEAR(log_prob_increase(d2, g2.data(), 1.0, 1), 750.0, 1e-12);
  // Not lifted past the first: the shifted sum is e^-705, a normal double but one that has lost the
  // token (the flushed q_1); the score is -log(1 + e^-5), not 0.
  const std::vector<float> x3 = {0.0f, -710.0f}, g3 = {0.0f, 705.0f};
  EXPECT_NEAR(log_prob_increase(make_distribution(x3, {}), g3.data(), 1.0, 0), -std::log1p(std::exp(-5.0)), 1e-12);
}

TEST(LogProbIncrease, SaturatesAtMinusTheContextLogProbability) {
  // A vector that makes w the only likely token: Imp -> -log p(w|x), the most it can be.
  std::mt19937 rng(5);
  const size_t V = 1000;
  const std::vector<float> x = normal_vector(rng, V, 3.0f);
  std::vector<float> g(V, 0.0f);
  g[42] = 1.0f;
  const Distribution d = make_distribution(x, {});
  EXPECT_NEAR(log_prob_increase(d, g.data(), 700.0, 42), -d.log_prob(42), 1e-10);
  EXPECT_TRUE(matches_direct(x, g, 700.0, 42));
  EXPECT_TRUE(matches_direct(x, g, -700.0, 42));
}

TEST(LogProbIncrease, FromItsPartsIsDeltaWMinusTheLogExpectation) {
  std::mt19937 rng(6);
  const size_t V = 777;
  const std::vector<float> x = normal_vector(rng, V, 2.0f), g = normal_vector(rng, V, 1.0f);
  const Distribution d = make_distribution(x, {});
  for (double s : {-2.0, 0.5, 3.0}) {
    const double f = log_expectation(d, g.data(), s);
    const double delta_w = s * static_cast<double>(g[9]);
    // Bit for bit: the bounded method's scores are this expression with a certified f.
    EXPECT_EQ(log_prob_increase_from(delta_w, f), log_prob_increase(d, g.data(), s, 9));
    EXPECT_EQ(log_prob_increase_from(delta_w, f), delta_w - f);
    // f itself: log sum_j q_j exp(s g_j), the change of the log-normaliser.
    std::vector<LD> before, after;
    for (size_t j = 0; j < V; ++j) {
      before.push_back(static_cast<LD>(x[j]));
      after.push_back(static_cast<LD>(x[j]) + static_cast<LD>(s) * static_cast<LD>(g[j]));
    }
    EXPECT_NEAR(f, static_cast<double>(log_sum_exp(after) - log_sum_exp(before)), 1e-13 * (1 + std::abs(f)));
  }
}

TEST(LogProbIncrease, AddsUpAlongAPathOfVectors) {
  // Imp(v1 | x) + Imp(v2 | x + v1) = Imp(v1 + v2 | x): the layer scores telescope because of this.
  std::mt19937 rng(7);
  const size_t V = 2000;
  const std::vector<float> x = normal_vector(rng, V, 3.0f), g1 = normal_vector(rng, V, 1.0f), g2 = normal_vector(rng, V, 1.0f);
  std::vector<float> x1(V), g12(V);
  for (size_t j = 0; j < V; ++j) x1[j] = x[j] + g1[j], g12[j] = g1[j] + g2[j];
  const double a = log_prob_increase(make_distribution(x, {}), g1.data(), 1.0, 3);
  // (x + g1 and g1 + g2 are rounded to float: compare with the direct form on those same floats)
  const double b = log_prob_increase(make_distribution(x1, {}), g2.data(), 1.0, 3);
  const double both = log_prob_increase(make_distribution(x, {}), g12.data(), 1.0, 3);
  EXPECT_NEAR(a + b, both, 1e-5);
  EXPECT_TRUE(matches_direct(x1, g2, 1.0, 3));
  EXPECT_TRUE(matches_direct(x, g12, 1.0, 3));
}

}  // namespace
}  // namespace reslens::analysis

// Gemma 2's final-logit softcap: a state's logits are c tanh(x / c), so the increase is
// log softmax(cap(x + s g))_w - log softmax(cap(x))_w (not the factored form with delta = s g), and
// the contrast moves the capped logit difference. Compared with that direct form in long double, on
// logits far past the cap (saturated) and near it.
namespace reslens::analysis {
namespace {

LD cap(LD z, LD c) { return c * std::tanh(z / c); }

double direct_capped(const std::vector<float>& x, const std::vector<float>& g, double s, int32_t w, double c) {
  std::vector<LD> before, after;
  for (size_t j = 0; j < x.size(); ++j) {
    before.push_back(cap(static_cast<LD>(x[j]), static_cast<LD>(c)));
    after.push_back(cap(static_cast<LD>(x[j]) + static_cast<LD>(s) * static_cast<LD>(g[j]), static_cast<LD>(c)));
  }
  const auto ws = static_cast<size_t>(w);
  return static_cast<double>((after[ws] - log_sum_exp(after)) - (before[ws] - log_sum_exp(before)));
}

TEST(LogProbIncrease, FinalSoftcapMatchesTheCappedDirectForm) {
  std::mt19937 rng(14);
  std::normal_distribution<float> n(0.0f, 1.0f);
  for (const double c : {3.0, 30.0}) {
    for (const float spread : {1.0f, 10.0f, 200.0f}) {
      std::vector<float> x(300), g(300);
      for (auto& v : x) v = spread * n(rng);
      for (auto& v : g) v = n(rng);
      const Distribution d = make_distribution(x, {}, c);
      ASSERT_EQ(d.softcap, c);
      for (const double s : {-4.0, -0.5, 0.0, 0.7, 25.0}) {
        for (const int32_t w : {0, 17, 299}) {
          const double got = log_prob_increase(d, g.data(), s, w);
          EXPECT_NEAR(got, direct_capped(x, g, s, w, c), 1e-12) << "c " << c << " spread " << spread << " s " << s;
          // Not the uncapped answer (the test can fail): the cap bites on these logits.
          if (s == 25.0 && spread >= 10.0f) {
            EXPECT_GT(std::abs(got - direct_increase(x, g, s, w)), 1e-3);
          }
        }
        // The log-probability of the state itself is of the capped logits.
        const std::vector<LD> capped = [&] {
          std::vector<LD> z;
          for (float v : x) z.push_back(cap(static_cast<LD>(v), static_cast<LD>(c)));
          return z;
        }();
        EXPECT_NEAR(d.log_prob(5), static_cast<double>(capped[5] - log_sum_exp(capped)), 1e-12);
      }
    }
  }
}

}  // namespace
}  // namespace reslens::analysis
