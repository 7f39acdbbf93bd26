// analysis/bounds.h: the certified value of f = log sum_j q_j exp(s g_j) behind the bounded method.
// Whatever bounded_log_expectation, bounded_from_head and cached_log_expectation accept must lie
// within tol of the exact f (here in long double), and the interval they certify must contain it;
// head_part's error bound must hold. Checked on adversarial random inputs: sharp and flat
// distributions, heavy-tailed directions with outliers in the tail, tails that carry almost all
// the mass, large and negative coefficients, and the weakest arguments a caller may pass.
#include "analysis/bounds.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "common/test_paths.h"
#include "model/weight_rows.h"
#include "reslens/model.h"

namespace reslens::analysis {
namespace {

using LD = long double;

// One state and one direction: q over V tokens, g the direction's projection, a head set.
struct Case {
  std::vector<double> q, g;
  TailSplit t;
};

// Variations on make_case's state and direction.
struct Shape {
  bool normal_logits = false;  ///< x normal (q log-normal, as on random weights), not heavy-tailed
  bool aligned = false;        ///< g_j^2 growing with q_j (the centred bound's worst case)
};

// q = softmax(x) for x of the given spread (heavy-tailed: a Student-t-like mix, or normal), g normal
// with a few large outliers (or, aligned, with g_j^2 growing with q_j, so that the tail's deviation
// from its mean weight lines up with g^2); the head is the k tokens q ranks highest (as split_tails
// picks them), plus `extra` (a target outside them).
Case make_case(std::mt19937& rng, size_t V, double spread, double outlier, size_t k, int32_t extra, Shape shape = {}) {
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  Case c;
  std::vector<double> x(V);
  for (double& v : x) v = spread * normal(rng) / (shape.normal_logits ? 1.0 : std::sqrt(0.05 + unit(rng)));
  const double mx = *std::max_element(x.begin(), x.end());
  double z = 0;
  for (double v : x) z += std::exp(v - mx);
  for (double v : x) c.q.push_back(std::exp(v - mx) / z);
  for (size_t j = 0; j < V; ++j) c.g.push_back(normal(rng) + (unit(rng) < 0.01 ? outlier * normal(rng) : 0.0));
  if (shape.aligned) {
    const double mean = 1.0 / static_cast<double>(V);
    for (size_t j = 0; j < V; ++j) c.g[j] = std::copysign(std::sqrt(std::max(0.0, 1 + 4 * (c.q[j] - mean) / mean)), c.g[j]);
  }
  std::vector<int32_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return c.q[static_cast<size_t>(a)] > c.q[static_cast<size_t>(b)]; });
  c.t.ids.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(std::min(k, V)));
  if (extra >= 0 && c.t.index_of(extra) < 0) c.t.ids.push_back(extra);
  std::vector<char> in_head(V, 0);
  for (int32_t id : c.t.ids) {
    in_head[static_cast<size_t>(id)] = 1;
    c.t.q.push_back(c.q[static_cast<size_t>(id)]);
  }
  double q2 = 0;
  for (size_t j = 0; j < V; ++j) {
    if (in_head[j]) continue;
    c.t.mass += c.q[j];
    c.t.q_max = std::max(c.t.q_max, c.q[j]);
    q2 += c.q[j] * c.q[j];
  }
  c.t.q_l2 = std::sqrt(q2) * (1 + 1e-9);  // as split_tails rounds it
  // The centred bound's mean weight and spread, as split_tails computes them.
  if (V > c.t.ids.size()) {
    c.t.q_mean = c.t.mass / static_cast<double>(V - c.t.ids.size());
    double dev2 = 0;
    for (size_t j = 0; j < V; ++j) {
      if (!in_head[j]) dev2 += (c.q[j] - c.t.q_mean) * (c.q[j] - c.t.q_mean);
    }
    c.t.q_dev = std::sqrt(dev2) * (1 + 1e-9);
  }
  return c;
}

