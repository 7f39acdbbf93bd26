// Matrix multiply for weights stored [out, in] (TransformerLens/nn.Linear layout).
#pragma once

#include <cstdint>

namespace reslens::ops {

/// C[m, n] = sum_k A[m, k] * B[n, k]   ("NT": B is a weight matrix stored [out, in], in contiguous).
/// A: [M, K] with row stride lda; B: [N, K] with row stride ldb; C: [M, N] with row stride ldc (floats).
/// Determinism: the float value of C[m, n] depends only on K, row m of A and row n of B -- never on M,
/// N, the thread count, the CPU code path chosen at run time, or where the rows sit in memory.
void matmul_nt(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
               int64_t ldb, float* C, int64_t ldc, int n_threads);

/// Same, accumulating: C[m, n] += sum_k ... (the sum is formed first, then added once to C).
void matmul_nt_accumulate(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                          const float* B, int64_t ldb, float* C, int64_t ldc, int n_threads);

}  // namespace reslens::ops
