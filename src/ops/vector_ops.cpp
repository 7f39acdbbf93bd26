#include "ops/vector_ops.h"

#include "core/parallel.h"
#include "ops/gemm.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <utility>
#include <vector>

namespace reslens::ops {

#if defined(__x86_64__)
#define RESLENS_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#define RESLENS_ZMM __attribute__((target("avx512f")))
#define RESLENS_YMM __attribute__((target("avx2")))
#else
#define RESLENS_CLONES
#define RESLENS_ZMM
#define RESLENS_YMM
#endif

RESLENS_CLONES void axpy(double a, const double* x, double* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

RESLENS_CLONES void axpy(double a, const float* x, double* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * static_cast<double>(x[i]);
}

namespace {

// 16 floats as one value (GCC/Clang vector extension): one zmm register on AVX-512, two ymm on AVX2,
// four xmm on the baseline, with the same element-wise operations on each.
typedef float F16 __attribute__((vector_size(64)));
// 8 floats: one ymm register; 4 floats: one xmm.
typedef float F8 __attribute__((vector_size(32)));
typedef float F4 __attribute__((vector_size(16)));
// 8 doubles (one zmm) and 4 (one ymm); 16 and 8 int32s, as the floats they convert to.
typedef double D8 __attribute__((vector_size(64)));
typedef double D4 __attribute__((vector_size(32)));
typedef int32_t I32x16 __attribute__((vector_size(64)));
typedef int32_t I32x8 __attribute__((vector_size(32)));

// The register-blocked kernels below (small NN products, weighted row sums) are built once per
// register file: AVX-512 has 32 registers of 16 floats, AVX2 16 of 8. Blocks sized for AVX-512 and
// built by target_clones for AVX2 need twice the registers AVX2 has, and GCC 12 then moved every
// accumulator through the stack on each step (a 3.6 s GPT-2 explain on an AMD Zen 3, a third of it
// in these two kernels). So each has an AVX2 build with ymm-sized vectors and blocks that fit 16
// registers. Every element still gets the same chain of separate multiplies and adds in the same
// order, so the block shape changes no bit. simd() picks the build the GEMM runs (AVX-512 where the
// CPU has it, as target_clones would pick), under the same cap (RESLENS_ISA), so a test or benchmark
// can run each build on one machine.
enum class Simd { base, ymm, zmm };
Simd simd() {
  switch (detail::gemm_active_isa()) {
    case detail::GemmIsa::avx512: return Simd::zmm;
    case detail::GemmIsa::avx2: return Simd::ymm;
    case detail::GemmIsa::scalar: break;
  }
  return Simd::base;
}

// Calls the build of a kernel for simd(): zmm, ymm or base (three functions of one type).
template <typename Fn, typename... Args>
decltype(auto) by_simd(Fn zmm, Fn ymm, Fn base, Args&&... args) {
  switch (simd()) {
    case Simd::zmm: return zmm(std::forward<Args>(args)...);
    case Simd::ymm: return ymm(std::forward<Args>(args)...);
    case Simd::base: break;
  }
  return base(std::forward<Args>(args)...);
}

// Rows [m0, m0 + R) of C over columns [n0, n0 + kV L) (L floats per V): the R x kV accumulators stay
// in registers while k runs, and each piece of a B row is loaded once for all R rows.
template <typename V, size_t R, size_t kV>
__attribute__((always_inline)) inline void nn_block(int64_t m0, int64_t n0, int64_t K, const float* A, int64_t lda,
                                                    const float* B, int64_t ldb, float* C, int64_t ldc) {
  constexpr int64_t L = sizeof(V) / sizeof(float);
  V acc[R][kV];  // [R rows][kV pieces of L columns]
  for (size_t r = 0; r < R; ++r)
    for (size_t v = 0; v < kV; ++v)
      std::memcpy(&acc[r][v], C + (m0 + static_cast<int64_t>(r)) * ldc + n0 + static_cast<int64_t>(v) * L, sizeof(V));
  for (int64_t k = 0; k < K; ++k) {
    V b[kV];  // [kV][L]: B[k, n0 ..)
    for (size_t v = 0; v < kV; ++v) std::memcpy(&b[v], B + k * ldb + n0 + static_cast<int64_t>(v) * L, sizeof(V));
    for (size_t r = 0; r < R; ++r) {
      const float a = A[(m0 + static_cast<int64_t>(r)) * lda + k];
      for (size_t v = 0; v < kV; ++v) acc[r][v] += a * b[v];
    }
  }
  for (size_t r = 0; r < R; ++r)
    for (size_t v = 0; v < kV; ++v)
      std::memcpy(C + (m0 + static_cast<int64_t>(r)) * ldc + n0 + static_cast<int64_t>(v) * L, &acc[r][v], sizeof(V));
}

// Combinations [c0, c0 + cr) of combine_int16_rows over columns [0, n_full), kC >= cr accumulators
// of L floats (one V) in registers (those past cr multiply by 0 and are not stored). Each L-wide
// piece of a row is loaded and widened once for all of them.
template <typename V, size_t kC>
__attribute__((always_inline)) inline void combine_pass(int64_t c0, int64_t cr, int64_t K, int64_t n_full,
                                                        const float* coef, const int16_t* rows, int64_t ldr, float* out,
                                                        int64_t n) {
  constexpr auto L = static_cast<int64_t>(sizeof(V) / sizeof(float));
  typedef int16_t S __attribute__((vector_size(sizeof(V) / 2)));  // L int16s
  std::vector<float> a(static_cast<size_t>(K) * kC, 0.0f);  // [K, kC] the pass's coefficients, k-major
  for (int64_t k = 0; k < K; ++k) {
    for (int64_t c = 0; c < cr; ++c) a[static_cast<size_t>(k) * kC + static_cast<size_t>(c)] = coef[(c0 + c) * K + k];
  }
  for (int64_t j = 0; j < n_full; j += L) {
    V acc[kC];
    for (size_t c = 0; c < kC; ++c) acc[c] = V{};
    // The K rows are K streams 2 * ldr bytes apart, more than the hardware prefetcher follows:
    // ask for each row's cache line 2 KB ahead, once per line (measured: 1.28 -> 1.08 ms for a
    // GPT-2 head's 9 combinations, bench_vector_ops).
    constexpr int64_t kAhead = 1024;
    if ((j & 31) == 0 && j + kAhead < n_full) {
      for (int64_t k = 0; k < K; ++k) __builtin_prefetch(rows + k * ldr + j + kAhead);
    }
    for (int64_t k = 0; k < K; ++k) {
      S raw;
      std::memcpy(&raw, rows + k * ldr + j, sizeof raw);
      const V b = __builtin_convertvector(raw, V);
      const float* ak = a.data() + static_cast<size_t>(k) * kC;
      for (size_t c = 0; c < kC; ++c) acc[c] += ak[c] * b;
    }
    for (int64_t c = 0; c < cr; ++c) std::memcpy(out + (c0 + c) * n + j, &acc[static_cast<size_t>(c)], sizeof(V));
  }
}

// Rows [m0, m0 + R) of C over columns [n0, n0 + 2 L) in double, B float (L doubles per VD, L floats
// per VF): R x 2 accumulators stay in registers while k runs; each piece of a B row is widened once
// for all R.
template <typename VD, typename VF, size_t R>
__attribute__((always_inline)) inline void nn_block_double(int64_t m0, int64_t n0, int64_t K, const double* A,
                                                           int64_t lda, const float* B, int64_t ldb, double* C,
                                                           int64_t ldc) {
  constexpr int64_t L = sizeof(VD) / sizeof(double);
  static_assert(sizeof(VF) / sizeof(float) == L, "one float per double");
  VD lo[R], hi[R];  // [R][L]: columns n0 .. n0 + L, then the next L
  for (size_t r = 0; r < R; ++r) {
    double* c = C + (m0 + static_cast<int64_t>(r)) * ldc + n0;
    std::memcpy(&lo[r], c, sizeof(VD)), std::memcpy(&hi[r], c + L, sizeof(VD));
  }
  for (int64_t k = 0; k < K; ++k) {
    VF b0, b1;
    std::memcpy(&b0, B + k * ldb + n0, sizeof b0), std::memcpy(&b1, B + k * ldb + n0 + L, sizeof b1);
    const VD w0 = __builtin_convertvector(b0, VD), w1 = __builtin_convertvector(b1, VD);
    for (size_t r = 0; r < R; ++r) {
      const double a = A[(m0 + static_cast<int64_t>(r)) * lda + k];
      lo[r] += a * w0;
      hi[r] += a * w1;
    }
  }
  for (size_t r = 0; r < R; ++r) {
    double* c = C + (m0 + static_cast<int64_t>(r)) * ldc + n0;
    std::memcpy(c, &lo[r], sizeof(VD)), std::memcpy(c + L, &hi[r], sizeof(VD));
  }
}

// Columns [n0, N) of a small product one element at a time (the blocks' leftover columns), with the
// blocks' chain: C[m, n], then + A[m, k] * T(B[k, n]) for k ascending.
template <typename T>
__attribute__((always_inline)) inline void nn_columns_from(int64_t n0, int64_t M, int64_t N, int64_t K, const T* A,
                                                           int64_t lda, const float* B, int64_t ldb, T* C, int64_t ldc) {
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = n0; n < N; ++n) {
      T c = C[m * ldc + n];
      for (int64_t k = 0; k < K; ++k) c += A[m * lda + k] * static_cast<T>(B[k * ldb + n]);
      C[m * ldc + n] = c;
    }
  }
}

}  // namespace