LD exact_f(const Case& c, double s) {
  LD mx = -std::numeric_limits<LD>::infinity();
  for (size_t j = 0; j < c.q.size(); ++j) {
    if (c.q[j] > 0) mx = std::max(mx, static_cast<LD>(s) * static_cast<LD>(c.g[j]));
  }
  LD sum = 0;
  for (size_t j = 0; j < c.q.size(); ++j) sum += static_cast<LD>(c.q[j]) * std::exp(static_cast<LD>(s) * static_cast<LD>(c.g[j]) - mx);
  return mx + std::log(sum);
}

// The arguments a caller passes for coefficient s: the head's deltas and the tail terms, with the
// whole vocabulary's sum of g^2 known exactly (both sides) and the tail's own |g|_4 and max |g|.
// `weakest` gives the loosest ones a caller may pass: no lower side of the sum of g^2 and the
// whole-vocabulary |g|_4 and max |g| (as the quartic and Cauchy-Schwarz bounds give).
struct Args {
  std::vector<double> head_delta;
  TailTerms tt;
};
Args caller_args(const Case& c, double s, bool weakest) {
  Args a;
  for (int32_t id : c.t.ids) a.head_delta.push_back(s * c.g[static_cast<size_t>(id)]);
  LD lin = 0, sq = 0, q4 = 0;
  double gmax = 0;
  for (size_t j = 0; j < c.q.size(); ++j) {
    const bool tail = c.t.index_of(static_cast<int32_t>(j)) < 0;
    const LD g2 = static_cast<LD>(c.g[j]) * static_cast<LD>(c.g[j]);
    sq += g2;
    if (tail) lin += static_cast<LD>(c.q[j]) * static_cast<LD>(c.g[j]);
    if (tail || weakest) {
      q4 += g2 * g2;
      gmax = std::max(gmax, std::abs(c.g[j]));
    }
  }
  a.tt.linear = s * static_cast<double>(lin);
  a.tt.quadratic = s * s * static_cast<double>(sq);
  a.tt.quadratic_lo = weakest ? 0.0 : a.tt.quadratic;
  a.tt.quartic = s * s * static_cast<double>(std::sqrt(q4));
  a.tt.range = std::abs(s) * gmax;
  return a;
}

// The half-width of the interval a bounded evaluation certifies: the smallest tol it accepts
// (bisection on the NaN threshold), given `eval(tol)`.
template <class Eval>
double certified_half_width(const Eval& eval) {
  double lo = 0, hi = 1e3;
  if (std::isnan(eval(hi))) return std::numeric_limits<double>::quiet_NaN();
  for (int i = 0; i < 200 && hi - lo > 1e-15 * hi; ++i) {
    const double mid = 0.5 * (lo + hi);
    (std::isnan(eval(mid)) ? lo : hi) = mid;
  }
  return hi;
}

// The value and the interval [value - h, value + h] it certifies must contain the exact f, up to
// double rounding of the quantities involved.
::testing::AssertionResult certifies(double value, double half_width, LD exact, double tol) {
  const double slack = 1e-13 * (1 + std::abs(static_cast<double>(exact)));
  const double err = std::abs(static_cast<double>(static_cast<LD>(value) - exact));
  if (!(half_width <= tol * (1 + 1e-12))) {
    return ::testing::AssertionFailure() << "accepted a half-width " << half_width << " above tol " << tol;
  }
  if (err <= half_width + slack) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "value " << value << " is " << err << " from the exact "
                                       << static_cast<double>(exact) << ", outside its certified +-" << half_width;
}

