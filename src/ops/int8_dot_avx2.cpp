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
//   w * sign(x~) (vpsignb): |w| <= 127, because pack_int8_rows refuses the code -128 (the sketch's
//   codes are clamped to +-127: code_of in analysis/projection_sketch.cpp), so the negation never
//   wraps; x~ = 0 gives 0, as it should;
//   |x~| * (w sign(x~)) = x~ w, and a pair of them is at most 2 * 128 * 127 = 32512 < 32767.
// So vpmaddubsw never saturates, every step is exact, and the sum is the same int32 as the other
// kernels' (sum_i w_i (x_i - 128) directly: no row-sum correction). Four instructions per 32
// products (sign, maddubs, madd, add), against one vpdpbusd.
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
// accumulators, 2 registers per vector (x~ and |x~|), ones, a row register and a product. The whole
// tile for one vector (8 accumulators, 13 registers) does the fewest instructions per product
// (x~ and |x~| once per 8 registers of rows); 4 x 2 and 2 x 3 measured no faster here (bench_int8_dot).
constexpr int kRows = 8;
constexpr int kVectors = 1;

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
#pragma GCC unroll 32
  for (int e = 0; e < NV * kRows; ++e) acc[e] = _mm256_setzero_si256();
  for (int64_t g = 0; g < groups; ++g) {
    __m256i xv[static_cast<size_t>(NV)], ax[static_cast<size_t>(NV)];  // [NV] x~ and |x~|, 4 bytes broadcast
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      int32_t four = 0;
      __builtin_memcpy(&four, xs + v * rows.k_pad + g * 4, 4);
      xv[v] = _mm256_xor_si256(_mm256_set1_epi32(four), offset);
      ax[v] = _mm256_abs_epi8(xv[v]);
    }
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) {
      const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w_at[r] + g * 64));
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        const __m256i pairs = _mm256_maddubs_epi16(ax[v], _mm256_sign_epi8(w, xv[v]));  // [16] int16, exact
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
