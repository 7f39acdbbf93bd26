// ops/vector_ops: the analyses' vector kernels against plain double loops (std::exp, in-order sums).
#include "ops/vector_ops.h"
#include "ops/combine_rows.h"
#include "ops/gemm.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace reslens::ops {
namespace {

TEST(VectorOps, ExpIsWithinFourUlpOnItsRangeAndZeroBelow) {
  std::vector<double> x;
  for (double v = -708.0; v <= 0.0; v += 0.0137) x.push_back(v);
  for (double v : {0.0, -1e-300, -1e-17, -0.5 * std::log(2.0), -std::log(2.0), -1.0, -707.9999, -708.0}) x.push_back(v);
  const size_t n_in_range = x.size();
  for (double v : {-708.5, -745.0, -1e5, -std::numeric_limits<double>::infinity()}) x.push_back(v);
  std::vector<double> out(x.size());
  double want_sum = 0;
  for (size_t i = 0; i < n_in_range; ++i) want_sum += std::exp(x[i]);
  const double sum = exp_shifted(x.data(), 0.0, out.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < n_in_range; ++i) {
    const double want = std::exp(x[i]);
    EXPECT_LE(std::abs(out[i] - want), 4 * std::numeric_limits<double>::epsilon() * want) << "x = " << x[i];
  }
  for (size_t i = n_in_range; i < x.size(); ++i) EXPECT_EQ(out[i], 0.0) << "x = " << x[i];
  EXPECT_NEAR(sum, want_sum, 1e-13 * want_sum);
}

TEST(VectorOps, WeightedExpSumMatchesADoubleLoop) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t n : {1, 7, 8, 9, 1000, 50257}) {
    std::vector<float> g(static_cast<size_t>(n));
    std::vector<double> q(static_cast<size_t>(n));
    double z = 0;
    for (int64_t i = 0; i < n; ++i) {
      g[static_cast<size_t>(i)] = normal(rng);
      z += (q[static_cast<size_t>(i)] = std::exp(static_cast<double>(normal(rng))));
    }
    for (double& v : q) v /= z;
    for (double s : {-3.0, -0.01, 0.0, 0.5, 20.0}) {
      double mx = -std::numeric_limits<double>::infinity();
      for (float v : g) mx = std::max(mx, s * static_cast<double>(v));
      EXPECT_EQ(max_scaled(g.data(), s, n), mx);
      double want = 0;
      for (int64_t i = 0; i < n; ++i) want += q[static_cast<size_t>(i)] * std::exp(s * static_cast<double>(g[static_cast<size_t>(i)]) - mx);
      // (both sums round; a sequential sum of n terms is within ~n ulp)
      EXPECT_NEAR(exp_weighted_sum(q.data(), g.data(), s, mx, n), want, 1e-12 * want) << "n " << n << " s " << s;
    }
  }
}

// The moments' lanes are a whole row's chains in any slicing: the bits of lane t are the in-order
// double sums of the elements i % 16 == t, whether the row comes in one call or in blocks.
TEST(VectorOps, WeightedMomentLanesAreTheInOrderLaneSumsInAnySlicing) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::uniform_real_distribution<double> unit(0.0, 1e-3);
  const int64_t n = 1008;  // a multiple of 16
  std::vector<double> q(n);
  std::vector<float> g(n);
  for (double& v : q) v = unit(rng);
  for (float& v : g) v = normal(rng);
  MomentLanes want;
  for (int64_t i = 0; i < n; ++i) {
    const auto t = static_cast<size_t>(i % MomentLanes::kLanes);
    const double w = q[static_cast<size_t>(i)], x = static_cast<double>(g[static_cast<size_t>(i)]), wx = w * x;
    want.m1[t] += wx, want.a2[t] += wx * x;
  }
  for (const int64_t block : {n, int64_t{16}, int64_t{256}, int64_t{208}}) {
    MomentLanes got;
    for (int64_t i0 = 0; i0 < n; i0 += block) weighted_moments_add(q.data() + i0, g.data() + i0, std::min(block, n - i0), got);
    for (int t = 0; t < MomentLanes::kLanes; ++t) {
      EXPECT_EQ(got.m1[t], want.m1[t]) << "block " << block << " lane " << t;
      EXPECT_EQ(got.a2[t], want.a2[t]) << "block " << block << " lane " << t;
    }
  }
}

