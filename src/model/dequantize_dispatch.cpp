// The public conversions of dequantize.h: each runs the kernel of the best instruction set the CPU
// supports (under the test hook's cap). The choice is made once; a call then costs one atomic load
// and an indirect call, small beside even one 256-value block.
#include <algorithm>
#include <atomic>

#include "model/dequantize.h"
#include "model/dequantize_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace reslens {
namespace detail {
namespace {

constexpr DequantizeKernels kScalar = {scalar::f16,  scalar::bf16, scalar::q8_0, scalar::q4_0,  scalar::q4_1,
                                       scalar::q5_0, scalar::q5_1, scalar::q2_k, scalar::q3_k,  scalar::q4_k,
                                       scalar::q5_k, scalar::q6_k, scalar::iq4_nl, scalar::iq4_xs};

std::atomic<int> g_isa_limit{static_cast<int>(DequantizeIsa::avx512)};

// Both SIMD paths convert fp16 scales with F16C, which clang 14's __builtin_cpu_supports cannot
// name, so it is read from CPUID (leaf 1, ECX). Every CPU with AVX2 has had it, but a hypervisor
// may hide it.
bool cpu_has_f16c() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
#else
  return false;
#endif
}

DequantizeIsa detect_best_isa() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (!cpu_has_f16c()) return DequantizeIsa::scalar;
  if (avx512_dequantize_kernels() != nullptr && __builtin_cpu_supports("avx512f") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
    return DequantizeIsa::avx512;
  if (avx2_dequantize_kernels() != nullptr && __builtin_cpu_supports("avx2")) return DequantizeIsa::avx2;
#endif
  return DequantizeIsa::scalar;
}

const DequantizeKernels& kernels() {
  switch (dequantize_active_isa()) {
    case DequantizeIsa::avx512:
      return *avx512_dequantize_kernels();
    case DequantizeIsa::avx2:
      return *avx2_dequantize_kernels();
    case DequantizeIsa::scalar:
      break;
  }
  return kScalar;
}

}  // namespace

DequantizeIsa dequantize_best_isa() {
  static const DequantizeIsa best = detect_best_isa();
  return best;
}

void set_dequantize_isa_limit(DequantizeIsa limit) { g_isa_limit.store(static_cast<int>(limit)); }

DequantizeIsa dequantize_active_isa() {
  return static_cast<DequantizeIsa>(std::min(static_cast<int>(dequantize_best_isa()), g_isa_limit.load()));
}

}  // namespace detail

void dequantize_f16(float* out, std::span<const uint8_t> in, int64_t n) { detail::kernels().f16(out, in, n); }
void dequantize_bf16(float* out, std::span<const uint8_t> in, int64_t n) { detail::kernels().bf16(out, in, n); }
void dequantize_q8_0(float* out, std::span<const uint8_t> in, int64_t n) { detail::kernels().q8_0(out, in, n); }
void dequantize_q4_0(float* out, std::span<const uint8_t> in, int64_t n) { detail::kernels().q4_0(out, in, n); }
void dequantize_q4_1(float* out, std::span<const uint8_t> in, int64_t n) { detail::kernels().q4_1(out, in, n); }
void dequantize_q5_0(float* out, std::span<const uint8_t> in, int64_t n) { detail::kernels().q5_0(out, in, n); }
void dequantize_q5_1(float* out, std::span<const uint8_t> in, int64_t n) { detail::kernels().q5_1(out, in, n); }
void dequantize_q2_k(float* out, std::span<const uint8_t> in, int64_t n) { detail::kernels().q2_k(out, in, n); }
void dequantize_q3_k(float* out, std::span<const uint8_t> in, int64_t n) { detail::kernels().q3_k(out, in, n); }
void dequantize_q4_k(float* out, std::span<const uint8_t> in, int64_t n) { detail::kernels().q4_k(out, in, n); }
void dequantize_q5_k(float* out, std::span<const uint8_t> in, int64_t n) { detail::kernels().q5_k(out, in, n); }
void dequantize_q6_k(float* out, std::span<const uint8_t> in, int64_t n) { detail::kernels().q6_k(out, in, n); }
void dequantize_iq4_nl(float* out, std::span<const uint8_t> in, int64_t n) { detail::kernels().iq4_nl(out, in, n); }
void dequantize_iq4_xs(float* out, std::span<const uint8_t> in, int64_t n) { detail::kernels().iq4_xs(out, in, n); }

}  // namespace reslens