namespace {

// combine_int16_rows with passes of at most kMax combinations on V-wide pieces: AVX-512 16 zmm
// accumulators; AVX2 12 ymm (16 spilled every step in GCC 12's AVX2 build of the zmm code).
template <typename V, int64_t kMax>
__attribute__((always_inline)) inline void combine_rows(int64_t nc, int64_t K, int64_t n, const float* coef,
                                                        const int16_t* rows, int64_t ldr, float* out) {
  const int64_t n_full = n / 16 * 16;
  // Up to kMax combinations per pass, so the rows (a head's are 6.4 MB, far beyond L2) are read once
  // for a typical head's 9, with exactly as many accumulators as combinations (measured for 9:
  // two passes of 8 2.24 ms, one padded to 12 1.49 ms, one of 9 1.28 ms).
  for (int64_t c0 = 0; c0 < nc; c0 += kMax) {
    const int64_t cr = std::min<int64_t>(kMax, nc - c0);
    switch (cr) {
#define RESLENS_PASS(W) \
  case W:               \
    combine_pass<V, W>(c0, cr, K, n_full, coef, rows, ldr, out, n); \
    break;
      RESLENS_PASS(1) RESLENS_PASS(2) RESLENS_PASS(3) RESLENS_PASS(4) RESLENS_PASS(5) RESLENS_PASS(6)
      RESLENS_PASS(7) RESLENS_PASS(8) RESLENS_PASS(9) RESLENS_PASS(10) RESLENS_PASS(11)
#undef RESLENS_PASS
      default:
        if constexpr (kMax == 12) {
          combine_pass<V, 12>(c0, cr, K, n_full, coef, rows, ldr, out, n);
        } else {
          switch (cr) {
            case 12: combine_pass<V, 12>(c0, cr, K, n_full, coef, rows, ldr, out, n); break;
            case 13: combine_pass<V, 13>(c0, cr, K, n_full, coef, rows, ldr, out, n); break;
            case 14: combine_pass<V, 14>(c0, cr, K, n_full, coef, rows, ldr, out, n); break;
            case 15: combine_pass<V, 15>(c0, cr, K, n_full, coef, rows, ldr, out, n); break;
            default: combine_pass<V, 16>(c0, cr, K, n_full, coef, rows, ldr, out, n); break;
          }
        }
    }
    for (int64_t c = 0; c < cr; ++c) {
      for (int64_t j = n_full; j < n; ++j) {
        float v = 0;
        for (int64_t k = 0; k < K; ++k) v += coef[(c0 + c) * K + k] * static_cast<float>(rows[k * ldr + j]);
        out[(c0 + c) * n + j] = v;
      }
    }
  }
}

RESLENS_ZMM void combine_rows_zmm(int64_t nc, int64_t K, int64_t n, const float* coef, const int16_t* rows, int64_t ldr,
                                  float* out) {
  combine_rows<F16, 16>(nc, K, n, coef, rows, ldr, out);
}
RESLENS_YMM void combine_rows_ymm(int64_t nc, int64_t K, int64_t n, const float* coef, const int16_t* rows, int64_t ldr,
                                  float* out) {
  combine_rows<F8, 12>(nc, K, n, coef, rows, ldr, out);
}
void combine_rows_base(int64_t nc, int64_t K, int64_t n, const float* coef, const int16_t* rows, int64_t ldr,
                       float* out) {
  combine_rows<F16, 16>(nc, K, n, coef, rows, ldr, out);
}

}  // namespace