// Each element is the fma chain from 0 in k order, on the vector kernels as on the portable loop.
TEST(VectorOps, FusedRowCombinationsAreTheFmaChainOnEveryPath) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t M = 7, N = 77, K = 64;  // row and column tails of the 4 x 32 blocks
  std::vector<float> A(M * K), B(K * N), want(M * N), got(M * N, -1.0f), portable(M * N, -1.0f);
  for (float& v : A) v = normal(rng);
  for (float& v : B) v = normal(rng);
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      float acc = 0.0f;
      for (int64_t k = 0; k < K; ++k) acc = std::fma(A[static_cast<size_t>(m * K + k)], B[static_cast<size_t>(k * N + n)], acc);
      want[static_cast<size_t>(m * N + n)] = acc;
    }
  }
  combine_rows_fma(M, N, K, A.data(), K, B.data(), N, got.data(), N);
  detail::combine_rows_fma_portable(M, N, K, A.data(), K, B.data(), N, portable.data(), N);
  EXPECT_EQ(got, want);
  EXPECT_EQ(portable, want);
  std::vector<float> avx2(M * N, -1.0f);
  if (detail::combine_rows_fma_avx2(M, N, K, A.data(), K, B.data(), N, avx2.data(), N)) {
    EXPECT_EQ(avx2, want);
  }
}

TEST(VectorOps, SquaresAndPeakAreTheScalarLoops) {
  // The sketch's squared integer products and max_j a_j |x_j|, against the plain loop (bit for bit:
  // single roundings and an exact max), with the peak anywhere, negative products and a carried peak.
  std::mt19937 rng(12);
  std::uniform_int_distribution<int32_t> ints(-12000000, 12000000);
  std::uniform_real_distribution<float> scales(0.0f, 1e-3f);
  for (const int64_t n : {16, 64, 256, 1024}) {
    std::vector<int32_t> x(static_cast<size_t>(n));
    std::vector<float> a(static_cast<size_t>(n)), out(static_cast<size_t>(n));
    for (auto& v : x) v = ints(rng);
    for (auto& v : a) v = scales(rng);
    x[static_cast<size_t>(n - 1)] = -16000000;  // the peak in the last lane, from a negative product
    a[static_cast<size_t>(n - 1)] = 1e-3f;
    for (const float carried : {0.0f, 1e9f}) {
      float want = carried;
      for (int64_t j = 0; j < n; ++j) want = std::max(want, a[static_cast<size_t>(j)] * std::abs(static_cast<float>(x[static_cast<size_t>(j)])));
      EXPECT_EQ(squares_and_peak(x.data(), a.data(), n, out.data(), carried), want) << n;
      for (int64_t j = 0; j < n; ++j) {
        const auto xf = static_cast<float>(x[static_cast<size_t>(j)]);
        ASSERT_EQ(out[static_cast<size_t>(j)], xf * xf) << j;
      }
    }
  }
}

