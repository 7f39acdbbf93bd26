// combine_rows_fma (ops/combine_rows.h): register blocks of 4 rows x 2 vectors of columns, one
// broadcast of A and one fused multiply-add per (row, vector) per k; column tails by std::fma.
#include "ops/combine_rows.h"

#include <cmath>
#include <cstddef>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RESLENS_COMBINE_X86 1
#endif

namespace reslens::ops {

namespace detail {

void combine_rows_fma_portable(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                               float* C, int64_t ldc) {
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      float acc = 0.0f;
      for (int64_t k = 0; k < K; ++k) acc = std::fma(A[m * lda + k], B[k * ldb + n], acc);
      C[m * ldc + n] = acc;
    }
  }
}

}  // namespace detail

namespace {

// Columns [n0, N) of rows [m0, m1) by the portable chain.
void columns_portable(int64_t m0, int64_t m1, int64_t n0, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                      int64_t ldb, float* C, int64_t ldc) {
  for (int64_t m = m0; m < m1; ++m) {
    for (int64_t n = n0; n < N; ++n) {
      float acc = 0.0f;
      for (int64_t k = 0; k < K; ++k) acc = std::fma(A[m * lda + k], B[k * ldb + n], acc);
      C[m * ldc + n] = acc;
    }
  }
}

#ifdef RESLENS_COMBINE_X86
// One kernel body for both instruction sets: VEC is the register type, W its float lanes, TARGET the
// function attribute, and ZERO / LOAD / SET1 / FMA / STORE the intrinsics. Rows come in blocks of 4
// (then 1), columns in blocks of 2 W; the rest of the columns by the portable chain.
#define RESLENS_COMBINE_KERNEL(NAME, TARGET, VEC, W, ZERO, LOAD, SET1, FMA, STORE)                              \
  template <int R>                                                                                             \
  TARGET void NAME##_block(int64_t m0, int64_t n0, int64_t K, const float* A, int64_t lda, const float* B,      \
                           int64_t ldb, float* C, int64_t ldc) {                                               \
    VEC acc[static_cast<size_t>(R)][2];                                                                        \
    for (int r = 0; r < R; ++r) acc[r][0] = ZERO(), acc[r][1] = ZERO();                                        \
    for (int64_t k = 0; k < K; ++k) {                                                                          \
      const VEC b0 = LOAD(B + k * ldb + n0), b1 = LOAD(B + k * ldb + n0 + (W));                                \
      for (int r = 0; r < R; ++r) {                                                                            \
        const VEC a = SET1(A[(m0 + r) * lda + k]);                                                             \
        acc[r][0] = FMA(a, b0, acc[r][0]);                                                                     \
        acc[r][1] = FMA(a, b1, acc[r][1]);                                                                     \
      }                                                                                                        \
    }                                                                                                          \
    for (int r = 0; r < R; ++r) {                                                                              \
      STORE(C + (m0 + r) * ldc + n0, acc[r][0]);                                                               \
      STORE(C + (m0 + r) * ldc + n0 + (W), acc[r][1]);                                                         \
    }                                                                                                          \
  }                                                                                                            \
  TARGET void NAME(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,  \
                   float* C, int64_t ldc) {                                                                    \
    const int64_t n_full = N / (2 * (W)) * (2 * (W));                                                          \
    for (int64_t n0 = 0; n0 < n_full; n0 += 2 * (W)) {                                                         \
      int64_t m0 = 0;                                                                                          \
      for (; m0 + 4 <= M; m0 += 4) NAME##_block<4>(m0, n0, K, A, lda, B, ldb, C, ldc);                         \
      for (; m0 < M; ++m0) NAME##_block<1>(m0, n0, K, A, lda, B, ldb, C, ldc);                                 \
    }                                                                                                          \
    columns_portable(0, M, n_full, N, K, A, lda, B, ldb, C, ldc);                                              \
  }

RESLENS_COMBINE_KERNEL(combine_avx512, __attribute__((target("avx512f"))), __m512, 16, _mm512_setzero_ps, _mm512_loadu_ps,
                       _mm512_set1_ps, _mm512_fmadd_ps, _mm512_storeu_ps)
RESLENS_COMBINE_KERNEL(combine_avx2, __attribute__((target("avx2,fma"))), __m256, 8, _mm256_setzero_ps, _mm256_loadu_ps,
                       _mm256_set1_ps, _mm256_fmadd_ps, _mm256_storeu_ps)
#undef RESLENS_COMBINE_KERNEL
#endif

}  // namespace

bool detail::combine_rows_fma_avx2(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                                   float* C, int64_t ldc) {
#ifdef RESLENS_COMBINE_X86
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    combine_avx2(M, N, K, A, lda, B, ldb, C, ldc);
    return true;
  }
#endif
  return false;
}

void combine_rows_fma(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
                      int64_t ldc) {
#ifdef RESLENS_COMBINE_X86
  static const int isa = __builtin_cpu_supports("avx512f") ? 2 : (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 1 : 0;
  if (isa == 2) return combine_avx512(M, N, K, A, lda, B, ldb, C, ldc);
  if (isa == 1) return combine_avx2(M, N, K, A, lda, B, ldb, C, ldc);
#endif
  detail::combine_rows_fma_portable(M, N, K, A, lda, B, ldb, C, ldc);
}

}  // namespace reslens::ops