void combine_int16_rows(int64_t nc, int64_t K, int64_t n, const float* coef, const int16_t* rows, int64_t ldr,
                        float* out) {
  return by_simd(&combine_rows_zmm, &combine_rows_ymm, &combine_rows_base, nc, K, n, coef, rows, ldr, out);
}

namespace {

// Blocks of R rows x kV pieces of V (16 columns in every build), then the leftover rows one at a time
// and the leftover columns one element at a time. Every element is the same chain either way: C[m, n],
// then + A[m, k] * B[k, n] for k ascending.
template <typename V, size_t R, size_t kV>
__attribute__((always_inline)) inline void nn_direct_float(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                                                           const float* B, int64_t ldb, float* C, int64_t ldc) {
  constexpr auto kCols = static_cast<int64_t>(kV * sizeof(V) / sizeof(float));
  const int64_t n_full = N / kCols * kCols;
  for (int64_t n0 = 0; n0 < n_full; n0 += kCols) {
    int64_t m0 = 0;
    for (; m0 + static_cast<int64_t>(R) <= M; m0 += static_cast<int64_t>(R)) nn_block<V, R, kV>(m0, n0, K, A, lda, B, ldb, C, ldc);
    for (; m0 < M; ++m0) nn_block<V, 1, kV>(m0, n0, K, A, lda, B, ldb, C, ldc);
  }
  nn_columns_from(n_full, M, N, K, A, lda, B, ldb, C, ldc);
}

// AVX-512: 8 rows x one zmm of 16 columns (8 accumulators); AVX2: 5 rows x two ymm (10 of the 16
// registers, with two for B's piece, one for A's value and one for a product).
RESLENS_ZMM void nn_direct_float_zmm(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                                     int64_t ldb, float* C, int64_t ldc) {
  nn_direct_float<F16, 8, 1>(M, N, K, A, lda, B, ldb, C, ldc);
}
RESLENS_YMM void nn_direct_float_ymm(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                                     int64_t ldb, float* C, int64_t ldc) {
  nn_direct_float<F8, 5, 2>(M, N, K, A, lda, B, ldb, C, ldc);
}
void nn_direct_float_base(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                          float* C, int64_t ldc) {
  nn_direct_float<F16, 8, 1>(M, N, K, A, lda, B, ldb, C, ldc);
}

void nn_accumulate_direct(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                          float* C, int64_t ldc) {
  return by_simd(&nn_direct_float_zmm, &nn_direct_float_ymm, &nn_direct_float_base, M, N, K, A, lda, B, ldb, C, ldc);
}

// The leftover rows [m0, M) (fewer than R) of a column block as one block.
template <typename VD, typename VF, size_t R>
__attribute__((always_inline)) inline void nn_double_rest(int64_t rest, int64_t m0, int64_t n0, int64_t K,
                                                          const double* A, int64_t lda, const float* B, int64_t ldb,
                                                          double* C, int64_t ldc) {
  if constexpr (R > 1) {
    if (rest == static_cast<int64_t>(R) - 1) return nn_block_double<VD, VF, R - 1>(m0, n0, K, A, lda, B, ldb, C, ldc);
    nn_double_rest<VD, VF, R - 1>(rest, m0, n0, K, A, lda, B, ldb, C, ldc);
  }
}

// Blocks of R rows x 2 L columns (L doubles per VD), then the leftover rows as one block and the
// leftover columns one element at a time. Each element's chain is axpy's: C[m, n], then
// + A[m, k] * double(B[k, n]) for k ascending.
template <typename VD, typename VF, size_t R>
__attribute__((always_inline)) inline void nn_direct_double(int64_t M, int64_t N, int64_t K, const double* A,
                                                            int64_t lda, const float* B, int64_t ldb, double* C,
                                                            int64_t ldc) {
  constexpr auto kCols = static_cast<int64_t>(2 * sizeof(VD) / sizeof(double));
  constexpr auto kR = static_cast<int64_t>(R);
  const int64_t n_full = N / kCols * kCols;
  for (int64_t n0 = 0; n0 < n_full; n0 += kCols) {
    int64_t m0 = 0;
    for (; m0 + kR <= M; m0 += kR) nn_block_double<VD, VF, R>(m0, n0, K, A, lda, B, ldb, C, ldc);
    nn_double_rest<VD, VF, R>(M - m0, m0, n0, K, A, lda, B, ldb, C, ldc);
  }
  nn_columns_from(n_full, M, N, K, A, lda, B, ldb, C, ldc);
}

// AVX-512: 6 rows x 16 columns (12 zmm accumulators); AVX2: 5 rows x 8 columns (10 ymm).
RESLENS_ZMM void nn_direct_double_zmm(int64_t M, int64_t N, int64_t K, const double* A, int64_t lda, const float* B,
                                      int64_t ldb, double* C, int64_t ldc) {
  nn_direct_double<D8, F8, 6>(M, N, K, A, lda, B, ldb, C, ldc);
}
RESLENS_YMM void nn_direct_double_ymm(int64_t M, int64_t N, int64_t K, const double* A, int64_t lda, const float* B,
                                      int64_t ldb, double* C, int64_t ldc) {
  nn_direct_double<D4, F4, 5>(M, N, K, A, lda, B, ldb, C, ldc);
}
void nn_direct_double_base(int64_t M, int64_t N, int64_t K, const double* A, int64_t lda, const float* B, int64_t ldb,
                           double* C, int64_t ldc) {
  nn_direct_double<D8, F8, 6>(M, N, K, A, lda, B, ldb, C, ldc);
}

void nn_accumulate_direct(int64_t M, int64_t N, int64_t K, const double* A, int64_t lda, const float* B, int64_t ldb,
                          double* C, int64_t ldc) {
  return by_simd(&nn_direct_double_zmm, &nn_direct_double_ymm, &nn_direct_double_base, M, N, K, A, lda, B, ldb, C, ldc);
}

// B's rows are read kPackRows at a time into a contiguous [rows, <= kPackCols] copy. Read in place, a
// 16-column strip of a wide weight matrix touches one cache line per row, each in another page,
// which the hardware prefetchers do not follow: 6-7 GMAC/s for 64 rows of A against a 4096 x 11008
// W_out on one core, 26 packed. Every element's chain is unchanged (k ascending, one multiply and
// one add per term): C is stored and read back exactly between row chunks, and the column blocks are
// multiples of 16, so the same columns go through the 16-wide kernel as before. The copy's rows are
// kPackPad floats longer than its columns: at 256 floats (1 KB, a power of two) apart they fell into
// a few L1 sets and evicted one another (layout only).
constexpr int64_t kPackRows = 128, kPackCols = 256, kPackPad = 16;

template <typename TA, typename TC>
void nn_accumulate_packed(int64_t M, int64_t N, int64_t K, const TA* A, int64_t lda, const float* B, int64_t ldb, TC* C,
                          int64_t ldc) {
  if (K <= kPackRows || N <= 0) {
    nn_accumulate_direct(M, N, K, A, lda, B, ldb, C, ldc);
    return;
  }
  thread_local std::vector<float> packed;  // [kPackRows, kPackCols] at most (row stride ldp)
  const int64_t ldp = std::min(N, kPackCols) + kPackPad;
  packed.resize(static_cast<size_t>(kPackRows * ldp));
  for (int64_t n0 = 0; n0 < N; n0 += kPackCols) {
    const int64_t nc = std::min(kPackCols, N - n0);
    for (int64_t k0 = 0; k0 < K; k0 += kPackRows) {
      const int64_t kc = std::min(kPackRows, K - k0);
      for (int64_t k = 0; k < kc; ++k) {
        const float* row = B + (k0 + k) * ldb + n0;
        std::copy(row, row + nc, packed.data() + k * ldp);
      }
      nn_accumulate_direct(M, nc, kc, A + k0, lda, packed.data(), ldp, C + n0, ldc);
    }
  }
}

}  // namespace