// Every output of the register-blocked kernels under one instruction set cap (ops::detail::
// set_gemm_isa_limit, as RESLENS_ISA sets it), as raw bytes.
std::vector<unsigned char> blocked_kernel_outputs() {
  std::mt19937 rng(77);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<unsigned char> bytes;
  auto keep = [&bytes](const auto& v) {
    const auto* p = reinterpret_cast<const unsigned char*>(v.data());
    bytes.insert(bytes.end(), p, p + v.size() * sizeof(v[0]));
  };
  auto randn = [&](size_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = normal(rng);
    return v;
  };
  // Small NN products: rows past the blocks (13 = 2 x 5 + 3 = 8 + 5 = 2 x 6 + 1), columns past them (45).
  for (const int64_t M : {1, 5, 6, 13}) {
    const int64_t N = 45, K = 37;
    const std::vector<float> A = randn(static_cast<size_t>(M * K)), B = randn(static_cast<size_t>(K * N));
    std::vector<float> C = randn(static_cast<size_t>(M * N));
    matmul_nn_accumulate_small(M, N, K, A.data(), K, B.data(), N, C.data(), N);
    keep(C);
    std::vector<double> Ad(A.begin(), A.end()), Cd(static_cast<size_t>(M * N), 0.25);
    matmul_nn_accumulate_small(M, N, K, Ad.data(), K, B.data(), N, Cd.data(), N);
    keep(Cd);
  }
  // Weighted row sums: K over two chunks of 512, N over the 64-column slices with a partial block.
  {
    const int64_t M = 13, K = 600, N = 150;
    const std::vector<float> A = randn(static_cast<size_t>(M * K)), W = randn(static_cast<size_t>(K * N));
    std::vector<double> C(static_cast<size_t>(M * N));
    weighted_row_sums(M, K, N, A.data(), K, W.data(), N, C.data(), 2);
    keep(C);
  }
  // int16 row combinations: passes of 12 and 16, and the columns past the last 16.
  {
    const int64_t K = 20, n = 83, ldr = 90;
    std::uniform_int_distribution<int> code(-32767, 32767);
    std::vector<int16_t> rows(static_cast<size_t>(K * ldr));
    for (auto& r : rows) r = static_cast<int16_t>(code(rng));
    for (const int64_t nc : {9, 12, 13, 16, 29}) {
      const std::vector<float> coef = randn(static_cast<size_t>(nc * K));
      std::vector<float> out(static_cast<size_t>(nc * n));
      combine_int16_rows(nc, K, n, coef.data(), rows.data(), ldr, out.data());
      keep(out);
    }
  }
  // The sketch's tile sums.
  {
    std::uniform_int_distribution<int32_t> ints(-3000000, 3000000);
    std::vector<int32_t> x(256);
    for (auto& v : x) v = ints(rng);
    const std::vector<float> a = randn(256), w = randn(256);
    std::vector<float> sums(2);
    sketch_tile_sums(x.data(), a.data(), w.data(), 256, sums[0], sums[1]);
    keep(sums);
    // Squares and peak, extremes, moments: lanes over 16-steps, then tails past them (250).
    std::vector<float> squares(256), ends(3);
    ends[0] = squares_and_peak(x.data(), a.data(), 250, squares.data(), 0.5f);
    min_max(w.data(), 250, ends[1], ends[2]);
    keep(squares);
    keep(ends);
    std::vector<double> q(256);
    for (double& v : q) v = static_cast<double>(normal(rng));
    MomentLanes lanes;
    weighted_moments_add(q.data(), w.data(), 250, lanes);
    keep(std::vector<double>(lanes.m1, lanes.m1 + MomentLanes::kLanes));
    keep(std::vector<double>(lanes.a2, lanes.a2 + MomentLanes::kLanes));
  }
  // The exponentials: 8 lanes then a tail (203), exponents from 0 down past -708 (those give 0).
  {
    const std::vector<float> g = randn(203);
    std::vector<double> q(203), x(203), e(203);
    for (size_t i = 0; i < q.size(); ++i) {
      q[i] = std::exp(static_cast<double>(normal(rng)));
      x[i] = -750.0 * static_cast<double>(i) / 202.0;
    }
    std::vector<double> sums(2);
    sums[0] = exp_weighted_sum(q.data(), g.data(), 3.0, 12.0, 203);
    sums[1] = exp_shifted(x.data(), 0.25, e.data(), 203);
    keep(sums);
    keep(e);
  }
  // The dot product in 8 double lanes: 203 elements, 8-lane blocks then a tail of 3.
  {
    const std::vector<float> x = randn(203), y = randn(203);
    keep(std::vector<double>{dot(x.data(), y.data(), 203)});
  }
  return bytes;
}

TEST(VectorOps, EveryRegisterBuildGivesTheSameBits) {
  // The kernels built per register file (AVX-512, AVX2, the baseline) must give the baseline's bytes;
  // each is run under the GEMM's instruction set cap, so an AVX-512 machine checks all three.
  using detail::GemmIsa;
  detail::set_gemm_isa_limit(GemmIsa::scalar);
  const std::vector<unsigned char> want = blocked_kernel_outputs();
  for (const GemmIsa isa : {GemmIsa::avx2, GemmIsa::avx512}) {
    if (static_cast<int>(isa) > static_cast<int>(detail::gemm_best_isa())) continue;
    detail::set_gemm_isa_limit(isa);
    EXPECT_TRUE(blocked_kernel_outputs() == want) << "instruction set " << static_cast<int>(isa);
  }
  detail::set_gemm_isa_limit(GemmIsa::avx512);
}

