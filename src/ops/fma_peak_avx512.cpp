// The AVX-512 FMA peak loop (fma_peak.h): 16 zmm accumulators, acc = fma(acc, 1, 1). Sapphire Rapids
// and Zen 4 have an FMA latency of 4 cycles and 2 ports, so 8 independent chains keep both busy;
// 16 leave margin and still fit the 32 registers with the constant.
//
// Only functions marked RESLENS_AVX512 use AVX-512, and they run only after the caller has checked
// the CPU (gemm_active_isa()), so the file builds with the project's baseline flags.
#include "ops/fma_peak.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#define RESLENS_AVX512 __attribute__((target("avx512f,avx2,fma")))

namespace reslens::ops::detail {
namespace {

constexpr int kChains = 16;

RESLENS_AVX512 int64_t run_avx512(int64_t iterations) {
  const __m512 one = _mm512_set1_ps(1.0f);
  __m512 acc[kChains];  // [16 chains][16 lanes]
#pragma GCC unroll 16
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(static_cast<float>(c));  // distinct, or GCC merges the chains
  for (int64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 16
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], one, one);
  }
  alignas(64) float lanes[16];  // [16]
  int64_t total = 0;
  for (int c = 0; c < kChains; ++c) {
    _mm512_store_ps(lanes, acc[c]);
    for (const float v : lanes) total += static_cast<int64_t>(v) - c;  // FMAs this lane ran
  }
  return total;
}

constexpr FmaLoop kLoop{&run_avx512, kChains, 16};

}  // namespace

const FmaLoop* avx512_fma_loop() { return &kLoop; }

}  // namespace reslens::ops::detail

#else

namespace reslens::ops::detail {
const FmaLoop* avx512_fma_loop() { return nullptr; }
}  // namespace reslens::ops::detail

#endif
