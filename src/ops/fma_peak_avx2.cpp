// The AVX2 + FMA peak loop (fma_peak.h): 12 ymm accumulators, acc = fma(acc, 1, 1). An FMA latency of
// 4-5 cycles on 2 ports needs 8-10 independent chains; 12 plus the constant fit the 16 registers.
//
// Only functions marked RESLENS_AVX2 use AVX2 / FMA, and they run only after the caller has checked
// the CPU (gemm_active_isa()), so the file builds with the project's baseline flags.
#include "ops/fma_peak.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#define RESLENS_AVX2 __attribute__((target("avx2,fma")))

namespace reslens::ops::detail {
namespace {

constexpr int kChains = 12;

RESLENS_AVX2 int64_t run_avx2(int64_t iterations) {
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256 acc[kChains];  // [12 chains][8 lanes]
#pragma GCC unroll 12
  for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(static_cast<float>(c));  // distinct, or GCC merges the chains
  for (int64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 12
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], one, one);
  }
  alignas(32) float lanes[8];  // [8]
  int64_t total = 0;
  for (int c = 0; c < kChains; ++c) {
    _mm256_store_ps(lanes, acc[c]);
    for (const float v : lanes) total += static_cast<int64_t>(v) - c;  // FMAs this lane ran
  }
  return total;
}

constexpr FmaLoop kLoop{&run_avx2, kChains, 8};

}  // namespace

const FmaLoop* avx2_fma_loop() { return &kLoop; }

}  // namespace reslens::ops::detail

#else

namespace reslens::ops::detail {
const FmaLoop* avx2_fma_loop() { return nullptr; }
}  // namespace reslens::ops::detail

#endif
