// AVX-512 tile kernels. One zmm register holds the 16 lanes of one output element (gemm.h), so a
// tile of RM x RN elements keeps RM * RN accumulators in registers while k advances 16 at a time:
// per step it loads RM vectors of A and RN vectors of B and issues RM * RN FMAs. At the end the
// accumulators are reduced 16 at a time with the fixed tree of gemm.h, laid out so that one vector
// add serves 16 elements.
//
// Only functions marked RESLENS_AVX512 use AVX-512, and they run only after the driver has checked
// the CPU, so the file builds with the project's baseline flags.
#include "ops/gemm_kernels.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#include <cstddef>
#include <utility>

#define RESLENS_AVX512 __attribute__((target("avx512f,avx2,fma")))

namespace reslens::ops::detail {
namespace {

// GCC 12 implements the unmasked shuffles on top of _mm512_undefined_ps(), which -Wuninitialized
// reports once inlined here; the maskz forms with an all-ones mask are the same instruction.
template <int Imm>
RESLENS_AVX512 inline __m512 shuffle_f32x4(__m512 a, __m512 b) {
  return _mm512_maskz_shuffle_f32x4(static_cast<__mmask16>(0xFFFF), a, b, Imm);
}
template <int Imm>
RESLENS_AVX512 inline __m512 shuffle_ps(__m512 a, __m512 b) {
  return _mm512_maskz_shuffle_ps(static_cast<__mmask16>(0xFFFF), a, b, Imm);
}

// Reduces accumulators acc[0..NV) (each the 16 lanes of one element) with the tree of gemm.h and
// writes the sums to out[0..NV). Per group of 16 elements: level 1 adds the two 256-bit halves of
// pairs of elements, level 2 the 128-bit quarters, levels 3 and 4 within 128-bit lanes; each add
// handles 16 lanes of 2, 4, 8, then 16 different elements. The element fed into slot s is chosen so
// the final vector comes out in element order: the tree leaves slot s's sum at lane 4 * (s % 4) +
// s / 4, and that map is its own inverse. Always inlined: when GCC 12 kept it out of line, the
// accumulators' address escaped and they went through the stack around the k loop (-7% at K = 768).
template <int NV>
__attribute__((target("avx512f,avx2,fma"), always_inline)) inline void reduce_store(
    const __m512* acc, float* out) {
#pragma GCC unroll 4
  for (int g = 0; g < NV; g += 16) {
    __m512 v[16];  // [16 slots][16 lanes]
#pragma GCC unroll 16
    for (int s = 0; s < 16; ++s) {
      const int e = g + 4 * (s % 4) + s / 4;
      v[s] = e < NV ? acc[e] : _mm512_setzero_ps();
    }
    __m512 w[8];  // [8][2 elements x 8 lanes]: h8
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j)
      w[j] = _mm512_add_ps(shuffle_f32x4<0x44>(v[2 * j], v[2 * j + 1]),
                           shuffle_f32x4<0xEE>(v[2 * j], v[2 * j + 1]));
    __m512 x[4];  // [4][4 elements x 4 lanes]: h4
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j)
      x[j] = _mm512_add_ps(shuffle_f32x4<0x88>(w[2 * j], w[2 * j + 1]),
                           shuffle_f32x4<0xDD>(w[2 * j], w[2 * j + 1]));
    __m512 y[2];  // [2][4 x 128-bit lanes of 2 elements x 2 lanes]: h2
#pragma GCC unroll 2
    for (int j = 0; j < 2; ++j)
      y[j] = _mm512_add_ps(shuffle_ps<0x44>(x[2 * j], x[2 * j + 1]),
                           shuffle_ps<0xEE>(x[2 * j], x[2 * j + 1]));
    const __m512 z = _mm512_add_ps(shuffle_ps<0x88>(y[0], y[1]),  // [16 sums]
                                   shuffle_ps<0xDD>(y[0], y[1]));
    _mm512_storeu_ps(out + g, z);
  }
}

