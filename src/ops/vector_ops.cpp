#include "ops/vector_ops.h"

#include <algorithm>
#include <cstddef>
#include <cstring>

namespace reslens::ops {

#if defined(__x86_64__)
#define RESLENS_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define RESLENS_CLONES
#endif

RESLENS_CLONES void axpy(double a, const double* x, double* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

RESLENS_CLONES void axpy(double a, const float* x, double* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * static_cast<double>(x[i]);
}

RESLENS_CLONES void axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

RESLENS_CLONES void widen(const int16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(x[i]);
}

namespace {

// 16 floats as one value (GCC/Clang vector extension): one zmm register on AVX-512, two ymm on AVX2,
// four xmm on the baseline, with the same element-wise operations on each.
typedef float F16 __attribute__((vector_size(64)));

// Rows [m0, m0 + R) of C over columns [n0, n0 + 16): the R accumulators stay in registers while k
// runs, and each 16-wide piece of a B row is loaded once for all R rows.
template <size_t R>
__attribute__((always_inline)) inline void nn_block(int64_t m0, int64_t n0, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
                     int64_t ldc) {
  F16 acc[R];
  for (size_t r = 0; r < R; ++r) std::memcpy(&acc[r], C + (m0 + static_cast<int64_t>(r)) * ldc + n0, sizeof(F16));
  for (int64_t k = 0; k < K; ++k) {
    F16 b;
    std::memcpy(&b, B + k * ldb + n0, sizeof b);
    for (size_t r = 0; r < R; ++r) {
      const float a = A[(m0 + static_cast<int64_t>(r)) * lda + k];
      acc[r] += a * b;
    }
  }
  for (size_t r = 0; r < R; ++r) std::memcpy(C + (m0 + static_cast<int64_t>(r)) * ldc + n0, &acc[r], sizeof(F16));
}

}  // namespace

RESLENS_CLONES void matmul_nn_accumulate_small(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                                               const float* B, int64_t ldb, float* C, int64_t ldc) {
  // Every element is the same chain either way: C[m, n], then + A[m, k] * B[k, n] for k ascending.
  const int64_t n_full = N / 16 * 16;
  for (int64_t n0 = 0; n0 < n_full; n0 += 16) {
    int64_t m0 = 0;
    for (; m0 + 8 <= M; m0 += 8) nn_block<8>(m0, n0, K, A, lda, B, ldb, C, ldc);
    for (; m0 < M; ++m0) nn_block<1>(m0, n0, K, A, lda, B, ldb, C, ldc);
  }
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = n_full; n < N; ++n) {
      float c = C[m * ldc + n];
      for (int64_t k = 0; k < K; ++k) c += A[m * lda + k] * B[k * ldb + n];
      C[m * ldc + n] = c;
    }
  }
}

RESLENS_CLONES void matmul_nn_accumulate_small(int64_t M, int64_t N, int64_t K, const double* A, int64_t lda,
                                               const double* B, int64_t ldb, double* C, int64_t ldc) {
  for (int64_t m = 0; m < M; ++m) {
    double* c = C + m * ldc;
    for (int64_t k = 0; k < K; ++k) {
      const double a = A[m * lda + k];
      const double* b = B + k * ldb;
      for (int64_t n = 0; n < N; ++n) c[n] += a * b[n];
    }
  }
}

}  // namespace reslens::ops
