// int8_dot_tile's AVX-VNNI kernel (ops/int8_dot_kernels.h): the 256-bit, VEX-encoded vpdpbusd of
// Intel Alder Lake and later (cpuid flag avxvnni), for CPUs without AVX-512.
//
// The same trick as the AVX-512 VNNI kernel: vpdpbusd multiplies 4 unsigned bytes of the vector
// (value + 128) by 4 signed bytes of a row and adds the 4 products to a 32-bit lane; the row sums
// take the offset back out. A ymm register holds 8 rows x 4 columns (half of a packed 16-row block),
// so a 64-row tile is 8 registers per vector. vpdpbusd has a latency of about 5 cycles and two
// ports can start one each per cycle, so about 10 independent sums must be in flight: a pass covers
// kRows registers of rows (kRows * 8 rows) for kVectors vectors, kRows * kVectors accumulators, with
// the rows' kRows registers loaded once per step and shared by the vectors.
//
// Only functions marked RESLENS_INT8_AVX_VNNI use AVX2 / AVX-VNNI, and they run only after the
// dispatch has checked the CPU, so the file builds with the project's baseline flags.
#include "ops/int8_dot_kernels.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#define RESLENS_INT8_AVX_VNNI __attribute__((target("avx2,avxvnni")))

namespace reslens::ops::detail {
namespace {

constexpr int kRows = 2;     // ymm registers of rows per pass (8 rows each)
constexpr int kVectors = 6;  // vectors per pass: 12 accumulators + 2 rows + 1 vector of 16 registers

// acc += the products of x's unsigned and w's signed bytes, 4 per 32-bit lane; {vex}: the AVX-VNNI
// encoding, not AVX-512 VL's. One instruction, as in the AVX-512 kernel (GCC 12 copies the
// accumulator around the intrinsic's tied operand).
RESLENS_INT8_AVX_VNNI inline __m256i dpbusd_ymm(__m256i acc, __m256i x, __m256i w) {
  asm("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(x), "x"(w));
  return acc;
}

// out[v, 8 q .. 8 q + 7] for the NV vectors xs[v] and the ymm rows q0 <= q < q0 + kRows of the tile
// whose packed blocks start at `base` (ymm q: half q % 2 of block q / 2).
template <int NV>
RESLENS_INT8_AVX_VNNI void pass_avx_vnni(const Int8Rows& rows, int64_t tile, int q0, const uint8_t* xs,
                                         int32_t* out) {
  const int64_t groups = rows.k_pad / 4;
  const int8_t* base = rows.packed.data() + tile * 4 * groups * 64;
  const int8_t* w_at[kRows];  // [kRows] the first step's 8 x 4 bytes of each register of rows
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) w_at[r] = base + ((q0 + r) / 2) * groups * 64 + ((q0 + r) % 2) * 32;
  __m256i acc[static_cast<size_t>(NV * kRows)];  // [NV][kRows]
#pragma GCC unroll 32
  for (int e = 0; e < NV * kRows; ++e) acc[e] = _mm256_setzero_si256();
  for (int64_t g = 0; g < groups; ++g) {
    __m256i w[kRows];  // [kRows] 8 rows x 4 columns each
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) w[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w_at[r] + g * 64));
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      int32_t four = 0;
      __builtin_memcpy(&four, xs + v * rows.k_pad + g * 4, 4);
      const __m256i x = _mm256_set1_epi32(four);
#pragma GCC unroll 8
      for (int r = 0; r < kRows; ++r) acc[v * kRows + r] = dpbusd_ymm(acc[v * kRows + r], x, w[r]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) {
    const int64_t row0 = tile * 64 + (q0 + r) * 8;
    const __m256i fix = _mm256_slli_epi32(  // 128 * row sum
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows.row_sum.data() + row0)), 7);
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + v * 64 + (q0 + r) * 8),
                          _mm256_sub_epi32(acc[v * kRows + r], fix));
    }
  }
}

template <int NV>
RESLENS_INT8_AVX_VNNI void vectors_avx_vnni(const Int8Rows& rows, int64_t tile, const uint8_t* xs, int32_t* out) {
  for (int q0 = 0; q0 < 8; q0 += kRows) pass_avx_vnni<NV>(rows, tile, q0, xs, out);
}

// The last m < kVectors vectors.
template <int NV>
RESLENS_INT8_AVX_VNNI void rest_avx_vnni(const Int8Rows& rows, int64_t tile, const uint8_t* xs, int64_t m,
                                         int32_t* out) {
  if constexpr (NV > 0) {
    if (m == NV) return vectors_avx_vnni<NV>(rows, tile, xs, out);
    rest_avx_vnni<NV - 1>(rows, tile, xs, m, out);
  }
}

RESLENS_INT8_AVX_VNNI void tile_avx_vnni(const Int8Rows& rows, int64_t tile, const uint8_t* xs, int64_t m,
                                         int32_t* out) {
  int64_t v = 0;
  for (; v + kVectors <= m; v += kVectors) vectors_avx_vnni<kVectors>(rows, tile, xs + v * rows.k_pad, out + v * 64);
  rest_avx_vnni<kVectors - 1>(rows, tile, xs + v * rows.k_pad, m - v, out + v * 64);
}

}  // namespace

Int8TileFn int8_tile_avx_vnni() { return &tile_avx_vnni; }

}  // namespace reslens::ops::detail

#else

namespace reslens::ops::detail {
Int8TileFn int8_tile_avx_vnni() { return nullptr; }
}  // namespace reslens::ops::detail

#endif