TEST(Bounds, BoundedLogExpectationContainsTheExactValue) {
  std::mt19937 rng(1);
  int accepted = 0, tried = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const size_t V = trial % 3 == 0 ? 50 : 2000;
    const double spread = trial % 4 == 0 ? 0.05 : trial % 4 == 1 ? 1.0 : trial % 4 == 2 ? 4.0 : 12.0;
    const double outlier = trial % 5 == 0 ? 0.0 : 30.0;
    const size_t k = static_cast<size_t>(trial % 6) * 8;  // 0 (no head) .. 40
    Case c = make_case(rng, V, spread, outlier, k, static_cast<int32_t>(V - 1), Shape{trial % 7 == 5, trial % 7 == 3});
    for (double s : {-3.0, -0.5, -0.01, 0.0, 1e-6, 0.02, 0.3, 1.0, 4.0}) {
      for (const int form : {0, 1, 2, 3}) {  // weakest or not, x with or without the quartic
        const bool weakest = form % 2 == 1;
        Args a = caller_args(c, s, weakest);
        if (form < 2) a.tt.quartic = std::numeric_limits<double>::infinity();
        auto eval = [&](double tol) { return bounded_log_expectation(c.t, a.head_delta.data(), a.tt, tol); };
        ++tried;
        const double h = certified_half_width(eval);
        if (std::isnan(h)) continue;
        ++accepted;
        const LD exact = exact_f(c, s);
        ASSERT_TRUE(certifies(eval(1e3), h, exact, 1e3)) << "trial " << trial << " s " << s << " weakest " << weakest;
        // The tolerance explain() uses: accepted values are within it.
        const double v = eval(8e-6);
        if (!std::isnan(v)) {
          ASSERT_TRUE(certifies(v, h, exact, 8e-6)) << "trial " << trial << " s " << s;
        }
      }
    }
  }
  // The check means something only if the bound accepts a good share of the cases.
  EXPECT_GT(accepted, tried / 4) << accepted << " of " << tried;
}

TEST(Bounds, AWrongTailBoundIsCaught) {
  // The same check on a deliberately broken caller must fail for some input, otherwise the
  // containment test above could not fail either: the quadratic term 100x too small (the other
  // bounds unknown), the quartic 100x too small, the lower side of the quadratic term 3x too large,
  // or the tail's spread about its mean weight 100x too small (the centred bound).
  enum Broken { kQuadratic, kQuartic, kQuadraticLo, kSpread };
  for (const Broken broken : {kQuadratic, kQuartic, kQuadraticLo, kSpread}) {
    std::mt19937 rng(2);
    bool caught = false;
    for (int trial = 0; trial < 200 && !caught; ++trial) {
      Case c = make_case(rng, 500, broken == kQuadratic || broken == kQuartic ? 1.0 : 0.3, 30.0, 4, -1,
                         Shape{broken == kQuadraticLo, broken == kSpread});
      for (double s : {0.5, 1.0, 2.0}) {
        Args a = caller_args(c, s, false);
        if (broken == kQuadratic) {
          a.tt.quadratic *= 0.01;
          a.tt.quadratic_lo = 0;
          a.tt.quartic = std::numeric_limits<double>::infinity();
        } else if (broken == kQuartic) {
          a.tt.quartic *= 0.01;
        } else if (broken == kQuadraticLo) {
          a.tt.quadratic_lo *= 3;
        } else {
          c.t.q_dev *= 0.01;
        }
        auto eval = [&](double tol) { return bounded_log_expectation(c.t, a.head_delta.data(), a.tt, tol); };
        const double h = certified_half_width(eval);
        if (!std::isnan(h) && !certifies(eval(1e3), h, exact_f(c, s), 1e3)) caught = true;
      }
    }
    EXPECT_TRUE(caught) << "broken " << broken;
  }
}