TEST(VectorOps, SketchTileSumsAreTheScalarLoop) {
  // The 16 lanes (t % 16, t ascending), their fixed tree and the exact max, against the plain loop
  // bit for bit; weights spanning 12 binades so that the lanes' roundings differ from any other
  // order, and the peak in each lane in turn.
  std::mt19937 rng(31);
  std::uniform_int_distribution<int32_t> ints(-3000000, 3000000);
  std::uniform_real_distribution<float> scales(0.0f, 1e-3f), expo(-12.0f, 0.0f);
  for (const int64_t n : {16, 64, 256}) {
    for (int peak_at = 0; peak_at < 16; ++peak_at) {
      std::vector<int32_t> x(static_cast<size_t>(n));
      std::vector<float> a(static_cast<size_t>(n)), w(static_cast<size_t>(n));
      for (auto& v : x) v = ints(rng);
      for (auto& v : a) v = scales(rng);
      for (auto& v : w) v = std::exp2(expo(rng));
      x[static_cast<size_t>(n - 16 + peak_at)] = -4000000;
      a[static_cast<size_t>(n - 16 + peak_at)] = 1e-3f;
      float lane[16] = {}, top[16] = {};
      for (int64_t t = 0; t < n; ++t) {
        const auto xf = static_cast<float>(x[static_cast<size_t>(t)]);
        lane[t % 16] += w[static_cast<size_t>(t)] * (xf * xf);
        top[t % 16] = std::max(top[t % 16], a[static_cast<size_t>(t)] * std::abs(xf));
      }
      for (int h = 8; h > 0; h /= 2) {
        for (int l = 0; l < h; ++l) lane[l] += lane[l + h], top[l] = std::max(top[l], top[l + h]);
      }
      float sum = -1, peak = -1;
      sketch_tile_sums(x.data(), a.data(), w.data(), n, sum, peak);
      EXPECT_EQ(sum, lane[0]) << n << " " << peak_at;
      EXPECT_EQ(peak, top[0]) << n << " " << peak_at;
      EXPECT_EQ(peak, 1e-3f * 4000000.0f);
    }
  }
}

TEST(VectorOps, Int8CodesAreTheScalarRule) {
  // x / s in double, clamped to [-127, 127], rounded half away from zero; ties, the clamp, zeros,
  // lengths that leave a tail after the 8-wide steps, and a scale that is not positive.
  const auto rule = [](float u, double s) {
    if (!(s > 0)) return 0;
    const double r = std::clamp(static_cast<double>(u) / s, -127.0, 127.0);
    return static_cast<int>(r + (r >= 0 ? 0.5 : -0.5));
  };
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> vals(-1.0f, 1.0f);
  for (const int64_t n : {1, 7, 8, 9, 64, 771}) {
    std::vector<float> u(static_cast<size_t>(n));
    for (auto& v : u) v = vals(rng);
    u[0] = 0.0f;
    if (n > 2) u[1] = 2.5f / 127.0f, u[2] = -2.5f / 127.0f;  // near ties at the scale 1/127
    for (const double s : {1.0 / 127.0, 0.003, 0.5 / 127.0, 1e-30, 0.0, -1.0}) {
      std::vector<int8_t> got(static_cast<size_t>(n), 99);
      int8_codes(u.data(), n, s, got.data());
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(got[static_cast<size_t>(i)], rule(u[static_cast<size_t>(i)], s)) << n << " " << s << " " << i;
    }
  }
  // Exact ties: 2.5 and -2.5 at scale 1 round away from zero, 127.4 and -300 clamp.
  const float ties[9] = {2.5f, -2.5f, 0.5f, -0.5f, 127.4f, -300.0f, 126.5f, -0.49f, 1e30f};
  int8_t got[9];
  int8_codes(ties, 9, 1.0, got);
  const int8_t want[9] = {3, -3, 1, -1, 127, -127, 127, 0, 127};
  for (int i = 0; i < 9; ++i) EXPECT_EQ(got[i], want[i]) << i;
}

TEST(VectorOps, MinMaxFindsTheExtremesAnywhere) {
  std::mt19937 rng(6);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const int64_t n : {1, 7, 16, 17, 33, 1000}) {
    std::vector<float> g(static_cast<size_t>(n));
    for (float& v : g) v = normal(rng);
    for (const int64_t at : {int64_t{0}, n / 2, n - 1}) {
      std::vector<float> h = g;
      h[static_cast<size_t>(at)] = 100.0f;
      h[static_cast<size_t>((at + 1) % n)] = n > 1 ? -100.0f : 100.0f;
      float lo = 0, hi = 0;
      min_max(h.data(), n, lo, hi);
      EXPECT_EQ(lo, *std::min_element(h.begin(), h.end())) << "n " << n << " at " << at;
      EXPECT_EQ(hi, *std::max_element(h.begin(), h.end())) << "n " << n << " at " << at;
    }
  }
}

