// Matrix multiply for the forward pass: activations [tokens, in] times a weight matrix stored the way
// checkpoints store it, [out, in] with `in` contiguous ("NT"). Weights are usually memory-mapped, so
// the kernel reads B in place and never copies it.
//
// Determinism is part of the contract, because interpretability results are compared across runs,
// machines and prompt lengths. Every output element is computed by the same fixed sequence of float
// operations, whatever the shape, thread count or CPU:
//
//   lane[j]  (j = 0..15) starts at +0.0f and is a chain of fused multiply-adds
//            lane[j] = fma(A[m, k], B[n, k], lane[j]) over k = j, j + 16, j + 32, ... < K, increasing k;
//   h8[i] = lane[i] + lane[i + 8]   (i < 8)
//   h4[i] = h8[i] + h8[i + 4]       (i < 4)
//   h2[i] = h4[i] + h4[i + 2]       (i < 2)
//   sum   = h2[0] + h2[1]
//   matmul_nt:            C[m, n] = sum
//   matmul_nt_accumulate: C[m, n] = C[m, n] + sum
//
// The AVX-512 path holds the 16 lanes in one register, the AVX2 path in two, the scalar fallback in an
// array with std::fma; the K tail (K % 16 != 0) updates only the lanes it owns (masked FMA), so all
// three give the same bits. (The one thing not promised is which NaN payload comes out when inputs
// hold several different NaNs.)
#pragma once

#include <cstdint>
#include <span>

namespace reslens::ops {

/// C[m, n] = sum_k A[m, k] * B[n, k]   ("NT": B is a weight matrix stored [out, in], in contiguous).
/// A: [M, K] with row stride lda; B: [N, K] with row stride ldb; C: [M, N] with row stride ldc (floats).
/// Determinism: the float value of C[m, n] depends only on K, row m of A and row n of B -- never on M,
/// N, the thread count, the CPU code path chosen at run time, or where the rows sit in memory.
/// n_threads <= 0 means all hardware threads. C must not overlap A or B.
void matmul_nt(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
               int64_t ldb, float* C, int64_t ldc, int n_threads);

/// Same, accumulating: C[m, n] += sum_k ... (the sum is formed first, then added once to C).
void matmul_nt_accumulate(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                          const float* B, int64_t ldb, float* C, int64_t ldc, int n_threads);

/// A weight matrix B [N, K] kept in its file's encoding (F16, BF16, llama.cpp's block types): row n is
/// `row_bytes` bytes at data + n * row_bytes, and `decode` turns whole rows into float32 (it writes
/// n values decoded from the bytes given; the model module's dequantize functions).
struct EncodedRows {
  const uint8_t* data = nullptr;
  int64_t row_bytes = 0;
  void (*decode)(float* out, std::span<const uint8_t> in, int64_t n) = nullptr;
  /// The encoding's block: block_values values in block_bytes bytes, each block decoding on its own
  /// (1 and 2 for F16; 32 and 34 for Q8_0; 256 and 144 for Q4_K). With it, a product of few rows of A
  /// decodes B a block of K at a time into L1 (see matmul_nt_encoded); 0: whole rows only.
  int64_t block_values = 0;
  int64_t block_bytes = 0;
};

/// C[m, n] (+)= sum_k A[m, k] * B[n, k] with B encoded: each thread decodes the rows of B it is about
/// to use into a float32 tile (a tile of columns of C, or a block of them sized to half of L2, as the
/// loop order above reads B) and runs the same tile kernels on it. For few rows of A (M <= 16, where
/// each decoded value feeds only M multiply-adds) and a B with its block size given, a tile's rows are
/// decoded a block of K at a time into an L1-sized scratch, and the tile kernels continue their
/// accumulators from block to block. The decoded values are the ones a whole conversion gives (block
/// by block), and every element is still summed in the order defined above, so C is bit for bit what
/// matmul_nt gives on the converted matrix, for any thread count. For an A too large for half of L2
/// (long prompts on large K) and a B with its block given, the product is cut into panels along K as
/// well (about 1024 values), the lanes carried between panels the same way.
void matmul_nt_encoded(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const EncodedRows& B,
                       float* C, int64_t ldc, int n_threads, bool accumulate = false);

namespace detail {

/// Instruction sets the kernel can run on, in increasing order.
enum class GemmIsa { scalar = 0, avx2 = 1, avx512 = 2 };

/// The best instruction set this CPU (and this build) supports.
GemmIsa gemm_best_isa();

/// Test/benchmark hook: cap the instruction set used by later calls (process-wide). Passing
/// GemmIsa::avx512 removes the cap. Results do not change with it; only speed does.
void set_gemm_isa_limit(GemmIsa limit);

/// The instruction set later calls will use (the best one, under the cap).
GemmIsa gemm_active_isa();

/// Test hook: force (true) or stop forcing (false) the portable scalar path.
void set_force_scalar(bool force);

/// Test hook: the L2 size (bytes) the cache blocking plans for; 0 restores the detected size. Only
/// the loop order and block sizes change, never the results.
void set_gemm_l2_bytes(int64_t bytes);

}  // namespace detail
}  // namespace reslens::ops