TEST(Bounds, TheTwoNormAndCentredBoundsNarrowFlatTails) {
  // A tail whose weights are near uniform (as on random weights) but whose largest weight is a few
  // times the mean: |q_T|_2 |g|_4^2 is well below q_max sum g^2, so the interval narrows (heavy-tailed
  // logits). Where the tail is log-normal (random weights' logits are normal), the centred bound
  // narrows it again by giving the tail sum a lower side.
  std::mt19937 rng(6);
  double holder_ratio = 0, centred_ratio = 0;
  int n = 0;
  for (int trial = 0; trial < 80; ++trial) {
    const bool normal_logits = trial % 2 == 1;
    Case c = make_case(rng, 4000, 0.3, 0.0, 16, -1, Shape{normal_logits, false});
    const Args with = caller_args(c, 0.05, true);
    Args without = with;
    without.tt.quartic = std::numeric_limits<double>::infinity();
    Args centred = caller_args(c, 0.05, false);
    centred.tt.quadratic_lo = centred.tt.quadratic / (kBoundSlack * kBoundSlack);  // as explain passes it
    const double h_with = certified_half_width([&](double tol) { return bounded_log_expectation(c.t, with.head_delta.data(), with.tt, tol); });
    const double h_without = certified_half_width(
        [&](double tol) { return bounded_log_expectation(c.t, without.head_delta.data(), without.tt, tol); });
    const double h_centred = certified_half_width(
        [&](double tol) { return bounded_log_expectation(c.t, centred.head_delta.data(), centred.tt, tol); });
    ASSERT_FALSE(std::isnan(h_with) || std::isnan(h_without) || std::isnan(h_centred));
    ASSERT_LE(h_with, h_without * (1 + 1e-12));
    ASSERT_TRUE(certifies(bounded_log_expectation(c.t, centred.head_delta.data(), centred.tt, 1e3), h_centred,
                          exact_f(c, 0.05), 1e3));
    if (normal_logits) {
      centred_ratio += h_with / h_centred;
    } else {
      holder_ratio += h_without / h_with;
      ++n;
    }
  }
  EXPECT_GT(holder_ratio / n, 1.5);
  EXPECT_GT(centred_ratio / n, 1.25);  // 1.37 here; 1.0 without the centred bound
}

TEST(Bounds, HeadPartErrorBoundHolds) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 200; ++trial) {
    Case c = make_case(rng, 300, trial % 2 ? 0.5 : 6.0, 20.0, 1 + static_cast<size_t>(trial % 40), -1);
    std::vector<double> gh;
    for (int32_t id : c.t.ids) gh.push_back(c.g[static_cast<size_t>(id)]);
    const HeadPowerSums m = head_power_sums(c.t, gh.data());
    const double gabs = std::abs(*std::max_element(gh.begin(), gh.end(), [](double a, double b) { return std::abs(a) < std::abs(b); }));
    // Coefficients up to the series' limit |s| max|g| = 1 (the worst remainder), and just past it.
    for (double x : {0.0, 1e-9, 0.1, 0.5, 0.9, 0.999, 1.0, 1.001, 2.0}) {
      for (double sign : {-1.0, 1.0}) {
        const double s = gabs > 0 ? sign * x / gabs : sign * x;
        double err = -1;
        const double v = head_part(m, s, err);
        if (x > 1.0 && gabs > 0) {
          EXPECT_TRUE(std::isnan(v)) << "x " << x;
          continue;
        }
        ASSERT_FALSE(std::isnan(v)) << "x " << x;
        LD want = 0;
        for (size_t h = 0; h < gh.size(); ++h) want += static_cast<LD>(c.t.q[h]) * std::exp(static_cast<LD>(s) * static_cast<LD>(gh[h]));
        ASSERT_GE(err, 0.0);
        ASSERT_LE(std::abs(static_cast<double>(static_cast<LD>(v) - want)), err) << "trial " << trial << " x " << x;
        // With the head part's own error, the certified value still contains f.
        const Args a = caller_args(c, s, false);
        double head_square = 0;
        for (double x2 : a.head_delta) head_square += x2 * x2;
        auto eval = [&](double tol) { return bounded_from_head(c.t, v, err, head_square, a.tt, tol); };
        const double hw = certified_half_width(eval);
        if (!std::isnan(hw)) {
          ASSERT_TRUE(certifies(eval(1e3), hw, exact_f(c, s), 1e3)) << "trial " << trial << " x " << x;
        }
      }
    }
  }
}

