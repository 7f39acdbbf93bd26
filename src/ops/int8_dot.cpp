// int8_dot_tile: the AVX-512 VNNI kernel and the portable loops (ops/int8_dot.h).
//
// VNNI (vpdpbusd) multiplies 4 unsigned bytes by 4 signed bytes and adds the 4 products to a 32-bit
// lane. A packed block holds 16 rows x 4 columns, so one instruction advances 16 rows of one vector
// by 4 columns: the vector's 4 bytes are broadcast to every lane. A tile of 64 rows and 6 vectors
// keeps 24 accumulators in registers. The vectors are offset by +128 to be unsigned; the row sums
// take the offset back out. Integer sums are exact, so both paths agree bit for bit.
#include "ops/int8_dot.h"

#include <algorithm>

#include "ops/gemm.h"
#include "reslens/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RESLENS_HAVE_VNNI_KERNEL 1
#define RESLENS_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))
#endif

namespace reslens::ops {

Int8Rows pack_int8_rows(const int8_t* codes, int64_t n, int64_t k, int64_t ld) {
  if (k > 66000) throw InvalidArgument("pack_int8_rows: rows longer than 66000 could overflow int32 sums");
  Int8Rows r;
  r.n = n;
  r.k = k;
  r.n_pad = (n + Int8Rows::kTileRows - 1) / Int8Rows::kTileRows * Int8Rows::kTileRows;
  r.k_pad = (k + 3) / 4 * 4;
  r.packed.assign(static_cast<size_t>(r.n_pad * r.k_pad), 0);
  r.row_sum.assign(static_cast<size_t>(r.n_pad), 0);
  const int64_t groups = r.k_pad / 4;
  for (int64_t j = 0; j < n; ++j) {
    int32_t sum = 0;
    int8_t* block = r.packed.data() + (j / 16) * groups * 64 + (j % 16) * 4;
    for (int64_t i = 0; i < k; ++i) {
      const int8_t c = codes[j * ld + i];
      block[(i / 4) * 64 + i % 4] = c;
      sum += c;
    }
    r.row_sum[static_cast<size_t>(j)] = sum;
  }
  return r;
}

namespace {

// rows[tile*64 + t, :] . (xs[v, :] - 128), one element at a time.
void dot_tile_portable(const Int8Rows& rows, int64_t tile, const uint8_t* xs, int64_t m, int32_t* out) {
  const int64_t groups = rows.k_pad / 4;
  for (int64_t v = 0; v < m; ++v) {
    const uint8_t* x = xs + v * rows.k_pad;
    for (int64_t t = 0; t < Int8Rows::kTileRows; ++t) {
      const int64_t j = tile * Int8Rows::kTileRows + t;
      const int8_t* block = rows.packed.data() + (j / 16) * groups * 64 + (j % 16) * 4;
      int32_t acc = 0;
      for (int64_t g = 0; g < groups; ++g) {
        const int8_t* b = block + g * 64;
        for (int64_t r = 0; r < 4; ++r) acc += static_cast<int32_t>(b[r]) * static_cast<int32_t>(x[g * 4 + r]);
      }
      out[v * Int8Rows::kTileRows + t] = acc - 128 * rows.row_sum[static_cast<size_t>(j)];
    }
  }
}

#ifdef RESLENS_HAVE_VNNI_KERNEL
// NV vectors x 64 rows: 4 * NV accumulators, each 16 rows of one vector.
// acc += the products of x's unsigned and w's signed bytes, 4 per lane. Written as one instruction:
// GCC 12 copies the accumulator around the intrinsic's tied operand (and spills 24 of them).
RESLENS_VNNI inline __m512i dpbusd(__m512i acc, __m512i x, __m512i w) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(x), "v"(w));
  return acc;
}

template <int NV>
RESLENS_VNNI void dot_tile_vnni_group(const Int8Rows& rows, int64_t tile, const uint8_t* xs, int32_t* out) {
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
      acc[4 * v + 0] = dpbusd(acc[4 * v + 0], x, w0);
      acc[4 * v + 1] = dpbusd(acc[4 * v + 1], x, w1);
      acc[4 * v + 2] = dpbusd(acc[4 * v + 2], x, w2);
      acc[4 * v + 3] = dpbusd(acc[4 * v + 3], x, w3);
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

RESLENS_VNNI void dot_tile_vnni(const Int8Rows& rows, int64_t tile, const uint8_t* xs, int64_t m, int32_t* out) {
  constexpr int64_t kGroup = 6;
  int64_t v = 0;
  for (; v + kGroup <= m; v += kGroup) dot_tile_vnni_group<6>(rows, tile, xs + v * rows.k_pad, out + v * 64);
  const uint8_t* x = xs + v * rows.k_pad;
  int32_t* o = out + v * 64;
  switch (m - v) {
    case 5: dot_tile_vnni_group<5>(rows, tile, x, o); break;
    case 4: dot_tile_vnni_group<4>(rows, tile, x, o); break;
    case 3: dot_tile_vnni_group<3>(rows, tile, x, o); break;
    case 2: dot_tile_vnni_group<2>(rows, tile, x, o); break;
    case 1: dot_tile_vnni_group<1>(rows, tile, x, o); break;
    default: break;
  }
}

bool cpu_has_vnni() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vnni");
  return has;
}
#endif

}  // namespace

namespace detail {
bool int8_dot_uses_vnni() {
#ifdef RESLENS_HAVE_VNNI_KERNEL
  return cpu_has_vnni() && gemm_active_isa() == GemmIsa::avx512;
#else
  return false;
#endif
}
}  // namespace detail

void int8_dot_tile(const Int8Rows& rows, int64_t tile, const uint8_t* xs, int64_t m, int32_t* out) {
#ifdef RESLENS_HAVE_VNNI_KERNEL
  if (detail::int8_dot_uses_vnni()) {
    dot_tile_vnni(rows, tile, xs, m, out);
    return;
  }
#endif
  dot_tile_portable(rows, tile, xs, m, out);
}

}  // namespace reslens::ops
