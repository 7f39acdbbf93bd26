// AVX2 + FMA tile kernels, for CPUs without AVX-512. The 16 lanes of an output element (gemm.h) live in
// two ymm registers: "lo" holds lanes 0..7 (k mod 16 < 8), "hi" lanes 8..15. With 16 ymm registers a
// tile of RM x RN elements needs 2 * RM * RN accumulators, so tiles are small (2 x 3). The reduction
// starts with lo + hi, which is level 1 of the tree, then finishes 8 elements at a time.
//
// Only functions marked RESLENS_AVX2 use AVX2/FMA, and they run only after the driver has checked
// the CPU, so the file builds with the project's baseline flags.
#include "ops/gemm_kernels.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#include <cstddef>
#include <utility>

#define RESLENS_AVX2 __attribute__((target("avx2,fma")))

namespace reslens::ops::detail {
namespace {

// Reduces elements e in [0, NV) given as lo[e], hi[e] (lanes 0..7 and 8..15) with the tree of gemm.h
// and writes the sums to out[0..NV). Level 1 is lo + hi; per group of 8 elements level 2 adds 128-bit
// halves of pairs, levels 3 and 4 work within 128-bit lanes. The element fed into slot s is chosen so
// the result comes out in element order (the tree leaves slot s's sum at lane 4 * (s % 2) + s / 2).
template <int NV>
RESLENS_AVX2 inline void reduce_store(const __m256* lo, const __m256* hi, float* out) {
#pragma GCC unroll 4
  for (int g = 0; g < NV; g += 8) {
    __m256 h8[8];  // [8 slots][8 lanes]
#pragma GCC unroll 8
    for (int s = 0; s < 8; ++s) {
      const int e = g + 4 * (s % 2) + s / 2;
      h8[s] = e < NV ? _mm256_add_ps(lo[e], hi[e]) : _mm256_setzero_ps();
    }
    __m256 x[4];  // [4][2 elements x 4 lanes]: h4
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j)
      x[j] = _mm256_add_ps(_mm256_permute2f128_ps(h8[2 * j], h8[2 * j + 1], 0x20),
                           _mm256_permute2f128_ps(h8[2 * j], h8[2 * j + 1], 0x31));
    __m256 y[2];  // [2][2 x 128-bit lanes of 2 elements x 2 lanes]: h2
#pragma GCC unroll 2
    for (int j = 0; j < 2; ++j)
      y[j] = _mm256_add_ps(_mm256_shuffle_ps(x[2 * j], x[2 * j + 1], 0x44),
                           _mm256_shuffle_ps(x[2 * j], x[2 * j + 1], 0xEE));
    const __m256 z = _mm256_add_ps(_mm256_shuffle_ps(y[0], y[1], 0x88),  // [8 sums]
                                   _mm256_shuffle_ps(y[0], y[1], 0xDD));
    _mm256_storeu_ps(out + g, z);
  }
}

// The k loop of a tile over K terms (full steps of 16, then the masked tail), on accumulators lo / hi
// given by the caller: shared by `tile` (full K) and `tile_part` (one block of K). Always inlined, so
// the accumulators stay in registers (see reduce_store in gemm_avx512.cpp).
template <int RM, int RN>
__attribute__((target("avx2,fma"), always_inline)) inline void run_k(int64_t K, const float* A, int64_t lda,
                                                                      const float* B, int64_t ldb, __m256* lo,
                                                                      __m256* hi) {
  int64_t k = 0;
  for (; k + kGemmLanes <= K; k += kGemmLanes) {
    __m256 a[static_cast<std::size_t>(RM)];  // [RM][8]
#pragma GCC unroll 8
    for (int i = 0; i < RM; ++i) a[i] = _mm256_loadu_ps(A + i * lda + k);
#pragma GCC unroll 16
    for (int j = 0; j < RN; ++j) {
      const __m256 b = _mm256_loadu_ps(B + j * ldb + k);  // [8]: B[j, k..k+8)
#pragma GCC unroll 8
      for (int i = 0; i < RM; ++i) lo[i * RN + j] = _mm256_fmadd_ps(a[i], b, lo[i * RN + j]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < RM; ++i) a[i] = _mm256_loadu_ps(A + i * lda + k + 8);
#pragma GCC unroll 16
    for (int j = 0; j < RN; ++j) {
      const __m256 b = _mm256_loadu_ps(B + j * ldb + k + 8);  // [8]: B[j, k+8..k+16)
#pragma GCC unroll 8
      for (int i = 0; i < RM; ++i) hi[i * RN + j] = _mm256_fmadd_ps(a[i], b, hi[i * RN + j]);
    }
  }
  if (k < K) {
    // K tail: lanes past K must keep their exact value (even a -0.0f), so the FMA result is blended
    // in only where the lane owns a term; the masked loads read nothing past K.
    const int r = static_cast<int>(K - k);  // 1..15 terms left
    const __m256i lane_lo = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i lane_hi = _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15);
    const __m256i rv = _mm256_set1_epi32(r);
    const __m256i mask_lo = _mm256_cmpgt_epi32(rv, lane_lo);  // [8]: all ones where lane < r
    const __m256i mask_hi = _mm256_cmpgt_epi32(rv, lane_hi);
    const __m256 sel_lo = _mm256_castsi256_ps(mask_lo);
    const __m256 sel_hi = _mm256_castsi256_ps(mask_hi);
    __m256 a[static_cast<std::size_t>(RM)];  // [RM][8], zero past K
#pragma GCC unroll 8
    for (int i = 0; i < RM; ++i) a[i] = _mm256_maskload_ps(A + i * lda + k, mask_lo);
#pragma GCC unroll 16
    for (int j = 0; j < RN; ++j) {
      const __m256 b = _mm256_maskload_ps(B + j * ldb + k, mask_lo);
#pragma GCC unroll 8
      for (int i = 0; i < RM; ++i) {
        const __m256 f = _mm256_fmadd_ps(a[i], b, lo[i * RN + j]);
        lo[i * RN + j] = _mm256_blendv_ps(lo[i * RN + j], f, sel_lo);
      }
    }
    if (r > 8) {
#pragma GCC unroll 8
      for (int i = 0; i < RM; ++i) a[i] = _mm256_maskload_ps(A + i * lda + k + 8, mask_hi);
#pragma GCC unroll 16
      for (int j = 0; j < RN; ++j) {
        const __m256 b = _mm256_maskload_ps(B + j * ldb + k + 8, mask_hi);
#pragma GCC unroll 8
        for (int i = 0; i < RM; ++i) {
          const __m256 f = _mm256_fmadd_ps(a[i], b, hi[i * RN + j]);
          hi[i * RN + j] = _mm256_blendv_ps(hi[i * RN + j], f, sel_hi);
        }
      }
    }
  }

}

template <int RM, int RN>
RESLENS_AVX2 void tile(int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                       float* C, int64_t ldc, bool accumulate, std::uintptr_t /*pf*/) {
  constexpr int kNV = RM * RN;
  constexpr auto kNVs = static_cast<std::size_t>(kNV);  // array bounds want size_t
  __m256 lo[kNVs];  // [RM * RN][8]: lanes 0..7 of element (i, j) at i * RN + j
  __m256 hi[kNVs];  // [RM * RN][8]: lanes 8..15
#pragma GCC unroll 16
  for (int e = 0; e < kNV; ++e) {
    lo[e] = _mm256_setzero_ps();
    hi[e] = _mm256_setzero_ps();
  }
  run_k<RM, RN>(K, A, lda, B, ldb, lo, hi);

  float sums[(kNVs + 7) / 8 * 8];  // [RM * RN rounded up to 8]
  reduce_store<kNV>(lo, hi, sums);
  for (int i = 0; i < RM; ++i) {
    float* c = C + i * ldc;  // [RN]
    for (int j = 0; j < RN; ++j) c[j] = accumulate ? c[j] + sums[i * RN + j] : sums[i * RN + j];
  }
}

// One block of K of a tile with its accumulators in memory between blocks (PartTileFn in
// gemm_kernels.h): lanes 0..7 of element e at acc + 16 e, lanes 8..15 at acc + 16 e + 8.
template <int RM, int RN>
RESLENS_AVX2 void tile_part(int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* acc,
                            bool first, bool last, float* C, int64_t ldc, bool accumulate) {
  constexpr int kNV = RM * RN;
  constexpr auto kNVs = static_cast<std::size_t>(kNV);
  __m256 lo[kNVs];  // [RM * RN][8]
  __m256 hi[kNVs];  // [RM * RN][8]
#pragma GCC unroll 16
  for (int e = 0; e < kNV; ++e) {
    lo[e] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(acc + e * kGemmLanes);
    hi[e] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(acc + e * kGemmLanes + 8);
  }
  run_k<RM, RN>(K, A, lda, B, ldb, lo, hi);
  if (!last) {
#pragma GCC unroll 16
    for (int e = 0; e < kNV; ++e) {
      _mm256_storeu_ps(acc + e * kGemmLanes, lo[e]);
      _mm256_storeu_ps(acc + e * kGemmLanes + 8, hi[e]);
    }
    return;
  }
  float sums[(kNVs + 7) / 8 * 8];  // [RM * RN rounded up to 8]
  reduce_store<kNV>(lo, hi, sums);
  for (int i = 0; i < RM; ++i) {
    float* c = C + i * ldc;  // [RN]
    for (int j = 0; j < RN; ++j) c[j] = accumulate ? c[j] + sums[i * RN + j] : sums[i * RN + j];
  }
}

// Tile shapes: 2 x 3 uses 12 of the 16 ymm registers as accumulators, plus 2 for A and 1 for B.
constexpr int kRows = 2;
constexpr int kCols[kRows + 1] = {0, 6, 3};

template <int R, int... Cs>
constexpr void fill_row(TileSet& t, std::integer_sequence<int, Cs...>) {
  // No software prefetch in this path: every mode runs the same kernel.
  for (auto& mode : t.fn) ((mode[R][Cs + 1] = &tile<R, Cs + 1>), ...);
  ((t.part[R][Cs + 1] = &tile_part<R, Cs + 1>), ...);
}

constexpr int max_cols(int r) { return kCols[r] > kCols[kRows] ? kCols[r] : kCols[kRows]; }

template <int... Rs>
constexpr void fill_rows(TileSet& t, std::integer_sequence<int, Rs...>) {
  (fill_row<Rs + 1>(t, std::make_integer_sequence<int, max_cols(Rs + 1)>{}), ...);
}

constexpr TileSet make_tiles() {
  TileSet t;
  t.rows = kRows;
  for (int r = 0; r <= kRows; ++r) t.cols[r] = kCols[r];
  fill_rows(t, std::make_integer_sequence<int, kRows>{});
  t.load_bytes = 32;
  return t;
}

constexpr TileSet kTiles = make_tiles();

}  // namespace

const TileSet* avx2_tiles() { return &kTiles; }

}  // namespace reslens::ops::detail

#else

namespace reslens::ops::detail {
const TileSet* avx2_tiles() { return nullptr; }
}  // namespace reslens::ops::detail

#endif