TEST(VectorOps, SmallProductsAndAxpyAreTheInOrderSums) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t M = 11, N = 37, K = 13;  // not multiples of the 8 / 16 blocks
  std::vector<float> A(M * K), B(K * N), C(M * N, 0.5f), want(M * N, 0.5f);
  for (float& v : A) v = normal(rng);
  for (float& v : B) v = normal(rng);
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      float c = want[static_cast<size_t>(m * N + n)];
      for (int64_t k = 0; k < K; ++k) {
        const float prod = A[static_cast<size_t>(m * K + k)] * B[static_cast<size_t>(k * N + n)];
        c = c + prod;
      }
      want[static_cast<size_t>(m * N + n)] = c;
    }
  }
  matmul_nn_accumulate_small(M, N, K, A.data(), K, B.data(), N, C.data(), N);
  EXPECT_EQ(C, want);  // the same chain per element: the same bits

  double dw = 0;
  for (int64_t i = 0; i < N; ++i) dw += static_cast<double>(A[static_cast<size_t>(i % (M * K))]) * static_cast<double>(B[static_cast<size_t>(i)]);
  EXPECT_NEAR(dot(A.data(), B.data(), N), dw, 1e-12 * std::abs(dw) + 1e-14);
  // Exactly: element i in lane i % 8 (blocks of 8), the lanes added in pairs, then the tail in order.
  double lane[8] = {};
  const int64_t n8 = N / 8 * 8;
  for (int64_t i = 0; i < n8; ++i) lane[i % 8] += static_cast<double>(A[static_cast<size_t>(i)]) * static_cast<double>(B[static_cast<size_t>(i)]);
  double tail = 0;
  for (int64_t i = n8; i < N; ++i) tail += static_cast<double>(A[static_cast<size_t>(i)]) * static_cast<double>(B[static_cast<size_t>(i)]);
  const double lanes = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
  EXPECT_EQ(dot(A.data(), B.data(), N), lanes + tail);

  // Double accumulators over float B: the same bits as one axpy per (m, k), for every row block.
  for (const int64_t Md : {1, 2, 5, 6, 7, 13}) {
    std::vector<double> Ad(static_cast<size_t>(Md * K)), Cd(static_cast<size_t>(Md * N), 0.25);
    for (double& v : Ad) v = static_cast<double>(normal(rng));
    std::vector<double> Cw(Cd);
    for (int64_t m = 0; m < Md; ++m) {
      for (int64_t k = 0; k < K; ++k) axpy(Ad[static_cast<size_t>(m * K + k)], B.data() + k * N, Cw.data() + m * N, N);
    }
    matmul_nn_accumulate_small(Md, N, K, Ad.data(), K, B.data(), N, Cd.data(), N);
    EXPECT_EQ(Cd, Cw) << Md << " rows";
  }

  std::vector<double> y(N, 1.0), yw(N, 1.0);
  axpy(0.25, B.data(), y.data(), N);
  for (int64_t i = 0; i < N; ++i) yw[static_cast<size_t>(i)] += 0.25 * static_cast<double>(B[static_cast<size_t>(i)]);
  EXPECT_EQ(y, yw);
}

// Long products (K past one chunk of packed B rows) over a column window of a wider matrix (ldb > N,
// N past one block of packed columns and not a multiple of 16): still the in-order chain per element,
// in float and in double over float B.
TEST(VectorOps, SmallProductsOverWideMatricesAreTheInOrderSums) {
  std::mt19937 rng(4);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t M = 9, N = 601, K = 333, ldb = 700, first = 37;
  std::vector<float> A(static_cast<size_t>(M * K)), B(static_cast<size_t>(K * ldb)), C(static_cast<size_t>(M * N), 0.5f);
  for (float& v : A) v = normal(rng);
  for (float& v : B) v = normal(rng);
  std::vector<float> want(C);
  std::vector<double> Ad(static_cast<size_t>(M * K)), Cd(static_cast<size_t>(M * N), 0.25);
  for (double& v : Ad) v = static_cast<double>(normal(rng));
  std::vector<double> wantd(Cd);
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      float c = want[static_cast<size_t>(m * N + n)];
      double cd = wantd[static_cast<size_t>(m * N + n)];
      for (int64_t k = 0; k < K; ++k) {
        const float b = B[static_cast<size_t>(k * ldb + first + n)];
        const float prod = A[static_cast<size_t>(m * K + k)] * b;
        c = c + prod;
        cd += Ad[static_cast<size_t>(m * K + k)] * static_cast<double>(b);
      }
      want[static_cast<size_t>(m * N + n)] = c;
      wantd[static_cast<size_t>(m * N + n)] = cd;
    }
  }
  matmul_nn_accumulate_small(M, N, K, A.data(), K, B.data() + first, ldb, C.data(), N);
  EXPECT_EQ(C, want);
  matmul_nn_accumulate_small(M, N, K, Ad.data(), K, B.data() + first, ldb, Cd.data(), N);
  EXPECT_EQ(Cd, wantd);
}

