// Combinations of a few long rows with fused multiply-adds: a head's combination rows from its
// d_head direction rows (analysis/target_tightening.cpp), where the product is K = d_head deep and
// the output is consumed block by block. Every element is the same chain on every CPU:
//   acc = 0;  acc = fma(A[m, k], B[k, n], acc) for k ascending;  C[m, n] = acc,
// with AVX-512 and AVX2+FMA kernels picked at run time and std::fma (exactly rounded, as the
// instruction is) elsewhere, so results do not depend on the CPU or the thread count.
#pragma once

#include <cstdint>

namespace reslens::ops {

/// C[m, n] = sum_k A[m, k] * B[k, n] as above (C overwritten). A: [M, K] (lda), B: [K, N] (ldb),
/// C: [M, N] (ldc).
void combine_rows_fma(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
                      int64_t ldc);

namespace detail {
/// Test hook: the portable loop even where a vector kernel runs (same bits, slower).
void combine_rows_fma_portable(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                               float* C, int64_t ldc);
/// Test hook: the AVX2 kernel where the CPU has AVX2 and FMA (returns false, C untouched, elsewhere).
bool combine_rows_fma_avx2(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                           float* C, int64_t ldc);
}  // namespace detail

}  // namespace reslens::ops
