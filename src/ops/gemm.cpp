// Interim matmul: fixed-order FMA chains in 8 lanes, parallel over output columns. A tuned kernel
// with the same determinism contract replaces it.
#include "ops/gemm.h"

#include <cmath>

#include "core/parallel.h"

namespace reslens::ops {

namespace {

float dot(const float* a, const float* b, int64_t k) {
  float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    for (int j = 0; j < 8; ++j) lane[j] = std::fma(a[i + j], b[i + j], lane[j]);
  }
  float s = ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
  for (; i < k; ++i) s = std::fma(a[i], b[i], s);
  return s;
}

template <bool kAccumulate>
void matmul(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
            float* C, int64_t ldc, int n_threads) {
  parallel_for(n_threads, N, [&](int64_t n0, int64_t n1) {
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t n = n0; n < n1; ++n) {
        const float s = dot(A + m * lda, B + n * ldb, K);
        if constexpr (kAccumulate) {
          C[m * ldc + n] += s;
        } else {
          C[m * ldc + n] = s;
        }
      }
    }
  });
}

}  // namespace

void matmul_nt(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
               int64_t ldb, float* C, int64_t ldc, int n_threads) {
  matmul<false>(M, N, K, A, lda, B, ldb, C, ldc, n_threads);
}

void matmul_nt_accumulate(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                          const float* B, int64_t ldb, float* C, int64_t ldc, int n_threads) {
  matmul<true>(M, N, K, A, lda, B, ldb, C, ldc, n_threads);
}

}  // namespace reslens::ops
