// ops::measure_fma_peak: the loop runs the FMAs it claims (each chain's value counts them), the rate
// follows the GEMM's instruction set, and the GEMM itself never beats it by more than noise -- the
// property that makes it a bound, which OpenBLAS sgemm was not on a CPU it did not know.
#include "ops/fma_peak.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "ops/gemm.h"

namespace reslens::ops {
namespace {

using detail::GemmIsa;

std::vector<GemmIsa> runnable_isas() {
  std::vector<GemmIsa> isas = {GemmIsa::scalar};
  if (detail::gemm_best_isa() >= GemmIsa::avx2) isas.push_back(GemmIsa::avx2);
  if (detail::gemm_best_isa() >= GemmIsa::avx512) isas.push_back(GemmIsa::avx512);
  return isas;
}

// The value each loop computes is the number of FMA lane operations it ran: chains x lanes per
// iteration, for several iteration counts up to the largest one counted exactly.
TEST(FmaPeak, EveryLoopCountsTheFmasItRuns) {
  for (const GemmIsa isa : runnable_isas()) {
    const detail::FmaLoop loop = detail::fma_loop(isa);
    const int expected_lanes = isa == GemmIsa::avx512 ? 16 : isa == GemmIsa::avx2 ? 8 : 1;
    EXPECT_EQ(loop.lanes, expected_lanes) << static_cast<int>(isa);
    EXPECT_GE(loop.chains, 8) << "too few chains to hide the FMA latency on 2 ports";
    for (const int64_t it : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{12345}, int64_t{1} << 20})
      EXPECT_EQ(loop.run(it), it * loop.chains * loop.lanes) << static_cast<int>(isa) << " iterations " << it;
  }
  // The scalar loop is slow; only the SIMD ones are run up to the exact limit.
  const detail::FmaLoop best = detail::fma_loop(detail::gemm_best_isa());
  if (best.lanes > 1) {
    EXPECT_EQ(best.run(detail::kMaxExactFmaIterations), detail::kMaxExactFmaIterations * best.chains * best.lanes);
  }
}

TEST(FmaPeak, FollowsTheGemmsInstructionSet) {
  for (const GemmIsa isa : runnable_isas()) {
    detail::set_gemm_isa_limit(isa);
    const FmaPeak p = measure_fma_peak(1);
    EXPECT_EQ(p.isa, isa);
    EXPECT_EQ(p.threads, 1);
    EXPECT_GT(p.gflops, 0.0);
    const detail::FmaLoop loop = detail::fma_loop(isa);
    EXPECT_EQ(p.flops_per_thread % (2 * loop.chains * loop.lanes), 0);
  }
  detail::set_gemm_isa_limit(GemmIsa::avx512);
}

// Timing checks on a machine shared with other work: a busy core can lower any one measurement, in
// either term of a comparison, so each comparison is measured up to kTries times and holds if one try
// satisfies it. A real error (a rate 2-3x off) fails every try.
constexpr int kTries = 5;

// The loop's own rate, timed here on one thread (GFLOP/s, best of 10 after a warm-up).
double own_rate(const detail::FmaLoop& loop) {
  const int64_t iterations = loop.lanes == 1 ? int64_t{1} << 17 : int64_t{1} << 21;
  double own = 0;
  for (int rep = 0; rep < 11; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    const int64_t fmas = loop.run(iterations);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(fmas, iterations * loop.chains * loop.lanes);
    if (rep > 0) own = std::max(own, 2.0 * static_cast<double>(fmas) / s / 1e9);
  }
  return own;
}

// The rate is the loop's own: measure_fma_peak(n) may not exceed n times its one-thread rate (a
// driver that counted threads or runs twice would), and the loop itself may not exceed what any x86
// core can issue, 2 FMA ports x lanes x 2 flops at 6.5 GHz (GCC 12 once merged the 16 chains of
// identical start into one, which measured 3x that on one 2.1 GHz Xeon core).
TEST(FmaPeak, TheRateIsTheLoopsOwn) {
  for (const GemmIsa isa : runnable_isas()) {
    detail::set_gemm_isa_limit(isa);
    const detail::FmaLoop loop = detail::fma_loop(isa);
    const double ceiling = 2.0 * loop.lanes * 2.0 * 6.5;
    EXPECT_LE(own_rate(loop), ceiling) << "isa " << static_cast<int>(isa) << ": faster than any core";
    for (const int threads : {1, 2}) {
      double own = 0, peak = 0;
      for (int t = 0; t < kTries && (t == 0 || peak > 1.3 * threads * own); ++t) {
        own = own_rate(loop);
        const FmaPeak p = measure_fma_peak(threads);
        peak = p.gflops;
        // The rate is every thread's count over the wall time of one run in which all of them ran.
        EXPECT_EQ(p.threads, threads);
        EXPECT_DOUBLE_EQ(p.gflops, static_cast<double>(p.flops_per_thread) * threads / p.seconds / 1e9);
        own = std::max(own, own_rate(loop));
      }
      EXPECT_LE(peak, 1.3 * threads * own) << "isa " << static_cast<int>(isa) << ", " << threads << " threads";
    }
  }
  detail::set_gemm_isa_limit(GemmIsa::avx512);
}

// GFLOP/s of matmul_nt on a product that fits in L2 and is large enough for the 4 x 6 tiles to reach
// their best (M = 96, N = 384, K = 1024: A 384 KB, B 1.5 MB), best of 20 calls.
double gemm_gflops(int threads) {
  const int64_t M = 96, N = 384, K = 1024;
  std::vector<float> A(static_cast<size_t>(M * K), 0.5f), B(static_cast<size_t>(N * K), 0.25f);  // [M, K], [N, K]
  std::vector<float> C(static_cast<size_t>(M * N));                                             // [M, N]
  double best = 0;
  for (int rep = 0; rep < 21; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    matmul_nt(M, N, K, A.data(), K, B.data(), K, C.data(), N, threads);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (rep > 0) best = std::max(best, 2.0 * static_cast<double>(M * N * K) / s / 1e9);
  }
  return best;
}

// The peak bounds the GEMM that runs on the same instruction set and threads: 10% covers timer
// noise (with kTries, as above). A peak that counted too few FMAs, too many threads' worth of time, or
// ran a narrower loop than the GEMM would be exceeded. And the GEMM's tiles reach a good part of it
// (a loose floor, on one thread only: a 2-thread GEMM whose second thread lost its core waits for it
// at every call).
TEST(FmaPeak, BoundsTheGemm) {
  for (const GemmIsa isa : runnable_isas()) {
    if (isa == GemmIsa::scalar) continue;  // the scalar GEMM is far from any peak: nothing to learn
    detail::set_gemm_isa_limit(isa);
    for (const int threads : {1, 2}) {
      double gemm = 0, peak = 0;
      auto holds = [&] { return gemm <= 1.10 * peak && (threads > 1 || gemm >= 0.2 * peak); };
      for (int t = 0; t < kTries && (t == 0 || !holds()); ++t) {
        const double before = measure_fma_peak(threads).gflops;
        gemm = gemm_gflops(threads);
        peak = std::max(before, measure_fma_peak(threads).gflops);
      }
      EXPECT_LE(gemm, 1.10 * peak) << "isa " << static_cast<int>(isa) << ", " << threads << " threads: GEMM "
                                   << gemm << " GFLOP/s, peak " << peak;
      if (threads == 1) {
        EXPECT_GE(gemm, 0.2 * peak) << "isa " << static_cast<int>(isa);
      }
    }
  }
  detail::set_gemm_isa_limit(GemmIsa::avx512);
}

}  // namespace
}  // namespace reslens::ops
