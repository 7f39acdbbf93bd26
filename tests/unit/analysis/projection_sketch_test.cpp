// analysis/projection_sketch.h: whatever sketched_log_expectations certifies lies within tol of the
// exact f = log sum_j q_j exp(s g_j) (g_j = u_j . y0 summed in long double over the real W_U), for
// flat and peaked states, vectors from tiny to large, and tolerances down to where the sketch's own
// error terms decide, including vectors whose int8 rounding loses most of them; and the same bits
// whichever int8 kernel runs (AVX-512 VNNI, AVX-VNNI, AVX2, the portable loops).
#include "analysis/projection_sketch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/test_paths.h"
#include "model/weight_rows.h"
#include "ops/gemm.h"
#include "ops/int8_dot.h"
#include "reslens/model.h"

namespace reslens::analysis {
namespace {

// A state's head/tail split by hand: its `head` likeliest tokens in the head, the rest the tail.
TailSplit head_and_tail(const std::vector<double>& q, int64_t head) {
  const auto V = static_cast<int64_t>(q.size());
  TailSplit t;
  std::vector<int32_t> order(static_cast<size_t>(V));
  for (int32_t j = 0; j < static_cast<int32_t>(V); ++j) order[static_cast<size_t>(j)] = j;
  std::partial_sort(order.begin(), order.begin() + head, order.end(),
                    [&](int32_t a, int32_t b) { return q[static_cast<size_t>(a)] > q[static_cast<size_t>(b)]; });
  t.ids.assign(order.begin(), order.begin() + head);
  t.tail_q.assign(static_cast<size_t>(V), 0.0f);
  for (int64_t j = 0; j < V; ++j) {
    if (std::find(t.ids.begin(), t.ids.end(), static_cast<int32_t>(j)) != t.ids.end()) continue;
    t.mass += q[static_cast<size_t>(j)];
    t.q_max = std::max(t.q_max, q[static_cast<size_t>(j)]);
    t.tail_q[static_cast<size_t>(j)] = static_cast<float>(q[static_cast<size_t>(j)]);
  }
  for (int32_t id : t.ids) t.q.push_back(q[static_cast<size_t>(id)]);
  return t;
}

// The sketch of a random [V, d] unembedding U (entries 0.05 N(0, 1)), kept in `U`.
std::shared_ptr<ProjectionSketch> random_sketch(int64_t V, int64_t d, std::mt19937& rng,
                                                std::normal_distribution<double>& normal, std::vector<float>& U) {
  U.resize(static_cast<size_t>(V * d));
  for (float& x : U) x = static_cast<float>(0.05 * normal(rng));
  MatrixView W;
  W.data = U.data(), W.rows = V, W.cols = d, W.ld = d;
  return build_projection_sketch(W, 2);
}

// A random sketch (random_sketch) with the generator that made it, for tests that draw more.
struct RandomSketch {
  std::mt19937 rng;
  std::normal_distribution<double> normal{0.0, 1.0};
  std::vector<float> U;  // [V, d]
  std::shared_ptr<ProjectionSketch> sketch;
  RandomSketch(int64_t V, int64_t d, unsigned seed) : rng(seed) { sketch = random_sketch(V, d, rng, normal, U); }
};

// `count` states (steps' distributions) over V tokens, state st's logits (st + 1) * spread * N(0, 1),
// each with its 8 likeliest tokens in the head.
std::vector<TailSplit> random_states(int64_t V, int count, double spread, std::mt19937& rng,
                                     std::normal_distribution<double>& normal) {
  std::vector<TailSplit> states;
  for (int st = 0; st < count; ++st) {
    std::vector<double> q(static_cast<size_t>(V));
    double z = 0;
    for (double& x : q) z += (x = std::exp((st + 1) * spread * normal(rng)));
    for (double& x : q) x /= z;
    states.push_back(head_and_tail(q, 8));
  }
  return states;
}

// n directions of d entries, N(0, 1) (every third 5x larger).
std::vector<std::vector<float>> random_directions(int n, int64_t d, std::mt19937& rng, std::normal_distribution<double>& normal) {
  std::vector<std::vector<float>> ys;
  for (int v = 0; v < n; ++v) {
    std::vector<float> y(static_cast<size_t>(d));  // [d]
    for (float& x : y) x = static_cast<float>(normal(rng) * (v % 3 == 0 ? 5.0 : 1.0));
    ys.push_back(std::move(y));
  }
  return ys;
}

TEST(ProjectionSketch, CertifiedValuesContainTheExactOne) {
  const auto model = Model::load(test::shared_path("models/random-gpt2-hf"));
  const int64_t d = model->config().d_model, V = model->config().d_vocab;
  const auto sketch = projection_sketch(*model, 2);
  const auto bounds = model_bounds(*model, 2);
  ASSERT_EQ(sketch->V, V);
  ASSERT_TRUE(std::isfinite(sketch->gram_lambda) && std::isfinite(sketch->gram_err_lambda));
  std::mt19937 rng(5);
  std::normal_distribution<double> normal(0.0, 1.0);
  // Flat (random-weight-like) and peaked states.
  std::vector<Distribution> dists;
  for (double spread : {0.3, 1.0, 3.0}) {
    std::vector<float> logits(static_cast<size_t>(V));
    for (float& x : logits) x = static_cast<float>(spread * normal(rng));
    dists.push_back(make_distribution(logits, {}));
  }
  std::vector<const Distribution*> ptrs;
  for (const Distribution& dist : dists) ptrs.push_back(&dist);
  const std::vector<TailSplit> tails = split_tails(*model, *bounds, ptrs, 64, {}, 2);
  std::vector<float> urow;
  int certified = 0, total = 0;
  for (double tol : {8e-6, 1e-7, 1e-9}) {
    std::vector<std::vector<float>> y0s;
    std::vector<std::vector<double>> heads;
    std::vector<SketchJob> jobs;
    std::vector<long double> exact;
    for (size_t st = 0; st < tails.size(); ++st) {
      const TailSplit& t = tails[st];
      for (int v = 0; v < 12; ++v) {
        std::vector<float> y(static_cast<size_t>(d));
        for (float& x : y) x = static_cast<float>(normal(rng) * (v % 3 == 0 ? 5.0 : 1.0));
        // Adversarial: one entry so large that the others round to 0 or +-1, so the int8 vector
        // misses most of the projection and only the error terms keep the interval honest.
        if (v % 4 == 1) y[static_cast<size_t>(v % d)] = 300.0f;
        // g_j = u_j . y exactly enough (long double), its size, and the state's exact f.
        std::vector<long double> g(static_cast<size_t>(V));
        long double g2 = 0;
        for (int64_t j = 0; j < V; ++j) {
          const float* u = row_floats(model->weights().W_U, j, urow);
          long double s = 0;
          for (int64_t i = 0; i < d; ++i) s += static_cast<long double>(u[i]) * static_cast<long double>(y[static_cast<size_t>(i)]);
          g[static_cast<size_t>(j)] = s;
          g2 += s * s;
        }
        const double scale = 1.0 / std::sqrt(static_cast<double>(g2 / static_cast<long double>(V)));  // s * rms(g) = 1
        const double s = scale * 1e-4 * std::pow(10.0, 2.5 * v / 11.0) * (v % 2 ? -1.0 : 1.0);  // 1e-4 .. 3e-2
        long double sum = 0, lin = 0;
        const Distribution& dist = dists[st];
        for (int64_t j = 0; j < V; ++j) {
          sum += static_cast<long double>(dist.q[static_cast<size_t>(j)]) * std::exp(static_cast<long double>(s) * g[static_cast<size_t>(j)]);
        }
        std::vector<char> head(static_cast<size_t>(V), 0);
        std::vector<double> hd;
        for (int32_t id : t.ids) {
          head[static_cast<size_t>(id)] = 1;
          hd.push_back(static_cast<double>(static_cast<long double>(s) * g[static_cast<size_t>(id)]));
        }
        for (int64_t j = 0; j < V; ++j) {
          if (!head[static_cast<size_t>(j)]) lin += static_cast<long double>(dist.q[static_cast<size_t>(j)]) * g[static_cast<size_t>(j)];
        }
        y0s.push_back(std::move(y));
        heads.push_back(std::move(hd));
        exact.push_back(std::log(sum));
        jobs.push_back(SketchJob{&t, nullptr, s, nullptr, static_cast<double>(static_cast<long double>(s) * lin)});
      }
    }
    for (size_t i = 0; i < jobs.size(); ++i) jobs[i].y0 = y0s[i].data(), jobs[i].head_delta = heads[i].data();
    const std::vector<double> f = sketched_log_expectations(*sketch, jobs, tol, 2);
    ASSERT_EQ(f.size(), jobs.size());
    // The same with the forms screened by lambda_max |x|^2 (as on a 7B model's shapes): the same
    // vectors certified, each value within tol of the exact one.
    auto screened = std::make_shared<ProjectionSketch>(*sketch);
    screened->screen_forms = !sketch->screen_forms;
    const std::vector<double> fs = sketched_log_expectations(*screened, jobs, tol, 2);
    for (size_t i = 0; i < f.size(); ++i) {
      EXPECT_EQ(std::isnan(f[i]), std::isnan(fs[i])) << "tol " << tol << " job " << i;
      if (!std::isnan(fs[i])) {
        EXPECT_LE(std::abs(static_cast<long double>(fs[i]) - exact[i]), static_cast<long double>(tol) * (1 + 1e-6L) + 1e-15L)
            << "screened: tol " << tol << " job " << i << " s " << jobs[i].s;
      }
    }
    for (size_t i = 0; i < f.size(); ++i) {
      ++total;
      if (std::isnan(f[i])) continue;
      ++certified;
      EXPECT_LE(std::abs(static_cast<long double>(f[i]) - exact[i]), static_cast<long double>(tol) * (1 + 1e-6L) + 1e-15L)
          << "tol " << tol << " job " << i << " s " << jobs[i].s;
    }
    // The same jobs one at a time give the same bits (no job depends on another).
    const std::vector<double> one = sketched_log_expectations(*sketch, {jobs[5]}, tol, 1);
    EXPECT_TRUE((std::isnan(one[0]) && std::isnan(f[5])) || one[0] == f[5]);
  }
  EXPECT_GT(certified, total / 3);
  EXPECT_LT(certified, total);  // the largest vectors at the smallest tolerance are refused
}

// An unembedding whose int8 rounding errors all point the same way (u_j = c_j + 0.45 r, one entry
// of 127 fixing the scale at 1, so E_j = 0.45 r for every row) and vectors along r: the sketch then
// misses a shift of every g_j by 0.45 r . y, several times its spread. Only the error terms keep the
// certified values honest here (dropping them certifies values off by far more than tol).
TEST(ProjectionSketch, AlignedRoundingErrorsAreBounded) {
  const int64_t V = 3000, d = 48;
  std::mt19937 rng(9);
  std::uniform_int_distribution<int> small(-1, 1);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<float> r(static_cast<size_t>(d));
  for (int64_t i = 1; i < d; ++i) r[static_cast<size_t>(i)] = (i % 3 == 0) ? -1.0f : 1.0f;
  std::vector<float> U(static_cast<size_t>(V * d));
  for (int64_t j = 0; j < V; ++j) {
    U[static_cast<size_t>(j * d)] = 127.0f;
    for (int64_t i = 1; i < d; ++i) U[static_cast<size_t>(j * d + i)] = static_cast<float>(small(rng)) + 0.45f * r[static_cast<size_t>(i)];
  }
  MatrixView W;
  W.data = U.data(), W.rows = V, W.cols = d, W.ld = d;
  const auto sketch = build_projection_sketch(W, 2);
  int certified = 0;
  for (double spread : {0.2, 2.0}) {
    // A state and its head/tail split (the 8 likeliest tokens in the head).
    std::vector<double> q(static_cast<size_t>(V));
    double z = 0;
    for (double& x : q) z += (x = std::exp(spread * normal(rng)));
    for (double& x : q) x /= z;
    const TailSplit t = head_and_tail(q, 8);
    for (double tol : {8e-6, 1e-7, 1e-9}) {
      std::vector<double> s_of;
      std::vector<std::vector<double>> heads;
      std::vector<long double> exact;
      std::vector<SketchJob> jobs;
      for (int v = 0; v < 24; ++v) {
        // g_j = u_j . r: rms about 30, a shift of 0.45 |r|^2 = 21 the codes do not see.
        const double s = 1e-6 * std::pow(10.0, 3.5 * v / 23.0);
        long double sum = 0, lin = 0;
        std::vector<double> hd;
        for (int64_t j = 0; j < V; ++j) {
          long double g = 0;
          for (int64_t i = 0; i < d; ++i) g += static_cast<long double>(U[static_cast<size_t>(j * d + i)]) * static_cast<long double>(r[static_cast<size_t>(i)]);
          sum += static_cast<long double>(q[static_cast<size_t>(j)]) * std::exp(static_cast<long double>(s) * g);
          if (t.tail_q[static_cast<size_t>(j)] > 0) lin += static_cast<long double>(q[static_cast<size_t>(j)]) * g;
        }
        for (int32_t id : t.ids) {
          long double g = 0;
          for (int64_t i = 0; i < d; ++i) g += static_cast<long double>(U[static_cast<size_t>(id * d + i)]) * static_cast<long double>(r[static_cast<size_t>(i)]);
          hd.push_back(static_cast<double>(static_cast<long double>(s) * g));
        }
        heads.push_back(std::move(hd));
        exact.push_back(std::log(sum));
        jobs.push_back(SketchJob{&t, r.data(), s, nullptr, static_cast<double>(static_cast<long double>(s) * lin)});
      }
      for (size_t i = 0; i < jobs.size(); ++i) jobs[i].head_delta = heads[i].data();
      for (bool screen : {false, true}) {
        sketch->screen_forms = screen;
        const std::vector<double> f = sketched_log_expectations(*sketch, jobs, tol, 2);
        for (size_t i = 0; i < f.size(); ++i) {
          if (std::isnan(f[i])) continue;
          ++certified;
          EXPECT_LE(std::abs(static_cast<long double>(f[i]) - exact[i]), static_cast<long double>(tol) * (1 + 1e-6L) + 1e-15L)
              << "spread " << spread << " tol " << tol << " s " << jobs[i].s << " screen " << screen;
        }
      }
    }
  }
  EXPECT_GT(certified, 0);
}

// A trained-like unembedding: every row shares a large mean direction m (u_j = r_j + 4 m), so
// Gamma's largest eigenvalue (along m) is ~V times its others and lambda_max |f|^2 overstates
// f^T Gamma f for rounding errors f that are nearly orthogonal to m. Screening the forms by
// lambda_max must then fall back to them: screened or not, the same vectors are certified, each
// within tol of the exact value.
TEST(ProjectionSketch, ScreenedFormsFallBackOnAPeakedGram) {
  const int64_t V = 4000, d = 64;
  std::mt19937 rng(13);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<float> m(static_cast<size_t>(d));
  for (int64_t i = 0; i < d; ++i) m[static_cast<size_t>(i)] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  std::vector<float> U(static_cast<size_t>(V * d));
  for (int64_t j = 0; j < V; ++j) {
    for (int64_t i = 0; i < d; ++i) U[static_cast<size_t>(j * d + i)] = static_cast<float>(0.3 * normal(rng) + 4.0 * static_cast<double>(m[static_cast<size_t>(i)]));
  }
  MatrixView W;
  W.data = U.data(), W.rows = V, W.cols = d, W.ld = d;
  const auto sketch = build_projection_sketch(W, 2);
  ASSERT_TRUE(std::isfinite(sketch->gram_lambda));
  // A flat state, its 8 likeliest tokens in the head.
  std::vector<double> q(static_cast<size_t>(V));
  double zq = 0;
  for (double& x : q) {
    x = std::exp(0.5 * normal(rng));
    zq += x;
  }
  for (double& x : q) x /= zq;
  const TailSplit t = head_and_tail(q, 8);
  // Vectors orthogonal to m (their rounding errors nearly so), and every fourth one whose rounding
  // error is along m, at scales from 1e-4 to 1e-1.
  std::vector<std::vector<float>> ys;
  std::vector<std::vector<double>> heads;
  std::vector<long double> exact;
  std::vector<SketchJob> jobs;
  for (int v = 0; v < 40; ++v) {
    std::vector<float> y(static_cast<size_t>(d));
    double ym = 0;
    for (int64_t i = 0; i < d; ++i) {
      y[static_cast<size_t>(i)] = static_cast<float>(normal(rng));
      ym += static_cast<double>(y[static_cast<size_t>(i)]) * static_cast<double>(m[static_cast<size_t>(i)]);
    }
    for (int64_t i = 0; i < d; ++i) y[static_cast<size_t>(i)] -= static_cast<float>(ym) * m[static_cast<size_t>(i)];
    if (v % 4 == 3) {
      // Codes plus 0.45 of a step everywhere: the rounding error f lies along m, where
      // f^T Gamma f = lambda_max |f|^2 (an underestimated lambda_max would show here).
      std::uniform_int_distribution<int> code(-100, 100);
      for (int64_t i = 1; i < d; ++i) y[static_cast<size_t>(i)] = static_cast<float>((code(rng) + 0.45) / 127.0);
      y[0] = 1.0f;
    }
    const double s = 1e-4 * std::pow(10.0, 3.0 * v / 39.0);
    long double sum = 0, lin = 0;
    std::vector<double> hd;
    std::vector<long double> g(static_cast<size_t>(V));
    for (int64_t j = 0; j < V; ++j) {
      long double gj = 0;
      for (int64_t i = 0; i < d; ++i) gj += static_cast<long double>(U[static_cast<size_t>(j * d + i)]) * static_cast<long double>(y[static_cast<size_t>(i)]);
      g[static_cast<size_t>(j)] = gj;
      sum += static_cast<long double>(q[static_cast<size_t>(j)]) * std::exp(static_cast<long double>(s) * gj);
      if (t.tail_q[static_cast<size_t>(j)] > 0) lin += static_cast<long double>(q[static_cast<size_t>(j)]) * gj;
    }
    for (int32_t id : t.ids) hd.push_back(static_cast<double>(static_cast<long double>(s) * g[static_cast<size_t>(id)]));
    ys.push_back(std::move(y));
    heads.push_back(std::move(hd));
    exact.push_back(std::log(sum));
    jobs.push_back(SketchJob{&t, nullptr, s, nullptr, static_cast<double>(static_cast<long double>(s) * lin)});
  }
  for (size_t i = 0; i < jobs.size(); ++i) jobs[i].y0 = ys[i].data(), jobs[i].head_delta = heads[i].data();
  const double tol = 1e-7;
  sketch->screen_forms = false;
  const std::vector<double> plain = sketched_log_expectations(*sketch, jobs, tol, 2);
  sketch->screen_forms = true;
  const std::vector<double> screened = sketched_log_expectations(*sketch, jobs, tol, 1);
  int certified = 0;
  for (size_t i = 0; i < jobs.size(); ++i) {
    EXPECT_EQ(std::isnan(plain[i]), std::isnan(screened[i])) << "job " << i << " s " << jobs[i].s;
    for (double f : {plain[i], screened[i]}) {
      if (std::isnan(f)) continue;
      ++certified;
      EXPECT_LE(std::abs(static_cast<long double>(f) - exact[i]), static_cast<long double>(tol) * (1 + 1e-6L) + 1e-15L)
          << "job " << i << " s " << jobs[i].s;
    }
  }
  EXPECT_GT(certified, 10);
  EXPECT_LT(certified, 80);
}

// The integer products are exact on every kernel and the float parts are the same code, so the
// certified values and their half-widths are the same bits on a CPU with AVX-512 VNNI, one with
// AVX-VNNI, an AVX2 laptop (kernel and GEMMs capped at AVX2) and the portable loops: explain's
// sketched scores do not depend on the machine. (Kernels this CPU lacks are left out and named.)
TEST(ProjectionSketch, EveryInt8KernelGivesTheSameBits) {
  const int64_t V = 2000, d = 203;  // d not a multiple of 4: the packing pads the columns
  std::mt19937 rng(21);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<float> U;  // [V, d]
  const auto sketch = random_sketch(V, d, rng, normal, U);
  // A flat-ish state, its 8 likeliest tokens in the head.
  std::vector<double> q(static_cast<size_t>(V));
  double z = 0;
  for (double& x : q) z += (x = std::exp(normal(rng)));
  for (double& x : q) x /= z;
  const TailSplit t = head_and_tail(q, 8);
  // 27 vectors (past the kernels' groups of 1, 2 and 6), some with entries that clamp to +-127, at
  // scales from 1e-4 to 3e-2 of their projections' rms.
  const int n = 27;
  std::vector<std::vector<float>> ys;
  std::vector<std::vector<double>> heads;
  std::vector<SketchJob> jobs;
  for (int v = 0; v < n; ++v) {
    std::vector<float> y(static_cast<size_t>(d));  // [d]
    for (float& x : y) x = static_cast<float>(normal(rng) * (v % 3 == 0 ? 5.0 : 1.0));
    if (v % 4 == 1) y[static_cast<size_t>(v % d)] = -300.0f;
    long double g2 = 0, lin = 0;
    std::vector<long double> g(static_cast<size_t>(V));  // [V] u_j . y
    for (int64_t j = 0; j < V; ++j) {
      long double sum = 0;
      for (int64_t i = 0; i < d; ++i) sum += static_cast<long double>(U[static_cast<size_t>(j * d + i)]) * static_cast<long double>(y[static_cast<size_t>(i)]);
      g[static_cast<size_t>(j)] = sum;
      g2 += sum * sum;
      lin += static_cast<long double>(t.tail_q[static_cast<size_t>(j)]) * sum;
    }
    const double s = 1e-4 * std::pow(10.0, 2.5 * v / (n - 1)) / std::sqrt(static_cast<double>(g2 / V)) * (v % 2 ? -1 : 1);
    std::vector<double> hd;
    for (int32_t id : t.ids) hd.push_back(static_cast<double>(static_cast<long double>(s) * g[static_cast<size_t>(id)]));
    heads.push_back(std::move(hd));
    ys.push_back(std::move(y));
    jobs.push_back(SketchJob{&t, nullptr, s, nullptr, static_cast<double>(static_cast<long double>(s) * lin)});
  }
  for (size_t i = 0; i < jobs.size(); ++i) jobs[i].y0 = ys[i].data(), jobs[i].head_delta = heads[i].data();

  struct Machine {
    const char* name;
    ops::detail::GemmIsa gemm;
    ops::detail::Int8Kernel kernel;
  };
  using ops::detail::GemmIsa;
  using ops::detail::Int8Kernel;
  const Machine machines[] = {{"AMX", GemmIsa::avx512, Int8Kernel::amx},
                              {"AVX-512 VNNI", GemmIsa::avx512, Int8Kernel::avx512_vnni},
                              {"AVX-VNNI", GemmIsa::avx2, Int8Kernel::avx_vnni},
                              {"AVX2", GemmIsa::avx2, Int8Kernel::avx2},
                              {"portable", GemmIsa::scalar, Int8Kernel::portable}};
  std::vector<double> f0, hw0;
  int compared = 0;
  for (const Machine& m : machines) {
    if (ops::detail::int8_dot_best_kernel() < m.kernel) {
      std::printf("(this CPU has no %s kernel: not compared)\n", ops::detail::int8_kernel_name(m.kernel));
      continue;
    }
    ops::detail::set_gemm_isa_limit(m.gemm);
    ops::detail::set_int8_dot_kernel_limit(m.kernel);
    ASSERT_EQ(ops::detail::int8_dot_active_kernel(), m.kernel) << m.name;
    std::vector<double> hw;
    const std::vector<double> f = sketched_log_expectations(*sketch, jobs, 8e-6, 2, &hw);
    ops::detail::set_gemm_isa_limit(GemmIsa::avx512);
    ops::detail::set_int8_dot_kernel_limit(Int8Kernel::amx);
    ASSERT_EQ(f.size(), jobs.size());
    ASSERT_EQ(hw.size(), jobs.size());
    if (compared++ == 0) {
      f0 = f, hw0 = hw;
      // Some values certified, some refused: both outcomes are compared.
      const auto certified = std::count_if(f.begin(), f.end(), [](double x) { return !std::isnan(x); });
      EXPECT_GT(certified, 3);
      EXPECT_LT(certified, n);
      continue;
    }
    EXPECT_EQ(std::memcmp(f.data(), f0.data(), f.size() * sizeof(double)), 0) << m.name << ": certified values differ";
    EXPECT_EQ(std::memcmp(hw.data(), hw0.data(), hw.size() * sizeof(double)), 0) << m.name << ": half-widths differ";
  }
  EXPECT_GE(compared, 2);
}

// The steps of an answer share an FFN direction's sketch (its integer products and forms) through
// SharedProjections: a later call reads what an earlier one published, under another state, and
// gets the very bits it would compute itself, with and without the screened forms, whether the
// budget holds every direction or a few; a vector with no key, or repeated in one call, too.
// A random sketch, then `n_states` states and `n` directions drawn from its generator, in that order.
struct SketchCase {
  RandomSketch r;
  std::vector<TailSplit> states;
  std::vector<std::vector<float>> ys;
  SketchCase(int64_t V, int64_t d, unsigned seed, int n_states, double spread, int n)
      : r(V, d, seed), states(random_states(V, n_states, spread, r.rng, r.normal)), ys(random_directions(n, d, r.rng, r.normal)) {}
};

TEST(ProjectionSketch, SharedProductsGiveTheSameBits) {
  const int64_t V = 2000, d = 203;
  RandomSketch r(V, d, 5);
  const auto& sketch = r.sketch;
  const std::vector<TailSplit> states = random_states(V, 2, 0.7, r.rng, r.normal);  // two steps' distributions
  const int n = 30;  // directions: (layer v % 2, neuron v / 2)
  const std::vector<std::vector<float>> ys = random_directions(n, d, r.rng, r.normal);
  // Each state's jobs: every direction at a coefficient of its own, plus direction 0 again (one
  // sketch for both) and one vector with no key. Head deltas of 0: the bits, not the values, count.
  std::vector<double> zeros(8, 0.0);
  const std::vector<float> own = ys[1];  // direction 1's values in a vector of its own
  auto jobs_for = [&](const TailSplit& t, double scale) {
    std::vector<SketchJob> jobs;
    for (int v = 0; v < n; ++v) {
      const double s = scale * 1e-3 * std::pow(10.0, 2.0 * v / (n - 1)) * (v % 2 ? -1 : 1);
      jobs.push_back(SketchJob{&t, ys[static_cast<size_t>(v)].data(), s, zeros.data(), 0.0, v % 2, v / 2});
    }
    jobs.push_back(SketchJob{&t, ys[0].data(), 2 * jobs[0].s, zeros.data(), 0.0, 0, 0});
    jobs.push_back(SketchJob{&t, own.data(), jobs[1].s, zeros.data(), 0.0, -1, -1});
    return jobs;
  };
  const std::vector<SketchJob> first = jobs_for(states[0], 1.0), second = jobs_for(states[1], 0.7);
  ModelConfig c;
  c.n_layers = 2, c.d_mlp = n / 2, c.n_heads = 1, c.d_head = 1, c.d_vocab = V;
  const int64_t entry_bytes = sketch->codes.n_pad * static_cast<int64_t>(sizeof(int32_t));
  for (const bool screened : {false, true}) {
    sketch->screen_forms = screened;
    std::vector<double> hw1, hw2;
    const std::vector<double> alone1 = sketched_log_expectations(*sketch, first, 8e-6, 2, &hw1);
    const std::vector<double> alone2 = sketched_log_expectations(*sketch, second, 8e-6, 2, &hw2);
    const auto certified = std::count_if(alone2.begin(), alone2.end(), [](double x) { return !std::isnan(x); });
    EXPECT_GT(certified, 3);
    EXPECT_LT(certified, static_cast<long>(alone2.size()));
    for (const int64_t room : {int64_t{1} << 30, 5 * entry_bytes, int64_t{0}}) {
      SCOPED_TRACE(std::string(screened ? "screened forms" : "every form") + ", budget " + std::to_string(room));
      SharedProjections shared(c, room);
      int64_t read1 = -1, read2 = -1;
      std::vector<double> w1, w2;
      const std::vector<double> f1 = sketched_log_expectations(*sketch, first, 8e-6, 2, &w1, &shared, &read1);
      const std::vector<double> f2 = sketched_log_expectations(*sketch, second, 8e-6, 1, &w2, &shared, &read2);
      EXPECT_EQ(read1, 0);
      // Every keyed job of the second call whose direction found room (the budget's first five
      // directions in job order; direction 0 twice).
      const int64_t kept = std::min<int64_t>(n, room / entry_bytes);
      EXPECT_EQ(read2, kept == 0 ? 0 : kept + 1);
      EXPECT_EQ(shared.bytes_kept(), kept * entry_bytes);
      ASSERT_EQ(f1.size(), alone1.size());
      ASSERT_EQ(f2.size(), alone2.size());
      EXPECT_EQ(std::memcmp(f1.data(), alone1.data(), f1.size() * sizeof(double)), 0);
      EXPECT_EQ(std::memcmp(w1.data(), hw1.data(), w1.size() * sizeof(double)), 0);
      EXPECT_EQ(std::memcmp(f2.data(), alone2.data(), f2.size() * sizeof(double)), 0);
      EXPECT_EQ(std::memcmp(w2.data(), hw2.data(), w2.size() * sizeof(double)), 0);
    }
  }
  sketch->screen_forms = false;
}

TEST(ProjectionSketch, GivenFormsGiveTheSameBits) {
  // The forms a model's bounds keep (sketched_forms of its FFN directions) stand in for the ones
  // sketched_log_expectations computes: the same values and half-widths bit for bit, screened or
  // not; NaN forms are not read; and forms that are off do change the certificates (they are used).
  const int n = 24;
  const SketchCase sc(2000, 203, 8, 1, 0.7, n);
  const auto& sketch = sc.r.sketch;
  const std::vector<TailSplit>& states = sc.states;
  const std::vector<std::vector<float>>& ys = sc.ys;
  std::vector<float> Y;  // [n, d]
  for (const auto& y : ys) Y.insert(Y.end(), y.begin(), y.end());
  const std::vector<double> forms = sketched_forms(*sketch, Y.data(), n, 2);
  ASSERT_EQ(forms.size(), static_cast<size_t>(2 * n));
  EXPECT_EQ(sketched_forms(*sketch, Y.data(), n, 1), forms);  // any thread count
  std::vector<double> zeros(8, 0.0), scaled(forms), nans(forms.size(), std::numeric_limits<double>::quiet_NaN());
  for (double& x : scaled) x *= 1.5;
  auto jobs_with = [&](const std::vector<double>* given) {
    std::vector<SketchJob> jobs;
    for (int v = 0; v < n; ++v) {
      const double s = 1e-3 * std::pow(10.0, 2.0 * v / (n - 1)) * (v % 2 ? -1 : 1);
      jobs.push_back(SketchJob{&states[0], ys[static_cast<size_t>(v)].data(), s, zeros.data(), 0.0, 0, v,
                               given != nullptr ? given->data() + 2 * v : nullptr});
    }
    return jobs;
  };
  for (const bool screened : {false, true}) {
    SCOPED_TRACE(screened ? "screened forms" : "every form");
    sketch->screen_forms = screened;
    std::vector<double> w0, w1, w2, w3;
    const std::vector<double> f0 = sketched_log_expectations(*sketch, jobs_with(nullptr), 8e-6, 2, &w0);
    const std::vector<double> f1 = sketched_log_expectations(*sketch, jobs_with(&forms), 8e-6, 2, &w1);
    const std::vector<double> f2 = sketched_log_expectations(*sketch, jobs_with(&nans), 8e-6, 2, &w2);
    const std::vector<double> f3 = sketched_log_expectations(*sketch, jobs_with(&scaled), 8e-6, 2, &w3);
    EXPECT_GT(std::count_if(f0.begin(), f0.end(), [](double x) { return !std::isnan(x); }), 3);
    EXPECT_EQ(std::memcmp(f1.data(), f0.data(), f0.size() * sizeof(double)), 0);
    EXPECT_EQ(std::memcmp(w1.data(), w0.data(), w0.size() * sizeof(double)), 0);
    EXPECT_EQ(std::memcmp(f2.data(), f0.data(), f0.size() * sizeof(double)), 0);
    EXPECT_EQ(std::memcmp(w2.data(), w0.data(), w0.size() * sizeof(double)), 0);
    if (!screened) {
      EXPECT_NE(std::memcmp(w3.data(), w0.data(), w0.size() * sizeof(double)), 0);
    }
  }
  sketch->screen_forms = false;
}

TEST(ProjectionSketch, ManyStatesFromSharedProductsAgreeWithTheLanes) {
  // sketched_log_expectations_shared (a target's sums re-certifying every step of a direction from
  // its published products, the tail sums as float products of 256-token blocks) against
  // sketched_log_expectations on the same jobs (per-tile float lanes): the same certificate up to
  // the sums' float rounding, the same bits on 1 and 2 threads, and NaN for an unpublished vector.
  const int64_t V = 2000, d = 203;
  const int n = 24;
  const SketchCase sc(V, d, 9, 3, 0.5, n);
  const auto& sketch = sc.r.sketch;
  const std::vector<TailSplit>& states = sc.states;
  const std::vector<std::vector<float>>& ys = sc.ys;
  std::vector<double> zeros(8, 0.0);
  ModelConfig c;
  c.n_layers = 1, c.d_mlp = n, c.n_heads = 1, c.d_head = 1, c.d_vocab = V;
  SharedProjections shared(c, int64_t{1} << 30);
  std::vector<SketchJob> publish, jobs;
  for (int v = 0; v < n; ++v) publish.push_back(SketchJob{&states[0], ys[static_cast<size_t>(v)].data(), 1e-3, zeros.data(), 0.0, 0, v});
  std::vector<double> unused;
  sketched_log_expectations(*sketch, publish, 1.0, 2, &unused, &shared, nullptr);
  for (const TailSplit& t : states) {
    for (int v = 0; v < n; ++v) {
      const double s = 1e-3 * std::pow(10.0, 2.0 * v / (n - 1)) * (v % 2 ? -1 : 1);
      jobs.push_back(SketchJob{&t, ys[static_cast<size_t>(v)].data(), s, zeros.data(), 0.0, 0, v});
    }
  }
  std::vector<double> hw_lanes, hw_many, hw_one;
  const std::vector<double> lanes = sketched_log_expectations(*sketch, jobs, 1.0, 2, &hw_lanes);
  const std::vector<double> many = sketched_log_expectations_shared(*sketch, jobs, 1.0, 2, hw_many, shared);
  const std::vector<double> one = sketched_log_expectations_shared(*sketch, jobs, 1.0, 1, hw_one, shared);
  EXPECT_EQ(std::memcmp(many.data(), one.data(), many.size() * sizeof(double)), 0);
  EXPECT_EQ(std::memcmp(hw_many.data(), hw_one.data(), hw_many.size() * sizeof(double)), 0);
  int compared = 0;
  for (size_t i = 0; i < jobs.size(); ++i) {
    ASSERT_EQ(std::isnan(lanes[i]), std::isnan(many[i])) << i;
    if (std::isnan(lanes[i])) continue;
    ++compared;
    EXPECT_NEAR(many[i], lanes[i], 1e-4 * hw_lanes[i] + 1e-15) << i;
    EXPECT_NEAR(hw_many[i], hw_lanes[i], 1e-4 * hw_lanes[i] + 1e-15) << i;
  }
  EXPECT_GT(compared, n);
  // A vector nobody published: no value.
  std::vector<SketchJob> stranger{SketchJob{&states[1], ys[0].data(), 1e-3, zeros.data(), 0.0, 0, n + 5}};
  std::vector<double> w;
  EXPECT_TRUE(std::isnan(sketched_log_expectations_shared(*sketch, stranger, 1.0, 2, w, shared)[0]));
}

TEST(ProjectionSketch, QuarticNormsBoundTheExactOnes) {
  // sketched_quartic_norms (the bounded method's |g|_4^2 from int8 products) against
  // sqrt(sum_j (u_j . y)^4) in long double: never below it, including rows the int8 rounding mostly
  // loses (one huge entry), and close to it on ordinary rows; the same bits on 1 and 2 threads.
  std::mt19937 rng(11);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<float> U;
  const int64_t V = 3000, d = 96;
  const auto sketch = random_sketch(V, d, rng, normal, U);
  ASSERT_TRUE(std::isfinite(sketch->gram_lambda) && std::isfinite(sketch->gram_err_lambda));
  const int64_t n = 40;
  std::vector<float> y(static_cast<size_t>(n * d));
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t i = 0; i < d; ++i) y[static_cast<size_t>(r * d + i)] = static_cast<float>(normal(rng) * (r % 3 == 0 ? 1e-3 : 1.0));
    if (r % 5 == 1) y[static_cast<size_t>(r * d + r % d)] = 500.0f;  // the others round to 0 or +-1
  }
  for (int64_t i = 0; i < d; ++i) y[static_cast<size_t>((n - 1) * d + i)] = 0.0f;  // a zero row
  const std::vector<double> got = sketched_quartic_norms(*sketch, y.data(), n, 2);
  EXPECT_EQ(got, sketched_quartic_norms(*sketch, y.data(), n, 1));
  ASSERT_EQ(got.size(), static_cast<size_t>(n));
  double worst_ordinary = 0;
  for (int64_t r = 0; r < n; ++r) {
    long double s4 = 0;
    for (int64_t j = 0; j < V; ++j) {
      long double g = 0;
      for (int64_t i = 0; i < d; ++i) {
        g += static_cast<long double>(U[static_cast<size_t>(j * d + i)]) * static_cast<long double>(y[static_cast<size_t>(r * d + i)]);
      }
      s4 += g * g * g * g;
    }
    const auto exact = static_cast<double>(std::sqrt(s4));
    ASSERT_GE(got[static_cast<size_t>(r)], exact) << "row " << r;
    if (r % 5 != 1 && exact > 0) worst_ordinary = std::max(worst_ordinary, got[static_cast<size_t>(r)] / exact);
  }
  EXPECT_EQ(got[static_cast<size_t>(n - 1)], 0.0);
  EXPECT_LT(worst_ordinary, 1.6);
}

}  // namespace
}  // namespace reslens::analysis