void matmul_nn_accumulate_small(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                                float* C, int64_t ldc) {
  nn_accumulate_packed(M, N, K, A, lda, B, ldb, C, ldc);
}

void matmul_nn_accumulate_small(int64_t M, int64_t N, int64_t K, const double* A, int64_t lda, const float* B,
                                int64_t ldb, double* C, int64_t ldc) {
  nn_accumulate_packed(M, N, K, A, lda, B, ldb, C, ldc);
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

namespace {

typedef int64_t I8 __attribute__((vector_size(64)));
typedef int64_t I4 __attribute__((vector_size(32)));

// exp(x) for x in [-708, 0] (lanes below -708 give 0): x = k ln2 + r with |r| <= ln2 / 2 (k by the
// round-to-nearest shifter trick, ln2 split in two so k * ln2_hi is exact), exp(r) by its Taylor
// polynomial of degree 12 (remainder < 2e-16 relative), times 2^k built in the exponent bits.
// Element-wise, so a ymm build (VD = D4, VI = I4) gives each lane the bits of the zmm one (D8, I8).
template <typename VD, typename VI>
__attribute__((always_inline)) inline void exp_lanes(const VD& x_in, VD& out) {
  const VD lo_limit = VD{} - 708.0;
  const VI keep = x_in >= lo_limit;  // all ones where x >= -708
  VD x = x_in;
  x = x < lo_limit ? lo_limit : x;
  constexpr double kShifter = 0x1.8p52, kLog2e = 1.4426950408889634, kLn2Hi = 0x1.62e42fee00000p-1,
                   kLn2Lo = 0x1.a39ef35793c76p-33;
  const VD t = x * kLog2e + kShifter;
  const VD kd = t - kShifter;
  const VD r = (x - kd * kLn2Hi) - kd * kLn2Lo;
  constexpr double c[13] = {1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
                            1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600};
  VD p = VD{} + c[12];
  for (int i = 11; i >= 0; --i) p = p * r + c[i];
  VI tb, sb;
  std::memcpy(&tb, &t, sizeof t);
  const VD shifter = VD{} + kShifter;
  std::memcpy(&sb, &shifter, sizeof sb);
  const VI scale_bits = ((tb - sb) + 1023) << 52;
  VD scale;
  std::memcpy(&scale, &scale_bits, sizeof scale);
  const VD e = p * scale;
  VI eb;
  std::memcpy(&eb, &e, sizeof eb);
  eb &= keep;
  std::memcpy(&out, &eb, sizeof out);
}

double exp_scalar(double x) {
  D8 v = D8{} + x, e;
  exp_lanes<D8, I8>(v, e);
  return e[0];
}

double lanes_sum(const D8& acc) {
  // Fixed order: pairs, then pairs of pairs.
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

}  // namespace

namespace {

// Rows [m0, m0 + R) of C over columns [n0, n1) for W's rows [k0, k1) (one chunk): blocks of kV L
// columns (L floats per V) with R x kV float accumulators in registers, the chunk's partial sums (its
// terms in order, in float) then added to C in double; the last partial block one column at a time.
inline constexpr int64_t kPrefetchRows = 32;  // rows of W ahead (~100 ns of the loop below)

template <typename V, size_t R, size_t kV>
__attribute__((always_inline)) inline void weighted_row_sums_rows(int64_t m0, int64_t k0, int64_t k1, int64_t n0,
                                                                  int64_t n1, const float* A, int64_t lda,
                                                                  const float* W, int64_t ldw, double* C, int64_t ldc,
                                                                  bool prefetch) {
  constexpr auto L = static_cast<int64_t>(sizeof(V) / sizeof(float));
  constexpr auto kCols = static_cast<int64_t>(kV) * L;
  int64_t n = n0;
  for (; n + kCols <= n1; n += kCols) {
    V acc[R][kV];  // [R rows][kV pieces of L columns]
    for (size_t r = 0; r < R; ++r)
      for (size_t v = 0; v < kV; ++v) acc[r][v] = V{};
    for (int64_t k = k0; k < k1; ++k) {
      // W's rows are ldw floats apart, so the hardware's prefetchers (which stay within a page) do
      // not see the stream: each row's first touch waited on memory (18 GFLOP/s on W_U's shape).
      if (prefetch && k + kPrefetchRows < k1) {
        const float* ahead = W + (k + kPrefetchRows) * ldw + n;  // the block's kCols floats there
        for (int64_t b = 0; b < kCols; b += 16) __builtin_prefetch(ahead + b);
        __builtin_prefetch(ahead + kCols - 1);  // the last line when the row is not line-aligned
      }
      V w[kV];  // [kV][L]: W[k, n ..)
      for (size_t v = 0; v < kV; ++v) std::memcpy(&w[v], W + k * ldw + n + static_cast<int64_t>(v) * L, sizeof(V));
      for (size_t r = 0; r < R; ++r) {
        const float a = A[(m0 + static_cast<int64_t>(r)) * lda + k];
        for (size_t v = 0; v < kV; ++v) acc[r][v] += a * w[v];
      }
    }
    for (size_t r = 0; r < R; ++r) {
      double* c = C + (m0 + static_cast<int64_t>(r)) * ldc + n;
      for (size_t v = 0; v < kV; ++v)
        for (int64_t t = 0; t < L; ++t) c[static_cast<int64_t>(v) * L + t] += static_cast<double>(acc[r][v][t]);
    }
  }
  for (; n < n1; ++n) {  // a last partial block of columns
    for (size_t r = 0; r < R; ++r) {
      const int64_t m = m0 + static_cast<int64_t>(r);
      float part = 0;
      for (int64_t k = k0; k < k1; ++k) part += A[m * lda + k] * W[k * ldw + n];
      C[m * ldc + n] += static_cast<double>(part);
    }
  }
}

// Columns [n0, n1) of C, rows [k0, k1) of W (one chunk, which stays in cache while every block of
// R rows of A, then each leftover row alone, runs over it; only the first pass prefetches it).
template <typename V, size_t R, size_t kV>
__attribute__((always_inline)) inline void weighted_row_sums_block(int64_t M, int64_t k0, int64_t k1, int64_t n0,
                                                                   int64_t n1, const float* A, int64_t lda,
                                                                   const float* W, int64_t ldw, double* C, int64_t ldc) {
  int64_t m0 = 0;
  for (; m0 + static_cast<int64_t>(R) <= M; m0 += static_cast<int64_t>(R))
    weighted_row_sums_rows<V, R, kV>(m0, k0, k1, n0, n1, A, lda, W, ldw, C, ldc, m0 == 0);
  for (; m0 < M; ++m0) weighted_row_sums_rows<V, 1, kV>(m0, k0, k1, n0, n1, A, lda, W, ldw, C, ldc, m0 == 0);
}

// AVX-512: 8 rows x 32 columns (16 zmm accumulators); AVX2: 5 rows x 16 columns (10 ymm, with two
// for W's piece, one for A's value and one for a product: 6 rows spilled one).
RESLENS_ZMM void weighted_row_sums_zmm(int64_t M, int64_t k0, int64_t k1, int64_t n0, int64_t n1, const float* A,
                                       int64_t lda, const float* W, int64_t ldw, double* C, int64_t ldc) {
  weighted_row_sums_block<F16, 8, 2>(M, k0, k1, n0, n1, A, lda, W, ldw, C, ldc);
}
RESLENS_YMM void weighted_row_sums_ymm(int64_t M, int64_t k0, int64_t k1, int64_t n0, int64_t n1, const float* A,
                                       int64_t lda, const float* W, int64_t ldw, double* C, int64_t ldc) {
  weighted_row_sums_block<F8, 5, 2>(M, k0, k1, n0, n1, A, lda, W, ldw, C, ldc);
}
void weighted_row_sums_base(int64_t M, int64_t k0, int64_t k1, int64_t n0, int64_t n1, const float* A, int64_t lda,
                            const float* W, int64_t ldw, double* C, int64_t ldc) {
  weighted_row_sums_block<F16, 8, 2>(M, k0, k1, n0, n1, A, lda, W, ldw, C, ldc);
}

void weighted_row_sums_slice(int64_t M, int64_t k0, int64_t k1, int64_t n0, int64_t n1, const float* A, int64_t lda,
                             const float* W, int64_t ldw, double* C, int64_t ldc) {
  return by_simd(&weighted_row_sums_zmm, &weighted_row_sums_ymm, &weighted_row_sums_base, M, k0, k1, n0, n1, A, lda, W,
                 ldw, C, ldc);
}

}  // namespace

void weighted_row_sums(int64_t M, int64_t K, int64_t N, const float* A, int64_t lda, const float* W, int64_t ldw,
                       double* C, int n_threads) {
  std::fill(C, C + M * N, 0.0);
  weighted_row_sums_add(M, K, N, A, lda, W, ldw, C, n_threads);
}

void weighted_row_sums_add(int64_t M, int64_t K, int64_t N, const float* A, int64_t lda, const float* W, int64_t ldw,
                           double* C, int n_threads) {
  constexpr int64_t kCols = 64;  // two 32-column blocks per slice
  // One chunk of W's rows at a time, its column slices split between the threads: W is read in
  // order, each row's slices from cache after the first (a slice's pass over all of W, rows ldw
  // apart, waited on memory at every row). Each element's terms are the same, in the same order.
  for (int64_t k0 = 0; k0 < K; k0 += kWeightedRowSumsChunk) {
    const int64_t k1 = std::min(K, k0 + kWeightedRowSumsChunk);
    parallel_for(n_threads, (N + kCols - 1) / kCols, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        weighted_row_sums_slice(M, k0, k1, b * kCols, std::min(N, (b + 1) * kCols), A, lda, W, ldw, C, N);
      }
    });
  }
}

