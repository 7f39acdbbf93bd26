#include "ops/vector_ops.h"

#include <algorithm>

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

RESLENS_CLONES void matmul_nn_accumulate_small(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                                               const float* B, int64_t ldb, float* C, int64_t ldc) {
  // Column blocks keep the M x block accumulators in L2 while k runs (the order over k per element
  // is the same either way).
  constexpr int64_t kCols = 1024;
  for (int64_t n0 = 0; n0 < N; n0 += kCols) {
    const int64_t nb = std::min(kCols, N - n0);
    for (int64_t k = 0; k < K; ++k) {
      const float* b = B + k * ldb + n0;
      for (int64_t m = 0; m < M; ++m) {
        const float a = A[m * lda + k];
        float* c = C + m * ldc + n0;
        for (int64_t n = 0; n < nb; ++n) c[n] += a * b[n];
      }
    }
  }
}

}  // namespace reslens::ops
