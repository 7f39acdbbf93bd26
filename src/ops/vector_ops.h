// The analyses' vector kernels (identity checks, query scores, head projections, tail means, cached
// rows, log-sum-exps), compiled for AVX-512, AVX2 and the baseline and picked at load time
// (GCC/Clang target_clones; the register-blocked ones, small NN products, weighted row sums, int16
// row combinations, the sketch's tile sums, the exponential sums and the dot product, are built with
// blocks sized for each register file and follow the GEMM's instruction set, so RESLENS_ISA caps them
// too). Every version does the same
// separate multiplies and adds per element in the same order (the project builds with
// -ffp-contract=off), so results have the same bits on every CPU and for every thread count.
#pragma once

#include <cstdint>

namespace reslens::ops {

/// y[i] += a * x[i] for i < n.
void axpy(double a, const double* x, double* y, int64_t n);
/// y[i] += a * double(x[i]) for i < n.
void axpy(double a, const float* x, double* y, int64_t n);

/// out[c, j] = sum_k coef[c, k] * float(rows[k, j]) for c < nc, j < n, k < K ascending (separate
/// multiply and add): combinations of int16 rows without widening them first. coef: [nc, K];
/// rows: [K, n] (row stride ldr); out: [nc, n].
void combine_int16_rows(int64_t nc, int64_t K, int64_t n, const float* coef, const int16_t* rows, int64_t ldr, float* out);

/// C[m, n] += sum_k A[m, k] * B[k, n] in float, k ascending, one multiply and one add per term: a
/// small "NN" product for reading a weight matrix as stored ([in, out], out contiguous) when a few
/// rows of A meet many columns of B. A: [M, K] (lda), B: [K, N] (ldb), C: [M, N] (ldc).
void matmul_nn_accumulate_small(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                                float* C, int64_t ldc);
/// The same in double with B float: each element is axpy's chain, C[m, n] + A[m, k] * double(B[k, n])
/// for k ascending, the same bits as one axpy per (m, k); 12 accumulators in registers instead of
/// C's rows streamed once per k.
void matmul_nn_accumulate_small(int64_t M, int64_t N, int64_t K, const double* A, int64_t lda, const float* B,
                                int64_t ldb, double* C, int64_t ldc);
/// The same in double (k ascending per element).
void matmul_nn_accumulate_small(int64_t M, int64_t N, int64_t K, const double* A, int64_t lda, const double* B,
                                int64_t ldb, double* C, int64_t ldc);

/// sum_i double(x[i]) * double(y[i]) in 8 double lanes (lane i % 8, blocks of 8), the lanes added in
/// pairs ((0+1)+(2+3))+((4+5)+(6+7)), then the last n % 8 in order.
double dot(const float* x, const float* y, int64_t n);

/// C[m, n] = sum_k A[m, k] * W[k, n] for m < M, n < N: a few weighted sums of a long matrix's rows
/// (W read once, in column slices across threads). The sum runs over k in order, in float within
/// chunks of 512 rows and in double across chunks (relative error ~1e-6 of sum |terms| at worst).
/// A: [M, K] (lda); W: [K, N] (ldw); C: [M, N] contiguous.
void weighted_row_sums(int64_t M, int64_t K, int64_t N, const float* A, int64_t lda, const float* W, int64_t ldw,
                       double* C, int n_threads);
/// Rows per float partial sum in weighted_row_sums (the sums restart at each multiple of it).
inline constexpr int64_t kWeightedRowSumsChunk = 512;
/// The same, adding to C instead of overwriting it. A call with K <= kWeightedRowSumsChunk adds one
/// chunk's partial sums, so chunks passed in order give weighted_row_sums's exact result.
void weighted_row_sums_add(int64_t M, int64_t K, int64_t N, const float* A, int64_t lda, const float* W, int64_t ldw,
                           double* C, int n_threads);

/// out[j] = float(x[j])^2 for j < n (n a multiple of 16), and the largest of `peak` and a[j] *
/// |float(x[j])|: the int8 sketch's squared integer products and their peak, in one pass (the same
/// values as the scalar loop: each element's two products are single roundings, the max exact).
float squares_and_peak(const int32_t* x, const float* a, int64_t n, float* out, float peak);

/// The int8 sketch's per-tile sums of a vector's integer products x [n] (n a multiple of 16): with
/// xf = float(x[t]), lane t % 16 adds w[t] * (xf * xf) for t ascending, the 16 lanes are then added
/// in a fixed tree (lane l += lane l + h for h = 8, 4, 2, 1), and peak = max_t a[t] * |xf| (from 0).
/// The same bits as that scalar loop on every CPU: one rounding per product and per add.
void sketch_tile_sums(const int32_t* x, const float* a, const float* w, int64_t n, float& sum, float& peak);

/// codes[i] = the int8 sketch's code of u[i] at scale s: u[i] / s in double, clamped to
/// [-127, 127], rounded half away from zero (0 everywhere when s is not > 0).
void int8_codes(const float* u, int64_t n, double s, int8_t* codes);

/// The smallest and largest of g[0..n) (n >= 1, no NaN).
void min_max(const float* g, int64_t n, float& lo, float& hi);

/// max_i s * double(g[i]) (n >= 1).
double max_scaled(const float* g, double s, int64_t n);

/// sum_i q[i] * exp(s * double(g[i]) - shift), for shift >= max_i s * g[i] (every exponent <= 0).
/// exp is evaluated in double by the vector code below (range reduction, a degree-12 polynomial,
/// within 4 ulp; exponents below -708 count as 0), summed in 8 lanes then in a fixed order.
double exp_weighted_sum(const double* q, const float* g, double s, double shift, int64_t n);

/// The two sums of a row g under weights q, as lanes: lane t of each adds the elements i with
/// i % 16 == t in increasing i, w = q[i], x = double(g[i]), wx = w * x (rounded), then
///   m1[t] += wx,  a2[t] += wx * x.
/// n must be a multiple of 16 (the caller adds a row's last n % 16 elements after combining the
/// lanes). Calls over consecutive slices continue the same chains, so a row can be summed block by
/// block, interleaved with other rows, with the same bits. (The weights' own sum does not depend on
/// the row: the caller takes it once per q.)
struct MomentLanes {
  static constexpr int kLanes = 16;
  double m1[kLanes] = {}, a2[kLanes] = {};
};
void weighted_moments_add(const double* q, const float* g, int64_t n, MomentLanes& lanes);

/// out[i] = exp(x[i] - shift) (shift >= max x) with the same exp; returns the sum (8 lanes, fixed order).
double exp_shifted(const double* x, double shift, double* out, int64_t n);

}  // namespace reslens::ops
