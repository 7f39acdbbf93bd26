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

// A pass covers kRows registers of rows (kRows * 8 rows) for kVectors vectors: kRows * kVectors
// accumulators, 2 registers per vector (n and |x~|), ones, a row register and a product. The whole
// tile for one vector (8 accumulators, 13 registers) does the fewest instructions per product
// (n and |x~| once per 8 registers of rows); 4 x 2 and 2 x 3 measured no faster here (bench_int8_dot).
constexpr int kRows = 8;
constexpr int kVectors = 1;

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

// out[v, 8 q .. 8 q + 7] for the NV vectors xs[v] and the ymm rows q0 <= q < q0 + kRows of the tile
// (ymm q: half q % 2 of packed block q / 2).
template <int NV>
RESLENS_INT8_AVX2 void pass_avx2(const Int8Rows& rows, int64_t tile, int q0, const uint8_t* xs, int32_t* out) {
  const int64_t groups = rows.k_pad / 4;
  const int8_t* base = rows.packed.data() + tile * 4 * groups * 64;
  const int8_t* w_at[kRows];  // [kRows] the first step's 8 x 4 bytes of each register of rows
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) w_at[r] = base + ((q0 + r) / 2) * groups * 64 + ((q0 + r) % 2) * 32;
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i offset = _mm256_set1_epi8(static_cast<char>(0x80));
  __m256i acc[static_cast<size_t>(NV * kRows)];  // [NV][kRows]
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) {
    const __m256i start = _mm256_set1_epi32(negative_mass(xs + v * rows.k_pad, rows.k_pad));
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) acc[v * kRows + r] = start;
  }
  const __m256i zero = _mm256_setzero_si256();
  for (int64_t g = 0; g < groups; ++g) {
    __m256i neg[static_cast<size_t>(NV)], ax[static_cast<size_t>(NV)];  // [NV] n and |x~|, 4 bytes broadcast
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      int32_t four = 0;
      __builtin_memcpy(&four, xs + v * rows.k_pad + g * 4, 4);
      const __m256i xv = _mm256_xor_si256(_mm256_set1_epi32(four), offset);
      neg[v] = _mm256_cmpgt_epi8(zero, xv);
      ax[v] = _mm256_abs_epi8(xv);
    }
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) {
      const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w_at[r] + g * 64));
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        // |x~| (w XOR n): pairs in [-32768, 32258], exact (above).
        const __m256i pairs = _mm256_maddubs_epi16(ax[v], _mm256_xor_si256(w, neg[v]));  // [16] int16
        acc[v * kRows + r] = _mm256_add_epi32(acc[v * kRows + r], _mm256_madd_epi16(pairs, ones));
      }
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + v * 64 + (q0 + r) * 8), acc[v * kRows + r]);
  }
}

template <int NV>
RESLENS_INT8_AVX2 void vectors_avx2(const Int8Rows& rows, int64_t tile, const uint8_t* xs, int32_t* out) {
  for (int q0 = 0; q0 < 8; q0 += kRows) pass_avx2<NV>(rows, tile, q0, xs, out);
}

// The last m < kVectors vectors.
template <int NV>
RESLENS_INT8_AVX2 void rest_avx2(const Int8Rows& rows, int64_t tile, const uint8_t* xs, int64_t m, int32_t* out) {
  if constexpr (NV > 0) {
    if (m == NV) return vectors_avx2<NV>(rows, tile, xs, out);
    rest_avx2<NV - 1>(rows, tile, xs, m, out);
  }
}

RESLENS_INT8_AVX2 void tile_avx2(const Int8Rows& rows, int64_t tile, const uint8_t* xs, int64_t m, int32_t* out) {
  int64_t v = 0;
  for (; v + kVectors <= m; v += kVectors) vectors_avx2<kVectors>(rows, tile, xs + v * rows.k_pad, out + v * 64);
  rest_avx2<kVectors - 1>(rows, tile, xs + v * rows.k_pad, m - v, out + v * 64);
}

}  // namespace

Int8TileFn int8_tile_avx2() { return &tile_avx2; }

}  // namespace reslens::ops::detail

#else

namespace reslens::ops::detail {
Int8TileFn int8_tile_avx2() { return nullptr; }
}  // namespace reslens::ops::detail

#endif