namespace {

// dot on 8 lanes held as kV vectors VD of L doubles (lane v L + t), element i in lane i % 8, widened
// as whole vectors: the same operations per element in every build. (GCC 12's AVX2 clone of the
// 64-byte form converted each float through the stack and kept the accumulator in memory: most of
// a 7B explain's FFN identity check.)
template <typename VD, typename VF, size_t kV>
__attribute__((always_inline)) inline double dot_lanes(const float* x, const float* y, int64_t n) {
  constexpr auto L = static_cast<int64_t>(sizeof(VD) / sizeof(double));
  static_assert(kV * sizeof(VD) == 8 * sizeof(double) && sizeof(VF) / sizeof(float) == sizeof(VD) / sizeof(double),
                "8 lanes");
  VD acc[kV] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (size_t k = 0; k < kV; ++k) {
      const int64_t at = i + static_cast<int64_t>(k) * L;
      VF xf, yf;
      std::memcpy(&xf, x + at, sizeof xf);
      std::memcpy(&yf, y + at, sizeof yf);
      acc[k] += __builtin_convertvector(xf, VD) * __builtin_convertvector(yf, VD);
    }
  }
  D8 all;  // [8] the lanes, for the fixed order of lanes_sum
  std::memcpy(&all, acc, sizeof all);
  double tail = 0;
  for (; i < n; ++i) tail += static_cast<double>(x[i]) * static_cast<double>(y[i]);
  return lanes_sum(all) + tail;
}