TEST(Bounds, CachedLogExpectationContainsTheExactValue) {
  // The tail's second moment known only from an approximate projection g~ with |g - g~| <= eps
  // (a quantized cache row): adversarially, every g~_j is off by exactly eps, in the direction that
  // shrinks or grows the moment.
  std::mt19937 rng(4);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  int accepted = 0, tried = 0;
  for (int trial = 0; trial < 300; ++trial) {
    Case c = make_case(rng, trial % 2 ? 64 : 1500, trial % 3 == 0 ? 0.1 : 3.0, trial % 4 ? 25.0 : 0.0,
                       static_cast<size_t>(trial % 5) * 4, -1);
    const double eps = trial % 3 == 0 ? 1e-4 : trial % 3 == 1 ? 1e-2 : 0.3;
    const int mode = trial % 3;  // 0: shrink |g~|, 1: grow it, 2: random signs
    LD a1 = 0, a2 = 0;
    double gmax = 0;
    for (size_t j = 0; j < c.q.size(); ++j) {
      if (c.t.index_of(static_cast<int32_t>(j)) >= 0) continue;
      const double g = c.g[j];
      const double dir = mode == 0 ? -std::copysign(1.0, g) : mode == 1 ? std::copysign(1.0, g) : (unit(rng) < 0.5 ? -1.0 : 1.0);
      const double approx = g + dir * eps;
      a1 += static_cast<LD>(c.q[j]) * std::abs(static_cast<LD>(approx));
      a2 += static_cast<LD>(c.q[j]) * static_cast<LD>(approx) * static_cast<LD>(approx);
      gmax = std::max(gmax, std::abs(g));
    }
    for (double s : {-2.0, -0.2, 0.0, 0.05, 0.5, 3.0}) {
      const Args a = caller_args(c, s, false);
      auto eval = [&](double tol) {
        return cached_log_expectation(c.t, a.head_delta.data(), a.tt.linear, s, static_cast<double>(a1), static_cast<double>(a2),
                                      eps, gmax, tol);
      };
      ++tried;
      const double h = certified_half_width(eval);
      if (std::isnan(h)) continue;
      ++accepted;
      ASSERT_TRUE(certifies(eval(1e3), h, exact_f(c, s), 1e3)) << "trial " << trial << " s " << s << " eps " << eps;
    }
  }
  EXPECT_GT(accepted, tried / 4) << accepted << " of " << tried;
}

TEST(Bounds, RefusesWhatItCannotCertify) {
  std::mt19937 rng(5);
  Case c = make_case(rng, 1000, 1.0, 0.0, 8, -1);
  // An exponent that would overflow in the head: refused, not inf.
  Args a = caller_args(c, 1.0, false);
  a.head_delta[0] = 1000.0;
  EXPECT_TRUE(std::isnan(bounded_log_expectation(c.t, a.head_delta.data(), a.tt, 1e3)));
  // A lower bound that is not positive (a tail mean pulling the sum below 0): refused.
  a = caller_args(c, 1.0, false);
  a.tt.linear = -10.0;
  EXPECT_TRUE(std::isnan(bounded_log_expectation(c.t, a.head_delta.data(), a.tt, 1e3)));
  // An interval wider than 2 tol: refused.
  a = caller_args(c, 3.0, true);
  EXPECT_TRUE(std::isnan(bounded_log_expectation(c.t, a.head_delta.data(), a.tt, 1e-12)));
  // Nothing known of the tail but its mean (every bound infinite): refused, not a value.
  a = caller_args(c, 0.01, false);
  a.tt = TailTerms{a.tt.linear};
  EXPECT_TRUE(std::isnan(bounded_log_expectation(c.t, a.head_delta.data(), a.tt, 1e3)));
}