// The prefetch mode is a template parameter so that each loop carries only its own instructions
// (a run-time choice inside the loop made clang 14 spill accumulators).
template <int RM, int RN, Prefetch kPf>
RESLENS_AVX512 void tile(int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                         float* C, int64_t ldc, bool accumulate, std::uintptr_t pf) {
  constexpr int kNV = RM * RN;
  constexpr auto kNVs = static_cast<std::size_t>(kNV);  // array bounds want size_t
  __m512 acc[kNVs];  // [RM * RN][16 lanes], element (i, j) at i * RN + j
#pragma GCC unroll 32
  for (int e = 0; e < kNV; ++e) acc[e] = _mm512_setzero_ps();

  // The K tail (K % 16 terms) runs through the same loop body as the full steps, on copies of the
  // last partial step padded with -0.0f in A and +0.0f in B: the padded product is exactly -0.0f,
  // and x + -0.0f == x for every x (+0.0f, -0.0f and NaN included), so lanes past K keep their
  // value exactly, as if their chains had no more terms. (A separately written tail step made
  // clang 14 spill the accumulators of the main loop; masking every step costs ~5%.)
  alignas(64) float a_tail[static_cast<std::size_t>(RM) * kGemmLanes];  // [RM][16]
  alignas(64) float b_tail[static_cast<std::size_t>(RN) * kGemmLanes];  // [RN][16]
  const float* a_ptr = A;
  const float* b_ptr = B;
  int64_t a_stride = lda;
  int64_t b_stride = ldb;
  int64_t steps = K / kGemmLanes;
  bool tail_pending = K % kGemmLanes != 0;
  for (;;) {
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t k = s * kGemmLanes;
      if constexpr (kPf != Prefetch::none) {
#pragma GCC unroll 16
        for (int j = 0; j < RN; ++j) {
          const auto* line = reinterpret_cast<const char*>(
              pf + static_cast<std::uintptr_t>(j * ldb + k) * sizeof(float));
          _mm_prefetch(line, kPf == Prefetch::l1 ? _MM_HINT_T0 : _MM_HINT_T1);
        }
      }
      __m512 a[static_cast<std::size_t>(RM)];  // [RM][16]: A[i, k..k+16)
#pragma GCC unroll 8
      for (int i = 0; i < RM; ++i) a[i] = _mm512_loadu_ps(a_ptr + i * a_stride + k);
#pragma GCC unroll 16
      for (int j = 0; j < RN; ++j) {
        const __m512 b = _mm512_loadu_ps(b_ptr + j * b_stride + k);  // [16]: B[j, k..k+16)
#pragma GCC unroll 8
        for (int i = 0; i < RM; ++i) acc[i * RN + j] = _mm512_fmadd_ps(a[i], b, acc[i * RN + j]);
      }
    }
    if (!tail_pending) break;
    const int64_t k = steps * kGemmLanes;
    const auto mask = static_cast<__mmask16>((1u << (K - k)) - 1u);
    const __m512 neg_zero = _mm512_set1_ps(-0.0f);
    for (int i = 0; i < RM; ++i)
      _mm512_store_ps(a_tail + i * kGemmLanes, _mm512_mask_loadu_ps(neg_zero, mask, A + i * lda + k));
    for (int j = 0; j < RN; ++j)
      _mm512_store_ps(b_tail + j * kGemmLanes, _mm512_maskz_loadu_ps(mask, B + j * ldb + k));
    a_ptr = a_tail;
    b_ptr = b_tail;
    a_stride = b_stride = kGemmLanes;
    steps = 1;
    tail_pending = false;
  }

  float sums[(kNVs + 15) / 16 * 16];  // [RM * RN rounded up to 16]
  reduce_store<kNV>(acc, sums);
  for (int i = 0; i < RM; ++i) {
    float* c = C + i * ldc;  // [RN]
    for (int j = 0; j < RN; ++j) c[j] = accumulate ? c[j] + sums[i * RN + j] : sums[i * RN + j];
  }
}

