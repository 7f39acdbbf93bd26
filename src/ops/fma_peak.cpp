// measure_fma_peak (fma_peak.h): the dispatch to the loop of the GEMM's active instruction set, the
// portable loop, and the timing of all threads at once.
#include "ops/fma_peak.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "core/check.h"
#include "core/parallel.h"

namespace reslens::ops {
namespace detail {
namespace {

// The scalar GEMM path's operation (std::fma), 8 chains.
constexpr int kScalarChains = 8;

int64_t run_scalar(int64_t iterations) {
  float acc[kScalarChains];  // [8 chains], started apart, or the compiler merges them into one
  for (int c = 0; c < kScalarChains; ++c) acc[c] = static_cast<float>(c);
  for (int64_t i = 0; i < iterations; ++i)
    for (float& a : acc) a = std::fma(a, 1.0f, 1.0f);
  int64_t total = 0;
  for (int c = 0; c < kScalarChains; ++c) total += static_cast<int64_t>(acc[c]) - c;
  return total;
}

constexpr FmaLoop kScalarLoop{&run_scalar, kScalarChains, 1};

// Iterations of one timed run per thread: 2^21 x 16 chains x 16 lanes x 2 = 1.1 GFLOP, 5-10 ms on
// one AVX-512 core; well inside the 2^24 the count is exact for. Many short runs rather than a few
// long ones: on a machine shared with other work, the best run is one in which no thread lost its
// core, and short runs make such a window likelier (5 runs of 20 ms on 2 busy cores measured 127
// GFLOP/s where the quiet figure is ~400).
constexpr int64_t kIterations = int64_t{1} << 21;
constexpr int kTimedRuns = 20;

}  // namespace

FmaLoop fma_loop(GemmIsa isa) {
  const FmaLoop* loop = nullptr;
  if (isa == GemmIsa::avx512) loop = avx512_fma_loop();
  if (isa == GemmIsa::avx2) loop = avx2_fma_loop();
  return loop != nullptr ? *loop : kScalarLoop;
}

}  // namespace detail

FmaPeak measure_fma_peak(int n_threads) {
  if (n_threads <= 0) n_threads = hardware_threads();
  const detail::GemmIsa isa = detail::gemm_active_isa();
  const detail::FmaLoop loop = detail::fma_loop(isa);
  // The scalar loop is ~30x slower per iteration; fewer iterations keep its runs as short.
  const int64_t iterations = loop.lanes == 1 ? detail::kIterations / 16 : detail::kIterations;
  const int64_t fmas_per_thread = iterations * loop.chains * loop.lanes;
  std::vector<int64_t> counted(static_cast<size_t>(n_threads));  // [threads]: what each loop computed
  double best_seconds = 0;
  for (int rep = 0; rep <= detail::kTimedRuns; ++rep) {  // rep 0 warms up (and raises the clock)
    const auto t0 = std::chrono::steady_clock::now();
    parallel_for(n_threads, n_threads, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) counted[static_cast<size_t>(t)] = loop.run(iterations);
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (const int64_t c : counted)
      RESLENS_CHECK(c == fmas_per_thread, "measure_fma_peak: the loop counted a different number of FMAs");
    if (rep > 0 && (best_seconds == 0 || seconds < best_seconds)) best_seconds = seconds;
  }
  const int64_t flops_per_thread = 2 * fmas_per_thread;
  const double gflops = static_cast<double>(flops_per_thread) * n_threads / best_seconds / 1e9;
  return {gflops, n_threads, isa, flops_per_thread, best_seconds};
}

}  // namespace reslens::ops
