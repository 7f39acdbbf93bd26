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
template <int R>
__attribute__((target("avx512f"))) void block_avx512(int64_t m0, int64_t n0, int64_t K, const float* A, int64_t lda,
                                                     const float* B, int64_t ldb, float* C, int64_t ldc) {
  __m512 acc[static_cast<size_t>(R)][2];
  for (int r = 0; r < R; ++r) acc[r][0] = _mm512_setzero_ps(), acc[r][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const __m512 b0 = _mm512_loadu_ps(B + k * ldb + n0), b1 = _mm512_loadu_ps(B + k * ldb + n0 + 16);
    for (int r = 0; r < R; ++r) {
      const __m512 a = _mm512_set1_ps(A[(m0 + r) * lda + k]);
      acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
    }
  }
  for (int r = 0; r < R; ++r) {
    _mm512_storeu_ps(C + (m0 + r) * ldc + n0, acc[r][0]);
    _mm512_storeu_ps(C + (m0 + r) * ldc + n0 + 16, acc[r][1]);
  }
}

__attribute__((target("avx512f"))) void combine_avx512(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                                                       const float* B, int64_t ldb, float* C, int64_t ldc) {
  const int64_t n_full = N / 32 * 32;
  for (int64_t n0 = 0; n0 < n_full; n0 += 32) {
    int64_t m0 = 0;
    for (; m0 + 4 <= M; m0 += 4) block_avx512<4>(m0, n0, K, A, lda, B, ldb, C, ldc);
    for (; m0 < M; ++m0) block_avx512<1>(m0, n0, K, A, lda, B, ldb, C, ldc);
  }
  columns_portable(0, M, n_full, N, K, A, lda, B, ldb, C, ldc);
}

template <int R>
__attribute__((target("avx2,fma"))) void block_avx2(int64_t m0, int64_t n0, int64_t K, const float* A, int64_t lda,
                                                    const float* B, int64_t ldb, float* C, int64_t ldc) {
  __m256 acc[static_cast<size_t>(R)][2];
  for (int r = 0; r < R; ++r) acc[r][0] = _mm256_setzero_ps(), acc[r][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const __m256 b0 = _mm256_loadu_ps(B + k * ldb + n0), b1 = _mm256_loadu_ps(B + k * ldb + n0 + 8);
    for (int r = 0; r < R; ++r) {
      const __m256 a = _mm256_set1_ps(A[(m0 + r) * lda + k]);
      acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
    }
  }
  for (int r = 0; r < R; ++r) {
    _mm256_storeu_ps(C + (m0 + r) * ldc + n0, acc[r][0]);
    _mm256_storeu_ps(C + (m0 + r) * ldc + n0 + 8, acc[r][1]);
  }
}

__attribute__((target("avx2,fma"))) void combine_avx2(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                                                      const float* B, int64_t ldb, float* C, int64_t ldc) {
  const int64_t n_full = N / 16 * 16;
  for (int64_t n0 = 0; n0 < n_full; n0 += 16) {
    int64_t m0 = 0;
    for (; m0 + 4 <= M; m0 += 4) block_avx2<4>(m0, n0, K, A, lda, B, ldb, C, ldc);
    for (; m0 < M; ++m0) block_avx2<1>(m0, n0, K, A, lda, B, ldb, C, ldc);
  }
  columns_portable(0, M, n_full, N, K, A, lda, B, ldb, C, ldc);
}
#endif

}  // namespace

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