// One K block of a tile with its accumulators in memory between blocks (PartTileFn in gemm_kernels.h):
// the loop of `tile` above without its prefetches, between a load (or zeroing) and a store (or the
// reduction) of the accumulators. Kept apart from `tile` so that the full-K kernels' code does not
// change. The driver sizes the blocks so that B's block (decoded rows) and A's stay in L1.
template <int RM, int RN>
RESLENS_AVX512 void tile_part(int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* acc_mem,
                              bool first, bool last, float* C, int64_t ldc, bool accumulate) {
  constexpr int kNV = RM * RN;
  constexpr auto kNVs = static_cast<std::size_t>(kNV);
  __m512 acc[kNVs];  // [RM * RN][16 lanes], element (i, j) at i * RN + j
  if (first) {
#pragma GCC unroll 32
    for (int e = 0; e < kNV; ++e) acc[e] = _mm512_setzero_ps();
  } else {
#pragma GCC unroll 32
    for (int e = 0; e < kNV; ++e) acc[e] = _mm512_loadu_ps(acc_mem + e * kGemmLanes);
  }
  // The K tail as in `tile`: padded copies of the last partial step (-0.0f in A, +0.0f in B).
  alignas(64) float a_tail[static_cast<std::size_t>(RM) * kGemmLanes];  // [RM][16]
  alignas(64) float b_tail[static_cast<std::size_t>(RN) * kGemmLanes];  // [RN][16]
  const float* a_ptr = A;
  const float* b_ptr = B;
  int64_t a_stride = lda;
  int64_t b_stride = ldb;
  int64_t steps = K / kGemmLanes;
  bool tail_pending = K % kGemmLanes != 0;
  for (;;) {
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t k = s * kGemmLanes;
      __m512 a[static_cast<std::size_t>(RM)];  // [RM][16]: A[i, k..k+16)
#pragma GCC unroll 8
      for (int i = 0; i < RM; ++i) a[i] = _mm512_loadu_ps(a_ptr + i * a_stride + k);
#pragma GCC unroll 16
      for (int j = 0; j < RN; ++j) {
        const __m512 b = _mm512_loadu_ps(b_ptr + j * b_stride + k);  // [16]: B[j, k..k+16)
#pragma GCC unroll 8
        for (int i = 0; i < RM; ++i) acc[i * RN + j] = _mm512_fmadd_ps(a[i], b, acc[i * RN + j]);
      }
    }
    if (!tail_pending) break;
    const int64_t k = steps * kGemmLanes;
    const auto mask = static_cast<__mmask16>((1u << (K - k)) - 1u);
    const __m512 neg_zero = _mm512_set1_ps(-0.0f);
    for (int i = 0; i < RM; ++i)
      _mm512_store_ps(a_tail + i * kGemmLanes, _mm512_mask_loadu_ps(neg_zero, mask, A + i * lda + k));
    for (int j = 0; j < RN; ++j)
      _mm512_store_ps(b_tail + j * kGemmLanes, _mm512_maskz_loadu_ps(mask, B + j * ldb + k));
    a_ptr = a_tail;
    b_ptr = b_tail;
    a_stride = b_stride = kGemmLanes;
    steps = 1;
    tail_pending = false;
  }
  if (!last) {
#pragma GCC unroll 32
    for (int e = 0; e < kNV; ++e) _mm512_storeu_ps(acc_mem + e * kGemmLanes, acc[e]);
    return;
  }
  float sums[(kNVs + 15) / 16 * 16];  // [RM * RN rounded up to 16]
  reduce_store<kNV>(acc, sums);
  for (int i = 0; i < RM; ++i) {
    float* c = C + i * ldc;  // [RN]
    for (int j = 0; j < RN; ++j) c[j] = accumulate ? c[j] + sums[i * RN + j] : sums[i * RN + j];
  }
}

// Tile shapes. 4 x 6 keeps 24 of the 32 zmm registers as accumulators and needs 10 loads per 24
// FMAs. For M < 4 (decode) one row tile holds all rows and the tile is wider (1 x 16, 2 x 12, 3 x 8),
// so each row of B is read once and several rows stream at a time. (Taller single-pass tiles for
// M = 5..8, e.g. 8 x 3 with B held in registers, measured 15-20% slower than two passes of 4 x 6:
// three rows of B in flight are too few to keep memory busy.)
constexpr int kRows = 4;
constexpr int kCols[kRows + 1] = {0, 16, 12, 8, 6};

template <int R, int... Cs>
constexpr void fill_row(TileSet& t, std::integer_sequence<int, Cs...>) {
  ((t.fn[0][R][Cs + 1] = &tile<R, Cs + 1, Prefetch::none>), ...);
  ((t.fn[1][R][Cs + 1] = &tile<R, Cs + 1, Prefetch::l1>), ...);
  ((t.fn[2][R][Cs + 1] = &tile<R, Cs + 1, Prefetch::l2>), ...);
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
  return t;
}

constexpr TileSet kTiles = make_tiles();

}  // namespace

const TileSet* avx512_tiles() { return &kTiles; }

}  // namespace reslens::ops::detail

#else

namespace reslens::ops::detail {
const TileSet* avx512_tiles() { return nullptr; }
}  // namespace reslens::ops::detail

#endif
