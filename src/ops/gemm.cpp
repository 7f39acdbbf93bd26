// GEMM driver: picks the instruction set at run time, cuts C into tiles, spreads column blocks over
// threads, and holds the portable scalar kernel that defines the arithmetic the SIMD kernels copy.
//
// Loop order (per thread, over its own columns [n_begin, n_end) of C):
//   for each block of mb rows of A (mb * K floats sized to stay in L2)
//     for each tile of rn columns (rn rows of B: streamed from memory once per row block)
//       for each tile of rm rows in the row block
//         tile kernel over the full K
// For the decode/short-prompt case (M <= mb) there is one row block, so every row of B is read from
// memory exactly once and used for all M rows while it is in cache. B is never copied.
#include "ops/gemm.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>

#include "core/check.h"
#include "core/parallel.h"
#include "ops/gemm_kernels.h"

namespace reslens::ops {
namespace detail {
namespace {

// Bytes of A one row block may occupy. A block is re-read from cache for every column tile, so it
// should sit in L2 (1-2 MiB per core on current x86 parts; smaller L2s still keep most of it in L3).
constexpr int64_t kRowBlockBytes = int64_t{1} << 20;

// Below this many multiply-adds a single thread is faster than waking the pool.
constexpr int64_t kMinParallelFmas = int64_t{1} << 18;

// ---- scalar reference path --------------------------------------------------------------------

// The defining sequence of gemm.h, one element at a time.
float dot_scalar(int64_t K, const float* a, const float* b) {
  float lane[kGemmLanes] = {};  // [16]: partial sums, lane j over k = j (mod 16)
  int64_t k = 0;
  for (; k + kGemmLanes <= K; k += kGemmLanes)
    for (int j = 0; j < kGemmLanes; ++j) lane[j] = std::fma(a[k + j], b[k + j], lane[j]);
  for (int j = 0; k + j < K; ++j) lane[j] = std::fma(a[k + j], b[k + j], lane[j]);
  return reduce_lanes(lane);
}

void scalar_tile(int64_t K, const float* A, int64_t /*lda*/, const float* B, int64_t /*ldb*/,
                 float* C, int64_t /*ldc*/, bool accumulate) {
  const float sum = dot_scalar(K, A, B);
  *C = accumulate ? *C + sum : sum;
}

constexpr TileSet make_scalar_tiles() {
  TileSet t;
  t.rows = 1;
  t.cols[1] = 1;
  t.fn[1][1] = &scalar_tile;
  return t;
}
constexpr TileSet kScalarTiles = make_scalar_tiles();

// ---- dispatch -----------------------------------------------------------------------------------

std::atomic<int> g_isa_limit{static_cast<int>(GemmIsa::avx512)};
std::atomic<bool> g_force_scalar{false};

GemmIsa detect_best_isa() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (avx512_tiles() != nullptr && __builtin_cpu_supports("avx512f")) return GemmIsa::avx512;
  if (avx2_tiles() != nullptr && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return GemmIsa::avx2;
#endif
  return GemmIsa::scalar;
}

const TileSet& tiles_for(GemmIsa isa) {
  switch (isa) {
    case GemmIsa::avx512:
      return *avx512_tiles();
    case GemmIsa::avx2:
      return *avx2_tiles();
    case GemmIsa::scalar:
      break;
  }
  return kScalarTiles;
}

struct Problem {
  int64_t M, N, K;
  const float* A;  // [M, K], row stride lda
  int64_t lda;
  const float* B;  // [N, K], row stride ldb
  int64_t ldb;
  float* C;  // [M, N], row stride ldc
  int64_t ldc;
  bool accumulate;
};

// Runs columns [n_begin, n_end) of C for all rows, in tiles of rm x rn (see the loop order above).
void run_columns(const TileSet& ts, const Problem& p, int64_t rm, int64_t rn, int64_t n_begin,
                 int64_t n_end) {
  const int64_t row_bytes = std::max<int64_t>(p.K, 1) * static_cast<int64_t>(sizeof(float));
  const int64_t mb = std::max<int64_t>(rm, kRowBlockBytes / row_bytes / rm * rm);
  for (int64_t m0 = 0; m0 < p.M; m0 += mb) {
    const int64_t m1 = std::min(p.M, m0 + mb);
    for (int64_t n0 = n_begin; n0 < n_end; n0 += rn) {
      const int64_t cn = std::min(rn, n_end - n0);
      const float* b = p.B + n0 * p.ldb;
      for (int64_t i0 = m0; i0 < m1; i0 += rm) {
        const int64_t cm = std::min(rm, m1 - i0);
        const TileFn fn = ts.fn[cm][cn];
        fn(p.K, p.A + i0 * p.lda, p.lda, b, p.ldb, p.C + i0 * p.ldc + n0, p.ldc, p.accumulate);
      }
    }
  }
}

void run(const Problem& p, int n_threads) {
  RESLENS_CHECK(p.M >= 0 && p.N >= 0 && p.K >= 0, "matmul_nt: negative size");
  if (p.M == 0 || p.N == 0) return;
  RESLENS_CHECK(p.C != nullptr && p.ldc >= p.N, "matmul_nt: bad C or ldc");
  RESLENS_CHECK(p.K == 0 || (p.A != nullptr && p.B != nullptr), "matmul_nt: null A or B");
  RESLENS_CHECK(p.M == 1 || p.lda >= p.K, "matmul_nt: lda < K");
  RESLENS_CHECK(p.N == 1 || p.ldb >= p.K, "matmul_nt: ldb < K");

  const TileSet& ts = tiles_for(gemm_active_isa());
  const int64_t rm = std::min<int64_t>(ts.rows, p.M);
  const int64_t rn = ts.cols[rm];
  const int64_t n_tiles = (p.N + rn - 1) / rn;

  if (n_threads <= 0) n_threads = hardware_threads();
  if (p.M * p.N * std::max<int64_t>(p.K, 1) < kMinParallelFmas) n_threads = 1;
  // Threads own disjoint column ranges of C; each element is computed whole by one thread, so the
  // split cannot change any result.
  parallel_for(n_threads, n_tiles, [&](int64_t t0, int64_t t1) {
    run_columns(ts, p, rm, rn, t0 * rn, std::min(p.N, t1 * rn));
  });
}

}  // namespace

GemmIsa gemm_best_isa() {
  static const GemmIsa best = detect_best_isa();
  return best;
}

void set_gemm_isa_limit(GemmIsa limit) { g_isa_limit.store(static_cast<int>(limit)); }

GemmIsa gemm_active_isa() {
  if (g_force_scalar.load()) return GemmIsa::scalar;
  const int best = static_cast<int>(gemm_best_isa());
  return static_cast<GemmIsa>(std::min(best, g_isa_limit.load()));
}

void set_force_scalar(bool force) { g_force_scalar.store(force); }

}  // namespace detail

void matmul_nt(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
               int64_t ldb, float* C, int64_t ldc, int n_threads) {
  detail::run({M, N, K, A, lda, B, ldb, C, ldc, false}, n_threads);
}

void matmul_nt_accumulate(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                          const float* B, int64_t ldb, float* C, int64_t ldc, int n_threads) {
  detail::run({M, N, K, A, lda, B, ldb, C, ldc, true}, n_threads);
}

}  // namespace reslens::ops
