// The machine's float32 FMA peak, measured: the bound every GEMM figure of `reslens bench` is read
// against. A BLAS sgemm is no such bound: Debian's OpenBLAS 0.3.21 does not know recent CPUs and
// falls back to old kernels (on a Sapphire Rapids Xeon it runs its SSE "Prescott" code at a third of
// what reslens's own GEMM reaches), so a percentage of it can exceed 100%.
//
// The measurement runs a loop of independent FMA chains held in registers (no loads, no stores) on
// each of n threads at once, with the widest instruction set the GEMM dispatch uses now
// (gemm_active_isa(): AVX-512, AVX2 + FMA, or the scalar std::fma path), so it is the rate the GEMM's
// own instructions could reach on those threads.
#pragma once

#include <cstdint>

#include "ops/gemm.h"

namespace reslens::ops {

/// Float32 FMA peak of n_threads threads running at once (n_threads <= 0: all hardware threads).
struct FmaPeak {
  double gflops = 0;             ///< 2 x FMAs x lanes per second, all threads together (best run)
  int threads = 0;               ///< threads that ran the loop
  detail::GemmIsa isa{};         ///< instruction set of the loop (the GEMM's active one)
  int64_t flops_per_thread = 0;  ///< floating-point operations one thread ran in one timed run
  double seconds = 0;            ///< wall time of the best timed run, all threads started to all done
};

/// Runs the loop (5-10 ms per run, a warm-up and 20 timed runs) and returns the best rate.
/// Each run's flop count is checked against the values the chains computed (see detail::FmaLoop);
/// a mismatch is an InternalError.
FmaPeak measure_fma_peak(int n_threads);

namespace detail {

/// One thread's register-resident FMA loop for an instruction set. run(iterations) runs `chains`
/// independent chains of `lanes` floats, chain c starting at c (distinct starts, or the compiler
/// computes one chain for all: GCC 12 did), each acc = fma(acc, 1, 1) once per iteration, and returns
/// the sum over every lane of every chain of (final value - start): each FMA adds exactly 1 while the
/// value stays below 2^24, so for iterations <= kMaxExactFmaIterations the result is the number of
/// FMA lane operations executed, chains x lanes x iterations. flops = 2 x that.
struct FmaLoop {
  int64_t (*run)(int64_t iterations) = nullptr;
  int chains = 0;  ///< independent accumulators (enough to cover the FMA latency on 2 ports)
  int lanes = 0;   ///< floats per accumulator: 16 (zmm), 8 (ymm), 1 (scalar)
};

/// The loop for `isa` (the scalar loop when this build lacks that path).
FmaLoop fma_loop(GemmIsa isa);

/// Per instruction set; nullptr when this build has no such path (non-x86 targets). The caller checks
/// that the CPU supports it.
const FmaLoop* avx512_fma_loop();
const FmaLoop* avx2_fma_loop();

/// Largest iteration count whose result run() counts exactly (float integers are exact to 2^24).
inline constexpr int64_t kMaxExactFmaIterations = (int64_t{1} << 24) - 64;

}  // namespace detail
}  // namespace reslens::ops
