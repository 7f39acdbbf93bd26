// AVX2 + FMA tile kernels, for CPUs without AVX-512. The 16 lanes of an output element (gemm.h) live in
// two ymm registers: "lo" holds lanes 0..7 (k mod 16 < 8), "hi" lanes 8..15. The reduction starts with
// lo + hi, which is level 1 of the tree, then finishes 8 elements at a time.
//
// With 16 ymm registers, holding both halves of RM x RN elements takes 2 RM RN accumulators, so such
// tiles are small (2 x 3: 12 accumulators, and 10 loads for 12 FMAs, more than two load ports keep up
// with from L2). Larger tiles (3 x 4, the main one) hold one half at a time: over a chunk of K they
// run lanes 0..7 of every element, keep them, then lanes 8..15 (12 accumulators, 3 + 4 loads for 12
// FMAs). Each lane's chain still runs over its own k in increasing order, so the bits are those of
// the two-half kernels; the chunk (kHalfChunk values) is small enough that the rows its first half
// brought into L1 are still there for the second.
//
// Only functions marked RESLENS_AVX2 use AVX2/FMA, and they run only after the driver has checked
// the CPU, so the file builds with the project's baseline flags.
#include "ops/gemm_kernels.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#include <algorithm>
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

// The K tail of one half of every element: r terms (r >= 1; 8 or more fill the half) at A and B
// (already at the half's first column), on its accumulators acc ([RM * RN][8]). Lanes past K must
// keep their exact value (even a -0.0f), so the FMA result is blended in only where the lane owns a
// term; the masked loads read nothing past K.
template <int RM, int RN>
__attribute__((target("avx2,fma"), always_inline)) inline void tail_half(int64_t r, const float* A, int64_t lda,
                                                                          const float* B, int64_t ldb, __m256* acc) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(r)), lane);  // lane < r
  const __m256 sel = _mm256_castsi256_ps(mask);
  __m256 a[static_cast<std::size_t>(RM)];  // [RM][8], zero past K
#pragma GCC unroll 8
  for (int i = 0; i < RM; ++i) a[i] = _mm256_maskload_ps(A + i * lda, mask);
#pragma GCC unroll 16
  for (int j = 0; j < RN; ++j) {
    const __m256 b = _mm256_maskload_ps(B + j * ldb, mask);
#pragma GCC unroll 8
    for (int i = 0; i < RM; ++i) {
      const __m256 f = _mm256_fmadd_ps(a[i], b, acc[i * RN + j]);
      acc[i * RN + j] = _mm256_blendv_ps(acc[i * RN + j], f, sel);
    }
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
    const int64_t r = K - k;  // 1..15 terms left: lanes 0..7 own the first 8, lanes 8..15 the rest
    tail_half<RM, RN>(r, A + k, lda, B + k, ldb, lo);
    if (r > 8) tail_half<RM, RN>(r - 8, A + k + 8, lda, B + k + 8, ldb, hi);
  }
}

// ---- one half of the lanes at a time --------------------------------------------------------------

// Values of K a half-lane tile runs one half over before the other: (3 + 4) rows x 512 floats = 14 KB
// of a 32 KB L1d. Measured on the AMD Zen 3 host (a 3 x 4 tile, K = 768 and 4096): 256 to 1024 were
// within noise of one another; the whole K (no chunks) was 20% slower at K = 4096, where the first
// half's rows no longer stay in L1 for the second.
constexpr int64_t kHalfChunk = 512;

// Lanes 8 h .. 8 h + 7 of every element over k in [0, K) (K: a chunk, starting at a multiple of 16 of
// the product's K), on accumulators acc ([RM * RN][8]) given by the caller. As in run_k, the K tail
// (K % 16 != 0) updates only the lanes that own a term (tail_half).
template <int RM, int RN>
__attribute__((target("avx2,fma"), always_inline)) inline void run_half(int64_t K, int h, const float* A, int64_t lda,
                                                                         const float* B, int64_t ldb, __m256* acc) {
  const int64_t off = 8 * h;  // this half's first lane
  int64_t k = 0;
  for (; k + kGemmLanes <= K; k += kGemmLanes) {
    __m256 a[static_cast<std::size_t>(RM)];  // [RM][8]
#pragma GCC unroll 8
    for (int i = 0; i < RM; ++i) a[i] = _mm256_loadu_ps(A + i * lda + k + off);
#pragma GCC unroll 16
    for (int j = 0; j < RN; ++j) {
      const __m256 b = _mm256_loadu_ps(B + j * ldb + k + off);  // [8]: B[j, k+off .. k+off+8)
#pragma GCC unroll 8
      for (int i = 0; i < RM; ++i) acc[i * RN + j] = _mm256_fmadd_ps(a[i], b, acc[i * RN + j]);
    }
  }
  const int64_t r = K - k - off;  // terms left for this half's lanes (<= 0: none)
  if (r > 0) tail_half<RM, RN>(r, A + k + off, lda, B + k + off, ldb, acc);
}