// The random GPT-2 and the sizes split_tails reads of its bounds (the rest of them unused there).
struct SplitFixture {
  std::shared_ptr<const Model> model = Model::load(test::shared_path("models/random-gpt2/random-gpt2-test.gguf"));
  ModelBounds mb;
  SplitFixture() { mb.V = model->config().d_vocab, mb.d = model->config().d_model; }
};

// A distribution over V tokens: the softmax of logits drawn from normal(0, spread).
Distribution softmax_of_normal(int64_t V, double spread, std::mt19937& rng) {
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> x(static_cast<size_t>(V));
  for (double& v : x) v = spread * normal(rng);
  const double mx = *std::max_element(x.begin(), x.end());
  double z = 0;
  for (double v : x) z += std::exp(v - mx);
  Distribution dist;
  for (double v : x) dist.q.push_back(std::exp(v - mx) / z);
  return dist;
}

TEST(Bounds, ExtendTailIsTheSplitWithTheLargerHead) {
  // extend_tail(t, K) holds the split split_tails makes with head size K: the same tokens in the same
  // order, the same tail numbers to the bit, the same head rows; its tail mean (t's minus the added
  // rows) within rounding of the one summed over the smaller tail. With a target outside t's head
  // (kept where t has it), and a foil among the added tokens.
  const SplitFixture f;
  const Model& model = *f.model;
  const ModelBounds& mb = f.mb;
  const int64_t V = mb.V, d = mb.d;
  std::mt19937 rng(7);
  for (const double spread : {0.3, 3.0}) {
    const Distribution dist = softmax_of_normal(V, spread, rng);
    const int32_t target = static_cast<int32_t>(std::min_element(dist.q.begin(), dist.q.end()) - dist.q.begin());
    const std::vector<TailSplit> small = split_tails(model, mb, {&dist}, 64, {target}, 2);
    const int64_t K = 1024;
    const TailSplit e = extend_tail(model, small[0], dist, K, 2);
    // The reference: split_tails with K - 1 top tokens plus the target (t's head holds 65 ids).
    const std::vector<TailSplit> big = split_tails(model, mb, {&dist}, static_cast<int>(K - 1), {target}, 2);
    const TailSplit& r = big[0];
    ASSERT_EQ(e.ids.size(), static_cast<size_t>(K));
    ASSERT_TRUE(std::equal(small[0].ids.begin(), small[0].ids.end(), e.ids.begin())) << "t's head comes first";
    std::vector<int32_t> a = e.ids, b = r.ids;
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    ASSERT_EQ(a, b) << "the same head tokens";
    EXPECT_EQ(e.mass, r.mass);
    EXPECT_EQ(e.q_max, r.q_max);
    EXPECT_EQ(e.q_l2, r.q_l2);
    EXPECT_EQ(e.q_mean, r.q_mean);
    EXPECT_EQ(e.q_dev, r.q_dev);
    EXPECT_EQ(e.tail_q, r.tail_q);
    EXPECT_LT(e.q_max, small[0].q_max);
    EXPECT_LT(e.q_dev, small[0].q_dev);
    for (size_t h = 0; h < e.ids.size(); ++h) {
      EXPECT_EQ(e.q[h], dist.q[static_cast<size_t>(e.ids[h])]);
      std::vector<float> row(static_cast<size_t>(d));
      read_rows(model.weights().W_U, e.ids[h], 1, row.data());
      ASSERT_TRUE(std::equal(row.begin(), row.end(), e.head_rows.begin() + static_cast<std::ptrdiff_t>(h) * d)) << "row " << h;
    }
    // The tail means against long double sums of the float weights: e's error is t's (split_tails
    // sums in float chunks) and the subtraction's rounding, nothing more.
    std::vector<LD> ref_t(static_cast<size_t>(d), 0), ref_e(static_cast<size_t>(d), 0), size(static_cast<size_t>(d), 0);
    std::vector<float> row(static_cast<size_t>(d));
    for (int64_t j = 0; j < V; ++j) {
      read_rows(model.weights().W_U, j, 1, row.data());
      for (int64_t i = 0; i < d; ++i) {
        const auto u = static_cast<LD>(row[static_cast<size_t>(i)]);
        ref_t[static_cast<size_t>(i)] += static_cast<LD>(small[0].tail_q[static_cast<size_t>(j)]) * u;
        ref_e[static_cast<size_t>(i)] += static_cast<LD>(e.tail_q[static_cast<size_t>(j)]) * u;
        size[static_cast<size_t>(i)] += static_cast<LD>(small[0].tail_q[static_cast<size_t>(j)]) * std::abs(u);
      }
    }
    for (int64_t i = 0; i < d; ++i) {
      const auto ii = static_cast<size_t>(i);
      const double inherited = std::abs(static_cast<double>(static_cast<LD>(small[0].mu[ii]) - ref_t[ii]));
      ASSERT_LE(std::abs(static_cast<double>(static_cast<LD>(e.mu[ii]) - ref_e[ii])), inherited + 1e-14 * static_cast<double>(size[ii]))
          << "mu " << i;
    }
  }
}

