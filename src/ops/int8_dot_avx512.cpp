// int8_dot_tile's AVX-512 VNNI kernel (ops/int8_dot_kernels.h).
//
// VNNI (vpdpbusd) multiplies 4 unsigned bytes by 4 signed bytes and adds the 4 products to a 32-bit
// lane. A packed block holds 16 rows x 4 columns, so one instruction advances 16 rows of one vector
// by 4 columns: the vector's 4 bytes are broadcast to every lane. A tile of 64 rows and 6 vectors
// keeps 24 accumulators in registers. The vectors are offset by +128 to be unsigned; the row sums
// take the offset back out. Integer sums are exact, so every kernel agrees bit for bit.
//
// Only functions marked RESLENS_INT8_AVX512 use AVX-512, and they run only after the dispatch has
// checked the CPU, so the file builds with the project's baseline flags.
#include "ops/int8_dot_kernels.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#define RESLENS_INT8_AVX512 __attribute__((target("avx512f,avx512bw,avx512vnni")))

namespace reslens::ops::detail {
namespace {

// acc += the products of x's unsigned and w's signed bytes, 4 per lane. Written as one instruction:
// GCC 12 copies the accumulator around the intrinsic's tied operand (and spills 24 of them).
RESLENS_INT8_AVX512 inline __m512i dpbusd_zmm(__m512i acc, __m512i x, __m512i w) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(x), "v"(w));
  return acc;
}

// NV vectors x 64 rows: 4 * NV accumulators, each 16 rows of one vector.
template <int NV>
RESLENS_INT8_AVX512 void tile_group_avx512(const Int8Rows& rows, int64_t tile, const uint8_t* xs, int32_t* out) {
  const int64_t groups = rows.k_pad / 4;
  const int8_t* base = rows.packed.data() + tile * 4 * groups * 64;  // 4 blocks of 16 rows
  const int8_t* b0 = base;
  const int8_t* b1 = base + groups * 64;
  const int8_t* b2 = base + 2 * groups * 64;
  const int8_t* b3 = base + 3 * groups * 64;
  // One flat array, every loop unrolled, so that the accumulators stay in registers.
  __m512i acc[static_cast<size_t>(4 * NV)];  // [NV][4 blocks]
#pragma GCC unroll 32
  for (int e = 0; e < 4 * NV; ++e) acc[e] = _mm512_setzero_si512();
  for (int64_t g = 0; g < groups; ++g) {
    const __m512i w0 = _mm512_loadu_si512(b0 + g * 64), w1 = _mm512_loadu_si512(b1 + g * 64);
    const __m512i w2 = _mm512_loadu_si512(b2 + g * 64), w3 = _mm512_loadu_si512(b3 + g * 64);
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      int32_t four = 0;
      __builtin_memcpy(&four, xs + v * rows.k_pad + g * 4, 4);
      const __m512i x = _mm512_set1_epi32(four);
      acc[4 * v + 0] = dpbusd_zmm(acc[4 * v + 0], x, w0);
      acc[4 * v + 1] = dpbusd_zmm(acc[4 * v + 1], x, w1);
      acc[4 * v + 2] = dpbusd_zmm(acc[4 * v + 2], x, w2);
      acc[4 * v + 3] = dpbusd_zmm(acc[4 * v + 3], x, w3);
    }
  }
#pragma GCC unroll 4
  for (int b = 0; b < 4; ++b) {
    // 128 * sum (the maskz form: GCC 12 warns about the unmasked one's undefined source once inlined)
    const __m512i fix = _mm512_maskz_slli_epi32(static_cast<__mmask16>(0xFFFF),
                                                _mm512_loadu_si512(rows.row_sum.data() + tile * 64 + b * 16), 7);
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) _mm512_storeu_si512(out + v * 64 + b * 16, _mm512_sub_epi32(acc[4 * v + b], fix));
  }
}

RESLENS_INT8_AVX512 void tile_avx512_vnni(const Int8Rows& rows, int64_t tile, const uint8_t* xs, int64_t m,
                                          int32_t* out) {
  constexpr int64_t kGroup = 6;
  int64_t v = 0;
  for (; v + kGroup <= m; v += kGroup) tile_group_avx512<6>(rows, tile, xs + v * rows.k_pad, out + v * 64);
  const uint8_t* x = xs + v * rows.k_pad;
  int32_t* o = out + v * 64;
  switch (m - v) {
    case 5: tile_group_avx512<5>(rows, tile, x, o); break;
    case 4: tile_group_avx512<4>(rows, tile, x, o); break;
    case 3: tile_group_avx512<3>(rows, tile, x, o); break;
    case 2: tile_group_avx512<2>(rows, tile, x, o); break;
    case 1: tile_group_avx512<1>(rows, tile, x, o); break;
    default: break;
  }
}

}  // namespace

Int8TileFn int8_tile_avx512_vnni() { return &tile_avx512_vnni; }

}  // namespace reslens::ops::detail

#else

namespace reslens::ops::detail {
Int8TileFn int8_tile_avx512_vnni() { return nullptr; }
}  // namespace reslens::ops::detail

#endif
