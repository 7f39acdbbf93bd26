// int8_dot_tile's AVX2 kernel (ops/int8_dot_kernels.h), for CPUs with neither AVX-512 VNNI nor
// AVX-VNNI. A ymm register holds 8 rows x 4 columns (half of a packed 16-row block), so a 64-row tile
// is 8 registers per vector.
//
// AVX2 has no byte dot product into 32 bits; vpmaddubsw multiplies unsigned by signed bytes and adds
// adjacent pairs into a *saturating* int16, and vpmaddwd by ones then adds those pairs into int32.
// With the +128 offset of the other kernels (unsigned x up to 255, times codes up to 127) a pair
// could reach 2 * 255 * 127 = 64770 and saturate, so the signs are moved instead:
//   x~ = x - 128 (the vector's signed value, a byte XOR 0x80), in [-128, 127];
//   |x~| <= 128 (vpabsb, read as unsigned: abs(-128) = 0x80 = 128 is right as unsigned);
//   w XOR n, where n = -1 (all ones) where x~ < 0 and 0 elsewhere: w itself where x~ >= 0, and the
//   one's complement -w - 1 where x~ < 0, in [-128, 126] (pack_int8_rows refuses the code -128);
//   |x~| (w XOR n) = x~ w where x~ >= 0, and x~ w - |x~| where x~ < 0.
// So each row's sum of products is sum_i x~_i w_i minus the vector's negative mass
// M = sum_{x~_i < 0} |x~_i|, which does not depend on the row: the accumulators start at M
// (negative_mass, once per vector and tile) and end at sum_i x~_i w_i exactly. A pair is at most
// 2 * 127 * 127 = 32258 and at least 2 * 128 * (-128) = -32768, so vpmaddubsw never saturates and
// every step is exact: the same int32 as the other kernels' (sum_i w_i (x_i - 128)).
// Four instructions per 32 products (xor, maddubs, madd, add), against one vpdpbusd. The XOR
// replaced vpsignb (w * sign(x~)), which competed with the two multiplies for the vector units:
// 1.2-1.5x on an AMD Zen 3 host (docs/benchmarks.md, stop 38).
//
// Only functions marked RESLENS_INT8_AVX2 use AVX2, and they run only after the dispatch has checked
// the CPU, so the file builds with the project's baseline flags.
#include "ops/int8_dot_kernels.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#define RESLENS_INT8_AVX2 __attribute__((target("avx2")))

namespace reslens::ops::detail {
namespace {

// The negative mass M = sum of |x~| over the n bytes x (value + 128) where x~ = x - 128 < 0: what
// the products |x~| (w XOR n) take away from each row's sum (above). At most 128 n.
RESLENS_INT8_AVX2 int32_t negative_mass(const uint8_t* x, int64_t n) {
  const __m256i offset = _mm256_set1_epi8(static_cast<char>(0x80));
  const __m256i zero = _mm256_setzero_si256();
  __m256i sums = zero;  // [4] int64
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i xv = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)), offset);
    const __m256i mass = _mm256_and_si256(_mm256_abs_epi8(xv), _mm256_cmpgt_epi8(zero, xv));
    sums = _mm256_add_epi64(sums, _mm256_sad_epu8(mass, zero));
  }
  int64_t lanes[4];
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(lanes), sums);
  int64_t total = lanes[0] + lanes[1] + lanes[2] + lanes[3];
  for (; i < n; ++i) total += x[i] < 128 ? 128 - x[i] : 0;
  return static_cast<int32_t>(total);
}

// out[8 q .. 8 q + 7] for the vector x and the tile's 8 ymm registers of rows q (ymm q: half q % 2 of
// packed block q / 2). The whole tile for one vector does the fewest instructions per product: 8
// accumulators, n and |x~| once per 8 registers of rows, ones, a row register and a product (13
// registers); 4 registers of rows x 2 vectors and 2 x 3 measured no faster here (bench_int8_dot).
RESLENS_INT8_AVX2 void vector_avx2(const Int8Rows& rows, int64_t tile, const uint8_t* x, int32_t* out) {
  constexpr int kRegs = 8;
  const int64_t groups = rows.k_pad / 4;
  const int8_t* base = rows.packed.data() + tile * 4 * groups * 64;
  const int8_t* w_at[kRegs];  // [kRegs] the first step's 8 x 4 bytes of each register of rows
#pragma GCC unroll 8
  for (int q = 0; q < kRegs; ++q) w_at[q] = base + (q / 2) * groups * 64 + (q % 2) * 32;
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i offset = _mm256_set1_epi8(static_cast<char>(0x80));
  const __m256i zero = _mm256_setzero_si256();
  __m256i acc[kRegs];
  const __m256i start = _mm256_set1_epi32(negative_mass(x, rows.k_pad));
#pragma GCC unroll 8
  for (int q = 0; q < kRegs; ++q) acc[q] = start;
  for (int64_t g = 0; g < groups; ++g) {
    int32_t four = 0;  // x's 4 bytes of this step, broadcast
    __builtin_memcpy(&four, x + g * 4, 4);
    const __m256i xv = _mm256_xor_si256(_mm256_set1_epi32(four), offset);
    const __m256i neg = _mm256_cmpgt_epi8(zero, xv), ax = _mm256_abs_epi8(xv);  // n and |x~|
#pragma GCC unroll 8
    for (int q = 0; q < kRegs; ++q) {
      const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w_at[q] + g * 64));
      // |x~| (w XOR n): pairs in [-32768, 32258], exact (above).
      const __m256i pairs = _mm256_maddubs_epi16(ax, _mm256_xor_si256(w, neg));  // [16] int16
      acc[q] = _mm256_add_epi32(acc[q], _mm256_madd_epi16(pairs, ones));
    }
  }
#pragma GCC unroll 8
  for (int q = 0; q < kRegs; ++q) _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + q * 8), acc[q]);
}

RESLENS_INT8_AVX2 void tile_avx2(const Int8Rows& rows, int64_t tile, const uint8_t* xs, int64_t m, int32_t* out) {
  for (int64_t v = 0; v < m; ++v) vector_avx2(rows, tile, xs + v * rows.k_pad, out + v * 64);
}

}  // namespace

Int8TileFn int8_tile_avx2() { return &tile_avx2; }

}  // namespace reslens::ops::detail

#else

namespace reslens::ops::detail {
Int8TileFn int8_tile_avx2() { return nullptr; }
}  // namespace reslens::ops::detail

#endif