RESLENS_ZMM double dot_zmm(const float* x, const float* y, int64_t n) { return dot_lanes<D8, F8, 1>(x, y, n); }
RESLENS_YMM double dot_ymm(const float* x, const float* y, int64_t n) { return dot_lanes<D4, F4, 2>(x, y, n); }
double dot_base(const float* x, const float* y, int64_t n) { return dot_lanes<D8, F8, 1>(x, y, n); }

}  // namespace

double dot(const float* x, const float* y, int64_t n) { return by_simd(&dot_zmm, &dot_ymm, &dot_base, x, y, n); }

namespace {

// squares_and_peak on 16 lanes held as kV vectors V of L floats (VI: L int32s); lane l = v L + t.
template <typename V, typename VI, size_t kV>
__attribute__((always_inline)) inline float squares_peak(const int32_t* x, const float* a, int64_t n, float* out,
                                                         float peak) {
  constexpr auto L = static_cast<int64_t>(sizeof(V) / sizeof(float));
  static_assert(kV * sizeof(V) == 16 * sizeof(float), "16 lanes");
  V top[kV] = {};
  for (int64_t j = 0; j + 16 <= n; j += 16) {
    for (size_t v = 0; v < kV; ++v) {
      const int64_t at = j + static_cast<int64_t>(v) * L;
      VI xi;
      V aj;
      std::memcpy(&xi, x + at, sizeof xi);
      std::memcpy(&aj, a + at, sizeof aj);
      const V xf = __builtin_convertvector(xi, V);
      const V sq = xf * xf;
      std::memcpy(out + at, &sq, sizeof sq);
      const V ax = xf < 0 ? -xf : xf;
      const V p = aj * ax;
      top[v] = p > top[v] ? p : top[v];
    }
  }
  for (size_t v = 0; v < kV; ++v)
    for (int64_t t = 0; t < L; ++t) peak = top[v][t] > peak ? top[v][t] : peak;
  return peak;
}

// min_max on 16 lanes held as kV vectors V of L floats, folded in lane order.
template <typename V, size_t kV>
__attribute__((always_inline)) inline void min_max_lanes(const float* g, int64_t n, float& lo, float& hi) {
  constexpr auto L = static_cast<int64_t>(sizeof(V) / sizeof(float));
  static_assert(kV * sizeof(V) == 16 * sizeof(float), "16 lanes");
  int64_t i = 0;
  float l = g[0], h = g[0];
  if (n >= 16) {
    V vl[kV], vh[kV];
    for (size_t v = 0; v < kV; ++v) std::memcpy(&vl[v], g + static_cast<int64_t>(v) * L, sizeof(V)), vh[v] = vl[v];
    for (i = 16; i + 16 <= n; i += 16) {
      for (size_t v = 0; v < kV; ++v) {
        V x;
        std::memcpy(&x, g + i + static_cast<int64_t>(v) * L, sizeof x);
        vl[v] = x < vl[v] ? x : vl[v];
        vh[v] = x > vh[v] ? x : vh[v];
      }
    }
    for (size_t v = 0; v < kV; ++v)
      for (int64_t t = 0; t < L; ++t) l = vl[v][t] < l ? vl[v][t] : l, h = vh[v][t] > h ? vh[v][t] : h;
  }
  for (; i < n; ++i) l = g[i] < l ? g[i] : l, h = g[i] > h ? g[i] : h;
  lo = l;
  hi = h;
}

RESLENS_ZMM float squares_peak_zmm(const int32_t* x, const float* a, int64_t n, float* out, float peak) {
  return squares_peak<F16, I32x16, 1>(x, a, n, out, peak);
}
RESLENS_YMM float squares_peak_ymm(const int32_t* x, const float* a, int64_t n, float* out, float peak) {
  return squares_peak<F8, I32x8, 2>(x, a, n, out, peak);
}
float squares_peak_base(const int32_t* x, const float* a, int64_t n, float* out, float peak) {
  return squares_peak<F16, I32x16, 1>(x, a, n, out, peak);
}

RESLENS_ZMM void min_max_zmm(const float* g, int64_t n, float& lo, float& hi) { min_max_lanes<F16, 1>(g, n, lo, hi); }
RESLENS_YMM void min_max_ymm(const float* g, int64_t n, float& lo, float& hi) { min_max_lanes<F8, 2>(g, n, lo, hi); }
void min_max_base(const float* g, int64_t n, float& lo, float& hi) { min_max_lanes<F16, 1>(g, n, lo, hi); }

}  // namespace

float squares_and_peak(const int32_t* x, const float* a, int64_t n, float* out, float peak) {
  return by_simd(&squares_peak_zmm, &squares_peak_ymm, &squares_peak_base, x, a, n, out, peak);
}

void min_max(const float* g, int64_t n, float& lo, float& hi) {
  return by_simd(&min_max_zmm, &min_max_ymm, &min_max_base, g, n, lo, hi);
}

