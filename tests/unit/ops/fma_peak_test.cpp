// ops::measure_fma_peak: the loop runs the FMAs it claims (each chain's value counts them), the rate
// follows the GEMM's instruction set and is the count over the time (never above what a core can
// issue). No check here compares timings that other work can move: speed is a benchmark's business.
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

// Only checks that other work on the machine cannot fail (it can only slow the loop down): the loop
// may not exceed what any x86 core can issue, 2 FMA ports x lanes x 2 flops at 6.5 GHz (GCC 12 once
// merged the 16 chains of identical start into one, which measured 3x that on one 2.1 GHz Xeon
// core), and the reported rate is every thread's count over the wall time of the run. How the peak
// compares with the GEMM is a benchmark's question (reslens bench prints both), not a test's.
TEST(FmaPeak, TheRateIsTheLoopsOwn) {
  for (const GemmIsa isa : runnable_isas()) {
    detail::set_gemm_isa_limit(isa);
    const detail::FmaLoop loop = detail::fma_loop(isa);
    const double ceiling = 2.0 * loop.lanes * 2.0 * 6.5;
    EXPECT_LE(own_rate(loop), ceiling) << "isa " << static_cast<int>(isa) << ": faster than any core";
    for (const int threads : {1, 2}) {
      const FmaPeak p = measure_fma_peak(threads);
      EXPECT_EQ(p.threads, threads);
      EXPECT_DOUBLE_EQ(p.gflops, static_cast<double>(p.flops_per_thread) * threads / p.seconds / 1e9);
      EXPECT_LE(p.gflops, ceiling * threads) << "isa " << static_cast<int>(isa) << ", " << threads << " threads";
    }
  }
  detail::set_gemm_isa_limit(GemmIsa::avx512);
}

}  // namespace
}  // namespace reslens::ops