// Every pass width (4, 8, 12, 16 combinations, padded) and the column tail give each output the
// in-order chain of separate multiplies and adds: the same bits as a scalar loop.
TEST(VectorOps, Int16RowCombinationsAreTheInOrderSums) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> code(-32767, 32767);
  for (const int64_t K : {5, 64}) {
    const int64_t n = 83, ldr = 90;  // not a multiple of 16; rows strided
    std::vector<int16_t> rows(static_cast<size_t>(K * ldr));
    for (auto& r : rows) r = static_cast<int16_t>(code(rng));
    for (const int64_t nc : {1, 3, 8, 9, 13, 16, 17, 33}) {
      std::vector<float> coef(static_cast<size_t>(nc * K)), out(static_cast<size_t>(nc * n), -1.0f);
      for (float& c : coef) c = normal(rng);
      combine_int16_rows(nc, K, n, coef.data(), rows.data(), ldr, out.data());
      std::vector<float> want(static_cast<size_t>(nc * n));
      for (int64_t c = 0; c < nc; ++c) {
        for (int64_t j = 0; j < n; ++j) {
          float v = 0;
          for (int64_t k = 0; k < K; ++k) {
            const float prod = coef[static_cast<size_t>(c * K + k)] * static_cast<float>(rows[static_cast<size_t>(k * ldr + j)]);
            v = v + prod;
          }
          want[static_cast<size_t>(c * n + j)] = v;
        }
      }
      EXPECT_EQ(out, want) << "K = " << K << ", " << nc << " combinations";
    }
  }
}

TEST(VectorOps, WeightedRowSumsMatchADoubleLoopAndIgnoreTheThreadCount) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t M = 13, K = 1300, N = 70;  // partial row, column and chunk blocks
  std::vector<float> A(static_cast<size_t>(M * K)), W(static_cast<size_t>(K * N));
  for (float& v : A) v = normal(rng);
  for (float& v : W) v = normal(rng);
  std::vector<double> c1(static_cast<size_t>(M * N)), c3(static_cast<size_t>(M * N));
  weighted_row_sums(M, K, N, A.data(), K, W.data(), N, c1.data(), 1);
  weighted_row_sums(M, K, N, A.data(), K, W.data(), N, c3.data(), 3);
  EXPECT_EQ(c1, c3);
  // The documented order, bit for bit: float sums of a * w (one multiply, one add) over each chunk
  // of kWeightedRowSumsChunk rows in order, each added to the double total in order.
  std::vector<double> chunked(static_cast<size_t>(M * N));
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      double total = 0;
      for (int64_t k0 = 0; k0 < K; k0 += kWeightedRowSumsChunk) {
        float part = 0;
        for (int64_t k = k0; k < std::min(K, k0 + kWeightedRowSumsChunk); ++k) {
          const float prod = A[static_cast<size_t>(m * K + k)] * W[static_cast<size_t>(k * N + n)];
          part = part + prod;
        }
        total += static_cast<double>(part);
      }
      chunked[static_cast<size_t>(m * N + n)] = total;
    }
  }
  EXPECT_EQ(c1, chunked);
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      double want = 0, size = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double t = static_cast<double>(A[static_cast<size_t>(m * K + k)]) * static_cast<double>(W[static_cast<size_t>(k * N + n)]);
        want += t;
        size += std::abs(t);
      }
      EXPECT_NEAR(c1[static_cast<size_t>(m * N + n)], want, 1e-6 * size);
    }
  }
}

}  // namespace
}  // namespace reslens::ops