// Both halves of every element over k in [0, K), in chunks of kHalfChunk: lanes[h] ([RM * RN][8], in
// memory) hold half h's lanes between chunks.
template <int RM, int RN>
__attribute__((target("avx2,fma"), always_inline)) inline void run_halves(int64_t K, const float* A, int64_t lda,
                                                                           const float* B, int64_t ldb, __m256* lo,
                                                                           __m256* hi) {
  constexpr auto kNVs = static_cast<std::size_t>(RM * RN);
  for (int64_t k0 = 0; k0 < K; k0 += kHalfChunk) {
    const int64_t kl = std::min(kHalfChunk, K - k0);
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      __m256* lanes = h == 0 ? lo : hi;
      __m256 acc[kNVs];  // [RM * RN][8]: this half, in registers for the chunk
#pragma GCC unroll 16
      for (std::size_t e = 0; e < kNVs; ++e) acc[e] = lanes[e];
      run_half<RM, RN>(kl, h, A + k0, lda, B + k0, ldb, acc);
#pragma GCC unroll 16
      for (std::size_t e = 0; e < kNVs; ++e) lanes[e] = acc[e];
    }
  }
}

// ---- the tile kernels --------------------------------------------------------------------------

// The k loop of an RM x RN tile: both halves at once (run_k), or one half at a time (run_halves).
template <int RM, int RN, bool kHalves>
__attribute__((target("avx2,fma"), always_inline)) inline void run_tile_k(int64_t K, const float* A, int64_t lda,
                                                                           const float* B, int64_t ldb, __m256* lo,
                                                                           __m256* hi) {
  if constexpr (kHalves) run_halves<RM, RN>(K, A, lda, B, ldb, lo, hi);
  else run_k<RM, RN>(K, A, lda, B, ldb, lo, hi);
}

template <int RM, int RN, bool kHalves>
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
  run_tile_k<RM, RN, kHalves>(K, A, lda, B, ldb, lo, hi);

  float sums[(kNVs + 7) / 8 * 8];  // [RM * RN rounded up to 8]
  reduce_store<kNV>(lo, hi, sums);
  for (int i = 0; i < RM; ++i) {
    float* c = C + i * ldc;  // [RN]
    for (int j = 0; j < RN; ++j) c[j] = accumulate ? c[j] + sums[i * RN + j] : sums[i * RN + j];
  }
}

// One block of K of a tile with its accumulators in memory between blocks (PartTileFn in
// gemm_kernels.h): lanes 0..7 of element e at acc + 16 e, lanes 8..15 at acc + 16 e + 8.
template <int RM, int RN, bool kHalves>
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
  run_tile_k<RM, RN, kHalves>(K, A, lda, B, ldb, lo, hi);
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

// Tile shapes: 3 x 4 (half lanes) for M >= 3; for M = 2 and M = 1 (decode), 2 x 3 and 1 x 6 with both
// halves in registers (12 accumulators, plus 2 or 1 for A and 1 for B). Tiles of more than 6 elements
// hold one half at a time.
constexpr int kRows = 3;
constexpr int kCols[kRows + 1] = {0, 6, 3, 4};
constexpr int kMaxBothHalves = 6;

template <int R, int... Cs>
constexpr void fill_row(TileSet& t, std::integer_sequence<int, Cs...>) {
  // No software prefetch in this path: every mode runs the same kernel.
  for (auto& mode : t.fn) ((mode[R][Cs + 1] = &tile<R, Cs + 1, (R * (Cs + 1) > kMaxBothHalves)>), ...);
  ((t.part[R][Cs + 1] = &tile_part<R, Cs + 1, (R * (Cs + 1) > kMaxBothHalves)>), ...);
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