namespace {

// sketch_tile_sums over 16 lanes held as kV vectors of L = 16 / kV floats (V) and int32s (VI): lane
// l = v L + t sums the terms j = l (mod 16). AVX-512 holds them in one zmm; AVX2 in two ymm, because
// GCC 12 lowers the 64-byte vectors' selects in an AVX2 build element by element through the stack.
template <typename V, typename VI, size_t kV>
__attribute__((always_inline)) inline void sketch_tile_lanes(const int32_t* x, const float* a, const float* w, int64_t n,
                                                             V* lane, V* top) {
  constexpr auto L = static_cast<int64_t>(sizeof(V) / sizeof(float));
  static_assert(kV * sizeof(V) == 16 * sizeof(float), "16 lanes");
  for (size_t v = 0; v < kV; ++v) lane[v] = V{}, top[v] = V{};
  for (int64_t j = 0; j + 16 <= n; j += 16) {
    for (size_t v = 0; v < kV; ++v) {
      const int64_t at = j + static_cast<int64_t>(v) * L;
      VI xi;
      V aj, wj;
      std::memcpy(&xi, x + at, sizeof xi);
      std::memcpy(&aj, a + at, sizeof aj);
      std::memcpy(&wj, w + at, sizeof wj);
      const V xf = __builtin_convertvector(xi, V);
      lane[v] += wj * (xf * xf);
      const V ax = xf < 0 ? -xf : xf;
      const V p = aj * ax;
      top[v] = top[v] < p ? p : top[v];
    }
  }
}

// The tree in one 16-lane vector: lane l += lane l + h for h = 8, 4, 2, 1 (the upper lanes' sums unused).
__attribute__((always_inline)) inline void sketch_tree16(const F16& lane_in, const F16& top_in, float& sum, float& peak) {
  F16 lane = lane_in, top = top_in;
  F16 hi = __builtin_shufflevector(lane, lane, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15);
  F16 hp = __builtin_shufflevector(top, top, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15);
  lane += hi;
  top = top < hp ? hp : top;
  hi = __builtin_shufflevector(lane, lane, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7);
  hp = __builtin_shufflevector(top, top, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7);
  lane += hi;
  top = top < hp ? hp : top;
  hi = __builtin_shufflevector(lane, lane, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
  hp = __builtin_shufflevector(top, top, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
  lane += hi;
  top = top < hp ? hp : top;
  sum = lane[0] + lane[1];
  peak = top[0] < top[1] ? top[1] : top[0];
}

RESLENS_ZMM void sketch_tile_sums_zmm(const int32_t* x, const float* a, const float* w, int64_t n, float& sum,
                                      float& peak) {
  F16 lane, top;
  sketch_tile_lanes<F16, I32x16, 1>(x, a, w, n, &lane, &top);
  sketch_tree16(lane, top, sum, peak);
}

void sketch_tile_sums_base(const int32_t* x, const float* a, const float* w, int64_t n, float& sum, float& peak) {
  F16 lane, top;
  sketch_tile_lanes<F16, I32x16, 1>(x, a, w, n, &lane, &top);
  sketch_tree16(lane, top, sum, peak);
}

// The same tree on two ymm: level h = 8 adds the high register to the low one (lane l + lane l + 8),
// then h = 4, 2, 1 within it.
RESLENS_YMM void sketch_tile_sums_ymm(const int32_t* x, const float* a, const float* w, int64_t n, float& sum,
                                      float& peak) {
  F8 lane[2], top[2];  // [lanes 0-7, lanes 8-15]
  sketch_tile_lanes<F8, I32x8, 2>(x, a, w, n, lane, top);
  F8 l8 = lane[0] + lane[1];
  F8 t8 = top[0] < top[1] ? top[1] : top[0];
  F8 hi = __builtin_shufflevector(l8, l8, 4, 5, 6, 7, 4, 5, 6, 7);
  F8 hp = __builtin_shufflevector(t8, t8, 4, 5, 6, 7, 4, 5, 6, 7);
  l8 += hi;
  t8 = t8 < hp ? hp : t8;
  hi = __builtin_shufflevector(l8, l8, 2, 3, 2, 3, 2, 3, 2, 3);
  hp = __builtin_shufflevector(t8, t8, 2, 3, 2, 3, 2, 3, 2, 3);
  l8 += hi;
  t8 = t8 < hp ? hp : t8;
  sum = l8[0] + l8[1];
  peak = t8[0] < t8[1] ? t8[1] : t8[0];
}

}  // namespace

void sketch_tile_sums(const int32_t* x, const float* a, const float* w, int64_t n, float& sum, float& peak) {
  return by_simd(&sketch_tile_sums_zmm, &sketch_tile_sums_ymm, &sketch_tile_sums_base, x, a, w, n, sum, peak);
}

RESLENS_CLONES void int8_codes(const float* u, int64_t n, double s, int8_t* codes) {
  if (!(s > 0)) {
    std::memset(codes, 0, static_cast<size_t>(n));
    return;
  }
  // The scalar rule's steps on 8 doubles at once: the quotient and the clamp are exact operations
  // of double, and the truncating conversion is static_cast<int>'s.
  const D8 lo = D8{} - 127.0, hi = D8{} + 127.0, up = D8{} + 0.5, down = D8{} - 0.5;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    F8 uf;  // widened as a whole vector (as in dot)
    std::memcpy(&uf, u + i, sizeof(F8));
    D8 r = __builtin_convertvector(uf, D8);
    r = r / s;
    r = r < lo ? lo : r;
    r = hi < r ? hi : r;
    r = r + (r >= 0 ? up : down);
    const I32x8 c = __builtin_convertvector(r, I32x8);
    for (int t = 0; t < 8; ++t) codes[i + t] = static_cast<int8_t>(c[t]);
  }
  for (; i < n; ++i) {
    const double r = std::clamp(static_cast<double>(u[i]) / s, -127.0, 127.0);
    codes[i] = static_cast<int8_t>(static_cast<int>(r + (r >= 0 ? 0.5 : -0.5)));
  }
}

double max_scaled(const float* g, double s, int64_t n) {
  // Rounding is monotone, so the largest s * double(g[i]) is s times g's largest (s >= 0) or
  // smallest element: one vector pass instead of a chain of n dependent maxima (as long as the
  // exponential sum it shifts, in the exact pass).
  float lo = 0, hi = 0;
  min_max(g, n, lo, hi);
  return s * static_cast<double>(s >= 0 ? hi : lo);
}

namespace {

// exp_weighted_sum and exp_shifted on 8 lanes held as kV vectors VD of L doubles (lane v L + t),
// element i in lane i % 8: the same operations per element as the 8-lane form, so every build gives
// the same bits. (GCC 12's AVX2 clone of the 64-byte form built each x in scalar registers through
// the stack: 10% of a generated answer's time on the AMD Zen 3 host.)
template <typename VD, typename VF, typename VI, size_t kV>
__attribute__((always_inline)) inline double exp_weighted_lanes(const double* q, const float* g, double s,
                                                                double shift, int64_t n) {
  constexpr auto L = static_cast<int64_t>(sizeof(VD) / sizeof(double));
  static_assert(kV * sizeof(VD) == 8 * sizeof(double) && sizeof(VF) / sizeof(float) == sizeof(VD) / sizeof(double),
                "8 lanes");
  VD acc[kV] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (size_t k = 0; k < kV; ++k) {
      const int64_t at = i + static_cast<int64_t>(k) * L;
      VF gf;
      VD qv, e;
      std::memcpy(&gf, g + at, sizeof gf);
      std::memcpy(&qv, q + at, sizeof qv);
      exp_lanes<VD, VI>(__builtin_convertvector(gf, VD) * s - shift, e);
      acc[k] += qv * e;
    }
  }
  D8 all;  // [8] the lanes, for the fixed order of lanes_sum
  std::memcpy(&all, acc, sizeof all);
  double tail = 0;
  for (; i < n; ++i) tail += q[i] * exp_scalar(s * static_cast<double>(g[i]) - shift);
  return lanes_sum(all) + tail;
}

template <typename VD, typename VI, size_t kV>
__attribute__((always_inline)) inline double exp_shifted_lanes(const double* x, double shift, double* out, int64_t n) {
  constexpr auto L = static_cast<int64_t>(sizeof(VD) / sizeof(double));
  static_assert(kV * sizeof(VD) == 8 * sizeof(double), "8 lanes");
  VD acc[kV] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (size_t k = 0; k < kV; ++k) {
      const int64_t at = i + static_cast<int64_t>(k) * L;
      VD v, e;
      std::memcpy(&v, x + at, sizeof v);
      exp_lanes<VD, VI>(v - shift, e);
      std::memcpy(out + at, &e, sizeof e);
      acc[k] += e;
    }
  }
  D8 all;  // [8]
  std::memcpy(&all, acc, sizeof all);
  double tail = 0;
  for (; i < n; ++i) tail += (out[i] = exp_scalar(x[i] - shift));
  return lanes_sum(all) + tail;
}