TEST(Bounds, AKeptSplitIsRebuiltOnlyForItsOwnDistribution) {
  // What a step keeps of a split (its head and tail mean, KeptSplit) rebuilds the split split_tails
  // made, bit for bit, from the same distribution; from a distribution one ulp away it is refused.
  const SplitFixture f;
  const Model& model = *f.model;
  const int64_t V = f.mb.V;
  std::mt19937 rng(11);
  const Distribution dist = softmax_of_normal(V, 2.0, rng);
  // The head: the 64 most likely tokens, the least likely one and token 3 (as a step's target and foil).
  const auto least = static_cast<int32_t>(std::min_element(dist.q.begin(), dist.q.end()) - dist.q.begin());
  const TailSplit t = split_tails(model, f.mb, {&dist}, 64, {least, 3}, 2)[0];
  const KeptSplit kept = keep_split(t, dist);
  TailSplit r;
  ASSERT_TRUE(split_from_kept(model, kept, dist, r));
  EXPECT_EQ(r.ids, t.ids);
  EXPECT_EQ(r.q, t.q);
  EXPECT_EQ(r.head_rows, t.head_rows);
  EXPECT_EQ(r.mass, t.mass);
  EXPECT_EQ(r.q_max, t.q_max);
  EXPECT_EQ(r.q_l2, t.q_l2);
  EXPECT_EQ(r.q_mean, t.q_mean);
  EXPECT_EQ(r.q_dev, t.q_dev);
  EXPECT_EQ(r.mu, t.mu);
  EXPECT_EQ(r.tail_q, t.tail_q);
  // Any other distribution: refused, and `out` untouched.
  for (const size_t j : {size_t{0}, static_cast<size_t>(V / 2), static_cast<size_t>(V - 1)}) {
    Distribution other = dist;
    other.q[j] = std::nextafter(other.q[j], 1.0);
    TailSplit untouched;
    EXPECT_FALSE(split_from_kept(model, kept, other, untouched)) << "token " << j;
    EXPECT_TRUE(untouched.ids.empty());
  }
  Distribution shorter = dist;
  shorter.q.pop_back();
  EXPECT_FALSE(split_from_kept(model, kept, shorter, r));
  KeptSplit wrong = kept;
  wrong.mu.pop_back();
  EXPECT_FALSE(split_from_kept(model, wrong, dist, r));
  wrong = kept;
  wrong.ids.push_back(static_cast<int32_t>(V));
  EXPECT_FALSE(split_from_kept(model, wrong, dist, r));
}

}  // namespace
}  // namespace reslens::analysis