RESLENS_ZMM double exp_weighted_zmm(const double* q, const float* g, double s, double shift, int64_t n) {
  return exp_weighted_lanes<D8, F8, I8, 1>(q, g, s, shift, n);
}
RESLENS_YMM double exp_weighted_ymm(const double* q, const float* g, double s, double shift, int64_t n) {
  return exp_weighted_lanes<D4, F4, I4, 2>(q, g, s, shift, n);
}
double exp_weighted_base(const double* q, const float* g, double s, double shift, int64_t n) {
  return exp_weighted_lanes<D8, F8, I8, 1>(q, g, s, shift, n);
}

RESLENS_ZMM double exp_shifted_zmm(const double* x, double shift, double* out, int64_t n) {
  return exp_shifted_lanes<D8, I8, 1>(x, shift, out, n);
}
RESLENS_YMM double exp_shifted_ymm(const double* x, double shift, double* out, int64_t n) {
  return exp_shifted_lanes<D4, I4, 2>(x, shift, out, n);
}
double exp_shifted_base(const double* x, double shift, double* out, int64_t n) {
  return exp_shifted_lanes<D8, I8, 1>(x, shift, out, n);
}

}  // namespace

double exp_weighted_sum(const double* q, const float* g, double s, double shift, int64_t n) {
  return by_simd(&exp_weighted_zmm, &exp_weighted_ymm, &exp_weighted_base, q, g, s, shift, n);
}

namespace {

// weighted_moments_add on the 16 lanes of each sum held as kV vectors VD of L doubles (VF: L floats);
// lane l = v L + t, two independent chains per sum (lanes 0-7 and 8-15 over alternate halves of each
// step of 16), so the adds do not wait on each other's latency.
template <typename VD, typename VF, size_t kV>
__attribute__((always_inline)) inline void moments_lanes(const double* q, const float* g, int64_t n,
                                                         MomentLanes& lanes) {
  constexpr auto L = static_cast<int64_t>(sizeof(VD) / sizeof(double));
  static_assert(kV * sizeof(VD) == 16 * sizeof(double) && sizeof(VF) / sizeof(float) == sizeof(VD) / sizeof(double),
                "16 lanes");
  VD acc[2][kV];  // [m1, a2][kV pieces of L lanes]
  for (size_t k = 0; k < kV; ++k) {
    std::memcpy(&acc[0][k], lanes.m1 + static_cast<int64_t>(k) * L, sizeof(VD));
    std::memcpy(&acc[1][k], lanes.a2 + static_cast<int64_t>(k) * L, sizeof(VD));
  }
  for (int64_t i = 0; i + 16 <= n; i += 16) {
    for (size_t k = 0; k < kV; ++k) {
      const int64_t at = i + static_cast<int64_t>(k) * L;
      VD w;
      VF gf;
      std::memcpy(&w, q + at, sizeof w);
      std::memcpy(&gf, g + at, sizeof gf);
      const VD x = __builtin_convertvector(gf, VD);
      const VD wx = w * x;
      acc[0][k] += wx;
      acc[1][k] += wx * x;
    }
  }
  for (size_t k = 0; k < kV; ++k) {
    std::memcpy(lanes.m1 + static_cast<int64_t>(k) * L, &acc[0][k], sizeof(VD));
    std::memcpy(lanes.a2 + static_cast<int64_t>(k) * L, &acc[1][k], sizeof(VD));
  }
}

RESLENS_ZMM void moments_zmm(const double* q, const float* g, int64_t n, MomentLanes& lanes) {
  moments_lanes<D8, F8, 2>(q, g, n, lanes);
}
RESLENS_YMM void moments_ymm(const double* q, const float* g, int64_t n, MomentLanes& lanes) {
  moments_lanes<D4, F4, 4>(q, g, n, lanes);
}
void moments_base(const double* q, const float* g, int64_t n, MomentLanes& lanes) {
  moments_lanes<D8, F8, 2>(q, g, n, lanes);
}

}  // namespace

void weighted_moments_add(const double* q, const float* g, int64_t n, MomentLanes& lanes) {
  return by_simd(&moments_zmm, &moments_ymm, &moments_base, q, g, n, lanes);
}

double exp_shifted(const double* x, double shift, double* out, int64_t n) {
  return by_simd(&exp_shifted_zmm, &exp_shifted_ymm, &exp_shifted_base, x, shift, out, n);
}

}  // namespace reslens::ops
