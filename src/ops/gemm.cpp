// GEMM driver: picks the instruction set at run time, cuts C into tiles, spreads column blocks over
// threads, and holds the portable scalar kernel that defines the arithmetic the SIMD kernels copy.
//
// Each thread owns a contiguous range of columns of C (rows of B). Within it the loop order depends
// on whether all of A fits in half of L2 (the other half is for the B rows in flight):
//   A fits (short prompts, decode, K = 768 at M = 128):
//     for each tile of rn columns      (rn rows of B: read from memory once, then from L1/L2)
//       for each tile of rm rows       (A re-read from L2)
//         tile kernel over the full K
//   A does not fit (long prompts with large K):
//     for each block of nb columns     (nb rows of B, sized to half of L2: read from memory once)
//       for each tile of rm rows       (rm rows of A: read from L3 once per block, then from L1/L2)
//         for each tile of rn columns in the block
//           tile kernel over the full K
// Where A does not fit and B is kept in its file's encoding, the product is also cut along K, so that
// a tile's decoded rows of B stay in L1 (run_encoded_panels).
// Either way every row of B comes from memory exactly once per call, which is what bounds decode,
// and B is never copied. Tiles are 4 x 6 (AVX-512) or 3 x 4 (AVX2) for large M; for M below the
// tile height one row tile holds all of M and the tile is wider (1 x 16 for decode), see the
// kernel files.
#include "ops/gemm.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <new>
#include <numeric>
#include <vector>

#if __has_include(<unistd.h>)
#include <unistd.h>
#endif

#include "core/check.h"
#include "core/parallel.h"
#include "ops/gemm_kernels.h"

namespace reslens::ops {
namespace detail {
namespace {

std::atomic<int64_t> g_l2_override{0};

// Bytes per core of cache level 1 (data) or 2 as sysconf reports them (Linux), clamped to [lo, hi];
// `fallback` where it reports none. Only speed depends on them: tiles are computed the same way
// wherever the block boundaries fall.
int64_t cache_bytes(int level, int64_t lo, int64_t hi, int64_t fallback) {
  int64_t b = 0;
#if defined(_SC_LEVEL1_DCACHE_SIZE) && defined(_SC_LEVEL2_CACHE_SIZE)
  b = sysconf(level == 1 ? _SC_LEVEL1_DCACHE_SIZE : _SC_LEVEL2_CACHE_SIZE);
#else
  (void)level;
#endif
  return b > 0 ? std::clamp(b, lo, hi) : fallback;
}

// L2 for blocking (else a common 1 MiB).
int64_t l2_bytes() {
  const int64_t forced = g_l2_override.load();
  if (forced > 0) return forced;
  static const int64_t detected = cache_bytes(2, int64_t{256} << 10, int64_t{8} << 20, int64_t{1} << 20);
  return detected;
}

// How far along k to prefetch B rows that are being re-read from L2. Measured on Zen 4: +10-15% at
// M >= 32 with K = 2048-3072; prefetching A as well, or further ahead, was slower.
constexpr std::uintptr_t kPrefetchAheadBytes = 512;

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
                 float* C, int64_t /*ldc*/, bool accumulate, std::uintptr_t /*pf*/) {
  const float sum = dot_scalar(K, A, B);
  *C = accumulate ? *C + sum : sum;
}

// The same sequence one block of K at a time (PartTileFn): lane j of acc continues over this block's
// k = j, j + 16, ... (block starts are multiples of 16).
void scalar_part(int64_t K, const float* A, int64_t /*lda*/, const float* B, int64_t /*ldb*/, float* acc,
                 bool first, bool last, float* C, int64_t /*ldc*/, bool accumulate) {
  float lane[kGemmLanes] = {};  // [16]
  if (!first) std::copy(acc, acc + kGemmLanes, lane);
  for (int64_t k = 0; k < K; ++k) lane[k % kGemmLanes] = std::fma(A[k], B[k], lane[k % kGemmLanes]);
  if (!last) {
    std::copy(lane, lane + kGemmLanes, acc);
    return;
  }
  const float sum = reduce_lanes(lane);
  *C = accumulate ? *C + sum : sum;
}

constexpr TileSet make_scalar_tiles() {
  TileSet t;
  t.rows = 1;
  t.cols[1] = 1;
  for (auto& mode : t.fn) mode[1][1] = &scalar_tile;
  t.part[1][1] = &scalar_part;
  t.load_bytes = sizeof(float);  // one float at a time: never straddles
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
  const float* B;  // [N, K], row stride ldb (null when encoded)
  int64_t ldb;
  float* C;  // [M, N], row stride ldc
  int64_t ldc;
  bool accumulate;
  const EncodedRows* encoded = nullptr;  // B as stored, decoded tile by tile (run_encoded_columns)
};

std::uintptr_t address_of_row(const float* base, int64_t row, int64_t ld) {
  return reinterpret_cast<std::uintptr_t>(base + row * ld);
}

// ---- alignment ----------------------------------------------------------------------------------
// A 512-bit load that straddles two cache lines costs two. Rows of activations in std::vector
// buffers start 16 bytes into a line and a GGUF file's tensors 32 (its default alignment), so every
// load of such a row straddles: on the Intel Xeon of the benchmarks, C[128, 1024] = A[128, 768]
// B[1024, 768]^T ran at 127 GFLOP/s with both operands 16 or 32 bytes off and 191 with both aligned.
// Copies of the rows into aligned scratch fix it without changing a bit: the kernels compute each
// element from the same values in the same order wherever they read them.
constexpr int64_t kLineFloats = 16;  // floats per 64-byte cache line

// Whether no load of the tiles' width (TileSet::load_bytes) straddles a cache line in rows that start
// at base, ld floats apart: with 32-byte loads (AVX2) a GGUF tensor's rows, 32 bytes into a line, are
// fine, and copying them only cost time (the W_U rows copied for every explain's projections took 8%
// of an answer's time on the AMD Zen 3 host).
bool rows_aligned(const float* base, int64_t rows, int64_t ld, int64_t load_bytes) {
  const auto bytes = static_cast<std::uintptr_t>(load_bytes);
  return reinterpret_cast<std::uintptr_t>(base) % bytes == 0 &&
         (rows <= 1 || (ld * static_cast<int64_t>(sizeof(float))) % load_bytes == 0);
}

int64_t aligned_ld(int64_t K) { return (K + kLineFloats - 1) / kLineFloats * kLineFloats; }

// Slot's 64-byte-aligned scratch on this thread, grown as needed and kept for the thread's life
// (slot 0: the copy of A, up to 1 MiB, a call makes on its calling thread, read by every worker while the call
// runs; slot 1: a worker's copy or decoding of the B rows in use; slot 2: the K-blocked path's carried lanes).
template <int Slot>
float* thread_scratch(int64_t floats) {
  struct Buffer {
    float* p = nullptr;
    int64_t n = 0;
    Buffer() = default;
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    ~Buffer() { ::operator delete(p, std::align_val_t{64}); }
  };
  thread_local Buffer buf;
  if (buf.n < floats) {
    ::operator delete(buf.p, std::align_val_t{64});
    buf.p = nullptr;
    buf.n = 0;
    buf.p = static_cast<float*>(::operator new(static_cast<size_t>(floats) * sizeof(float), std::align_val_t{64}));
    buf.n = floats;
  }
  return buf.p;
}

// Rows [0, rows) of src (stride ld) copied to dst (stride dst_ld), K floats each.
void copy_rows(const float* src, int64_t ld, int64_t rows, int64_t K, float* dst, int64_t dst_ld) {
  for (int64_t r = 0; r < rows; ++r) std::copy(src + r * ld, src + r * ld + K, dst + r * dst_ld);
}

// The tile of rows [i0, i0 + cm) and columns [n0, n0 + cn) of C, reading B's rows n0.. at b (stride
// ldb): p.B's own, or a copy.
void run_tile(const TileSet& ts, const Problem& p, int64_t i0, int64_t cm, int64_t n0, int64_t cn, const float* b,
              int64_t ldb, Prefetch mode, std::uintptr_t pf) {
  ts.fn[static_cast<int>(mode)][cm][cn](p.K, p.A + i0 * p.lda, p.lda, b, ldb, p.C + i0 * p.ldc + n0, p.ldc,
                                         p.accumulate, pf);
}

// Runs columns [n_begin, n_end) of C for all rows, in tiles of at most rm x rn, in the loop order
// described at the top of this file.
void run_columns(const TileSet& ts, const Problem& p, int64_t rm, int64_t rn, int64_t n_begin,
                 int64_t n_end) {
  const int64_t budget = l2_bytes() / 2;
  const int64_t row_bytes = std::max<int64_t>(p.K, 1) * static_cast<int64_t>(sizeof(float));
  // B rows that straddle cache lines are copied to aligned scratch where at least four row tiles
  // read them: a copy costs a pass over rows then read M / rm times (M = 128, K = 768: 127 -> 180
  // GFLOP/s on one core; M = 32: 110 -> 137), but with two row tiles (M = 8: 94 -> 78) or one (decode)
  // it costs more than the straddling loads.
  const bool copy_b = p.M >= 4 * rm && p.K >= kLineFloats && !rows_aligned(p.B, p.N, p.ldb, ts.load_bytes);
  const int64_t ldc_b = aligned_ld(p.K);
  if (p.M * row_bytes <= budget) {
    float* tile_b = copy_b ? thread_scratch<1>(rn * ldc_b) : nullptr;  // [rn, ldc_b]
    for (int64_t n0 = n_begin; n0 < n_end; n0 += rn) {
      const int64_t cn = std::min(rn, n_end - n0);
      const std::uintptr_t b_tile = address_of_row(p.B, n0, p.ldb);
      const std::uintptr_t b_next = n0 + rn < n_end ? address_of_row(p.B, n0 + rn, p.ldb) : 0;
      const float* b = p.B + n0 * p.ldb;  // [cn, ldb]: this tile's rows of B, or their copy
      int64_t ldb = p.ldb;
      if (copy_b) {
        copy_rows(b, p.ldb, cn, p.K, tile_b, ldc_b);
        b = tile_b, ldb = ldc_b;
      }
      for (int64_t i0 = 0; i0 < p.M; i0 += rm) {
        // The last row tile over this B tile fetches the next B tile into L2 meanwhile, so memory
        // keeps streaming while the FMAs run (+15-40% at M = 8, +25% in decode on one core). The
        // other row tiles re-read this B tile and prefetch it along k into L1 (a copy is there).
        if (i0 + rm >= p.M)
          run_tile(ts, p, i0, p.M - i0, n0, cn, b, ldb, b_next != 0 ? Prefetch::l2 : Prefetch::none, b_next);
        else if (copy_b)
          run_tile(ts, p, i0, rm, n0, cn, b, ldb, Prefetch::none, 0);
        else
          run_tile(ts, p, i0, rm, n0, cn, b, ldb, Prefetch::l1, b_tile + kPrefetchAheadBytes);
      }
    }
    return;
  }
  const int64_t nb = std::max<int64_t>(rn, budget / row_bytes / rn * rn);
  float* block_b = copy_b ? thread_scratch<1>(nb * ldc_b) : nullptr;  // [nb, ldc_b]
  for (int64_t b0 = n_begin; b0 < n_end; b0 += nb) {
    const int64_t b1 = std::min(n_end, b0 + nb);
    const float* b = p.B + b0 * p.ldb;  // [b1 - b0, ldb]: this block's rows of B, or their copy
    int64_t ldb = p.ldb;
    if (copy_b) {
      copy_rows(b, p.ldb, b1 - b0, p.K, block_b, ldc_b);
      b = block_b, ldb = ldc_b;
    }
    for (int64_t i0 = 0; i0 < p.M; i0 += rm) {
      const int64_t cm = std::min(rm, p.M - i0);
      for (int64_t n0 = b0; n0 < b1; n0 += rn) {
        const float* bt = b + (n0 - b0) * ldb;
        run_tile(ts, p, i0, cm, n0, std::min(rn, b1 - n0), bt, ldb, Prefetch::l1,
                 reinterpret_cast<std::uintptr_t>(bt) + kPrefetchAheadBytes);
      }
    }
  }
}

// Rows [n0, n0 + count) of an encoded B as float32 in `out` ([count, K]).
void decode_rows(const Problem& p, int64_t n0, int64_t count, float* out) {
  const EncodedRows& e = *p.encoded;
  e.decode(out, std::span<const uint8_t>(e.data + n0 * e.row_bytes, static_cast<size_t>(count * e.row_bytes)),
           count * p.K);
}

// Bytes one block of K may take in L1: the rn decoded rows of B plus A's M rows, kc floats each
// (32 KB of a 48 KiB L1d, the rest for the accumulators and the stored bytes being decoded), so every
// decoded value is written and read back in L1, not L2.
constexpr int64_t kKBlockL1Bytes = int64_t{32} << 10;

// A of at most this many rows goes the K-blocked way (run_encoded_k_blocks): there each decoded value
// feeds at most 16 multiply-adds, so writing it to L2 and reading it back (twice for M = 5..8, once
// per row tile) costs as much as the FMAs; above, the whole-row decode is amortized over the rows.
constexpr int64_t kMaxKBlockedRows = 16;

// A block of K: a multiple of 16 (the lanes) and of the encoding's block, as large as `bytes` allows
// for `rows` rows of floats (at least one such multiple, at most K rounded up to one).
int64_t k_block(int64_t bytes, int64_t rows, int64_t K, int64_t block_values) {
  const int64_t unit = std::lcm(int64_t{kGemmLanes}, block_values);
  const int64_t fit = bytes / (rows * static_cast<int64_t>(sizeof(float))) / unit * unit;
  const int64_t k_units = (K + unit - 1) / unit * unit;
  return std::min(std::max(unit, fit), k_units);
}

// The K block for run_encoded_k_blocks: kKBlockL1Bytes for rn rows of B and M rows of A: 480 values of
// F16 at M = 1 on AVX-512 (rn = 16), 576 at M = 8 (rn = 6), 256 for the k-quants.
int64_t k_block_values(int64_t M, int64_t K, int64_t rn, int64_t block_values) {
  return k_block(kKBlockL1Bytes, rn + M, K, block_values);
}

// Values [k0, k0 + kl) of B's stored row n as float32 in `out` ([kl]; k0 and kl multiples of the
// encoding's block, or kl reaching the end of the row).
void decode_k_block(const EncodedRows& e, int64_t n, int64_t k0, int64_t kl, float* out) {
  const int64_t byte0 = k0 / e.block_values * e.block_bytes;
  e.decode(out, std::span<const uint8_t>(e.data + n * e.row_bytes + byte0, static_cast<size_t>(kl / e.block_values * e.block_bytes)), kl);
}

// run_encoded_columns when A is at most kMaxKBlockedRows rows: for each tile of rn columns, the rn
// stored rows are decoded a block of kc values at a time into an L1-sized scratch, and every row tile
// runs over that block with its accumulators carried in memory from block to block (PartTileFn), so
// each lane's chain continues in k order and C gets exactly the bits of one pass over the whole K.
void run_encoded_k_blocks(const TileSet& ts, const Problem& p, int64_t rm, int64_t rn, int64_t n_begin,
                          int64_t n_end) {
  const EncodedRows& e = *p.encoded;
  const int64_t kc = k_block_values(p.M, p.K, rn, e.block_values);
  const int64_t row_tiles = (p.M + rm - 1) / rm;
  // On cache lines (thread_scratch), so the tiles' loads of B and of the carried lanes never straddle.
  float* b = thread_scratch<1>(rn * kc);                              // [rn, kc]: decoded rows of the current block of K
  float* acc = thread_scratch<2>(row_tiles * rm * rn * kGemmLanes);  // [row tiles][rm * rn][16]: each tile's lanes between blocks
  for (int64_t n0 = n_begin; n0 < n_end; n0 += rn) {
    const int64_t cn = std::min(rn, n_end - n0);
    for (int64_t k0 = 0; k0 < p.K; k0 += kc) {
      const int64_t kl = std::min(kc, p.K - k0);  // a multiple of block_values: K is one
      // Meanwhile the bytes the next block will decode are fetched into L2: the rest of these rows,
      // then the next tile's rows (the loop reads them from memory exactly once, in that order).
      // (The next tile's rows only when there is one: a pointer past them would be undefined.)
      const bool last_block = k0 + kl >= p.K;
      const int64_t next_rows = last_block ? std::min(rn, n_end - n0 - rn) : cn;
      const uint8_t* next = next_rows <= 0 ? nullptr
                            : last_block   ? e.data + (n0 + rn) * e.row_bytes
                                           : e.data + n0 * e.row_bytes + (k0 + kl) / e.block_values * e.block_bytes;
      const int64_t next_bytes = last_block ? std::min(kc, p.K) / e.block_values * e.block_bytes
                                            : std::min(kc, p.K - k0 - kl) / e.block_values * e.block_bytes;
      for (int64_t j = 0; j < cn; ++j) {
        decode_k_block(e, n0 + j, k0, kl, b + j * kc);
        if (j < next_rows)
          for (int64_t off = 0; off < next_bytes; off += 64) __builtin_prefetch(next + j * e.row_bytes + off, 0, 2);
      }
      const bool first = k0 == 0, last = k0 + kl == p.K;
      for (int64_t t = 0; t < row_tiles; ++t) {
        const int64_t i0 = t * rm, cm = std::min(rm, p.M - i0);
        ts.part[cm][cn](kl, p.A + i0 * p.lda + k0, p.lda, b, kc, acc + t * rm * rn * kGemmLanes, first, last,
                        p.C + i0 * p.ldc + n0, p.ldc, p.accumulate);
      }
    }
  }
}

// L1d for the panels (else 48 KiB, the Intel host's).
int64_t l1_bytes() {
  static const int64_t detected = cache_bytes(1, int64_t{16} << 10, int64_t{128} << 10, int64_t{48} << 10);
  return detected;
}

// The K block of run_encoded_panels: rn decoded rows of B in half of L1d, where every row tile of A
// reads them again while A's rows stream past from L2; a multiple of 16 and of the encoding's block
// (1024 values at rn = 6 for F16, Q8_0 and the k-quants with a 48 KiB L1d). Measured on the Intel host
// (48 KiB): 12 KB and 36 KB were slower than 24, and so were the 3 x 8 and 2 x 12 tiles (fewer loads
// of A, more of B); on the AMD Zen 3 host (32 KiB), 7B shapes at 128 tokens ran 12-23% faster with 16
// KB than with 24 on most of F16, Q8_0 and Q4_K (3 interleaved rounds of bench_gemm_encoded).
int64_t panel_l1_bytes() { return l1_bytes() / 2; }

// Prefetches into L2 the stored bytes of values [k0, k0 + kl) of B's rows [n0, n0 + rows), spread
// over `calls` steps: each step() issues the next share of the lines, row by row. Addresses are
// integers: a row's span rounded to whole lines may end past the matrix, where a prefetch is harmless
// but forming a pointer would be undefined behaviour.
class PanelPrefetch {
 public:
  PanelPrefetch(const EncodedRows& e, int64_t n0, int64_t rows, int64_t k0, int64_t kl, int64_t calls)
      : base_(reinterpret_cast<std::uintptr_t>(e.data) + static_cast<std::uintptr_t>(k0 / e.block_values * e.block_bytes)),
        row_bytes_(static_cast<std::uintptr_t>(e.row_bytes)), n0_(n0), rows_(rows),
        // +1: a span that does not start on a line touches one line more than its length in lines
        span_lines_(kl / e.block_values * e.block_bytes / kLineBytes + 1),
        per_step_((rows * span_lines_ + std::max<int64_t>(calls, 1) - 1) / std::max<int64_t>(calls, 1)) {}

  void step() {
    for (int64_t i = 0; i < per_step_ && row_ < rows_; ++i) {
      const std::uintptr_t line = base_ + static_cast<std::uintptr_t>(n0_ + row_) * row_bytes_ +
                                  static_cast<std::uintptr_t>(line_ * kLineBytes);
      prefetch_line(line);
      if (++line_ == span_lines_) line_ = 0, ++row_;
    }
  }

 private:
  static constexpr int64_t kLineBytes = 64;
  static void prefetch_line(std::uintptr_t line) {
    __builtin_prefetch(reinterpret_cast<const void*>(line), 0, 2);  // 2: into L2 and L3, not L1
  }
  std::uintptr_t base_, row_bytes_;
  int64_t n0_, rows_, span_lines_, per_step_;
  int64_t row_ = 0, line_ = 0;
};

// run_encoded_columns for an A that does not fit in half of L2 and a B with its block given: the product is
// cut along K as well, so that the operands of each tile call sit in L1 and L2 instead of streaming
// whole K-long rows of A and B from L2 and L3 (at K = 4096 one 4 x 6 tile over the full K reads 160
// KB for 3,072 cycles of FMAs, more than L2 delivers). Loop order:
//   for each block of nb columns              (their stored rows read from memory once per A block)
//     for each block of mb rows of A          (mb x kc floats of A: an eighth of L2)
//       for each block of kc values of K      (nb rows x kc decoded into L2 scratch)
//         for each tile of rn columns         (rn x kc decoded floats: L1)
//           for each tile of rm rows          (A's rm x kc from L2; the lanes carried in memory)
// The lanes of the mb x nb elements (mb x nb x 64 bytes, an eighth of L2) continue from K block to K
// block in k order (PartTileFn), so C gets the bits of one pass over the whole K.
void run_encoded_panels(const TileSet& ts, const Problem& p, int64_t rm, int64_t rn, int64_t n_begin,
                        int64_t n_end) {
  const EncodedRows& e = *p.encoded;
  const int64_t kc = k_block(panel_l1_bytes(), rn, p.K, e.block_values);
  // A's block, the carried lanes and the decoded rows take at most an eighth of L2 each: with a
  // quarter each, 7B shapes at 128 tokens ran 5-10% slower when the forward pass also wrote its
  // captures (and no faster without). (At least one tile of each.)
  // One cache line more per decoded row: kc x 4 bytes is a multiple of 4 KB, so unpadded the rn rows
  // would share L1 sets at every k (as A's rows of a 4096-wide A do).
  const int64_t ldb = kc + kLineFloats;
  const int64_t eighth = l2_bytes() / 8;
  const int64_t m_tiles = (p.M + rm - 1) / rm;
  const int64_t mb = std::min(m_tiles, std::max<int64_t>(1, eighth / (kc * static_cast<int64_t>(sizeof(float)) * rm))) * rm;
  const int64_t lane_bytes = kGemmLanes * static_cast<int64_t>(sizeof(float));
  const int64_t nb_rows = std::min(eighth / (mb * lane_bytes), eighth / (ldb * static_cast<int64_t>(sizeof(float))));
  const int64_t nb = std::max<int64_t>(1, nb_rows / rn) * rn;
  float* b = thread_scratch<1>(nb * ldb);                // [nb, ldb]: the block's rows of B, decoded for one K block
  float* acc = thread_scratch<2>(nb * mb * kGemmLanes);  // [nb / rn column tiles][mb / rm row tiles][rm * rn][16]
  const int64_t calls = ((nb + rn - 1) / rn) * ((mb + rm - 1) / rm);  // tile calls per (full) K block
  for (int64_t b0 = n_begin; b0 < n_end; b0 += nb) {
    const int64_t b1 = std::min(n_end, b0 + nb);
    for (int64_t m0 = 0; m0 < p.M; m0 += mb) {
      const int64_t m1 = std::min(p.M, m0 + mb);
      for (int64_t k0 = 0; k0 < p.K; k0 += kc) {
        const int64_t kl = std::min(kc, p.K - k0);  // a multiple of block_values: K is one
        for (int64_t n = b0; n < b1; ++n) decode_k_block(e, n, k0, kl, b + (n - b0) * ldb);
        const bool first = k0 == 0, last = k0 + kl == p.K;
        // While this block's tiles run, the stored bytes the next decode reads are fetched into L2, a
        // few lines before each tile call, so that decoding does not wait on memory (it did: at 128
        // tokens on 7B F16 shapes the decode, mostly its first loads, was 29% of the product's time).
        // Next: the same rows' next K block; after the last K block, the same rows from k = 0 for
        // the next block of A's rows; after that, the next block of rows. (Only rows that exist.)
        const bool next_m = last && m0 + mb < p.M;
        const int64_t next_k0 = last ? 0 : k0 + kl;
        const int64_t next_b0 = last && !next_m ? b1 : b0;
        const int64_t next_rows = std::min(nb, n_end - next_b0);
        const int64_t next_kl = std::min(kc, p.K - next_k0);
        PanelPrefetch ahead(e, next_b0, std::max<int64_t>(next_rows, 0), next_k0, next_kl, calls);
        for (int64_t n0 = b0; n0 < b1; n0 += rn) {
          const int64_t cn = std::min(rn, b1 - n0);
          float* tile_acc = acc + (n0 - b0) * mb * kGemmLanes;  // [mb / rm][rm * rn][16]
          for (int64_t i0 = m0; i0 < m1; i0 += rm) {
            ahead.step();
            ts.part[std::min(rm, m1 - i0)][cn](kl, p.A + i0 * p.lda + k0, p.lda, b + (n0 - b0) * ldb, ldb,
                                               tile_acc + (i0 - m0) * rn * kGemmLanes, first, last,
                                               p.C + i0 * p.ldc + n0, p.ldc, p.accumulate);
          }
        }
      }
    }
  }
}

// run_columns for an encoded B, in the same two loop orders: the rows of B a step reads (one tile of rn
// columns when A fits in half of L2, else a block of nb) are decoded first into this thread's float32
// scratch, from which the tile kernels then read them exactly as they read a float32 B.
void run_encoded_columns(const TileSet& ts, const Problem& p, int64_t rm, int64_t rn, int64_t n_begin, int64_t n_end) {
  const int64_t budget = l2_bytes() / 2;
  const int64_t row_bytes = std::max<int64_t>(p.K, 1) * static_cast<int64_t>(sizeof(float));
  const bool a_fits = p.M * row_bytes <= budget;
  const int64_t step = a_fits ? rn : std::max<int64_t>(rn, budget / row_bytes / rn * rn);
  float* b = thread_scratch<1>(step * p.K);  // [rows decoded in one step, K], on a cache line
  for (int64_t b0 = n_begin; b0 < n_end; b0 += step) {
    const int64_t b1 = std::min(n_end, b0 + step);
    decode_rows(p, b0, b1 - b0, b);
    auto tile = [&](int64_t i0, int64_t cm, int64_t n0, int64_t cn, Prefetch mode, std::uintptr_t pf) {
      ts.fn[static_cast<int>(mode)][cm][cn](p.K, p.A + i0 * p.lda, p.lda, b + (n0 - b0) * p.K, p.K,
                                             p.C + i0 * p.ldc + n0, p.ldc, p.accumulate, pf);
    };
    auto scratch_ahead = [&](int64_t n0) { return address_of_row(b, n0 - b0, p.K) + kPrefetchAheadBytes; };
    if (a_fits) {
      // As in run_columns, the last row tile fetches the next step's stored rows into L2 while its
      // FMAs run, so the next decode reads them from cache instead of waiting on memory. The
      // kernel's prefetch pattern walks rn x K floats from there, which covers the next step's
      // rn x row_bytes and a few steps beyond (harmless: they are read next).
      const std::uintptr_t next =
          b1 < n_end ? reinterpret_cast<std::uintptr_t>(p.encoded->data + b1 * p.encoded->row_bytes) : 0;
      for (int64_t i0 = 0; i0 < p.M; i0 += rm) {
        if (i0 + rm >= p.M && next != 0) tile(i0, p.M - i0, b0, b1 - b0, Prefetch::l2, next);
        else tile(i0, std::min(rm, p.M - i0), b0, b1 - b0, Prefetch::l1, scratch_ahead(b0));
      }
      continue;
    }
    for (int64_t i0 = 0; i0 < p.M; i0 += rm) {
      const int64_t cm = std::min(rm, p.M - i0);
      for (int64_t n0 = b0; n0 < b1; n0 += rn) tile(i0, cm, n0, std::min(rn, b1 - n0), Prefetch::l1, scratch_ahead(n0));
    }
  }
}

void run(const Problem& p, int n_threads) {
  RESLENS_CHECK(p.M >= 0 && p.N >= 0 && p.K >= 0, "matmul_nt: negative size");
  if (p.M == 0 || p.N == 0) return;
  RESLENS_CHECK(p.C != nullptr && (p.M == 1 || p.ldc >= p.N), "matmul_nt: null C or ldc < N");
  RESLENS_CHECK(p.K == 0 || (p.A != nullptr && (p.B != nullptr || p.encoded != nullptr)), "matmul_nt: null A or B");
  RESLENS_CHECK(p.M == 1 || p.lda >= p.K, "matmul_nt: lda < K");
  RESLENS_CHECK(p.encoded != nullptr || p.N == 1 || p.ldb >= p.K, "matmul_nt: ldb < K");
  RESLENS_CHECK(p.encoded == nullptr || (p.encoded->data != nullptr && p.encoded->decode != nullptr),
                "matmul_nt_encoded: no rows or no decoder");

  const TileSet& ts = tiles_for(gemm_active_isa());
  const int64_t rm = std::min<int64_t>(ts.rows, p.M);
  const int64_t rn = ts.cols[rm];
  const int64_t n_tiles = (p.N + rn - 1) / rn;

  // A B whose encoding says its block, and every tile shape has its K-block kernel: the product can
  // be cut along K. With few rows of A it is (run_encoded_k_blocks); so it is with an A too long for
  // half of L2 (run_encoded_panels). Where A fits, run_encoded_columns keeps it in L2 and was as fast
  // or faster (TinyLlama shapes at 32 and 128 tokens).
  const bool k_cuttable = p.encoded != nullptr && p.encoded->block_values > 0 && p.encoded->block_bytes > 0 &&
                          p.K > 0 && ts.part[rm][rn] != nullptr && ts.part[p.M - (p.M - 1) / rm * rm][rn] != nullptr;
  const bool k_blocked = k_cuttable && p.M <= kMaxKBlockedRows;
  const bool panels = k_cuttable && !k_blocked && p.M * p.K * static_cast<int64_t>(sizeof(float)) > l2_bytes() / 2;
  if (n_threads <= 0) n_threads = hardware_threads();
  if (p.M * p.N * std::max<int64_t>(p.K, 1) < kMinParallelFmas) n_threads = 1;
  // A whose rows straddle cache lines is read from an aligned copy (M K floats copied once, against
  // M N K multiply-adds), made here and read by every thread.
  // Up to 1 MiB it lives in the thread's kept scratch; a larger one (a long prompt's rows) is
  // allocated for the call and freed after it, so no thread keeps it.
  Problem q = p;
  struct AlignedDelete {
    void operator()(float* f) const { ::operator delete(f, std::align_val_t{64}); }
  };
  std::unique_ptr<float, AlignedDelete> large;
  if (p.K >= kLineFloats && !rows_aligned(p.A, p.M, p.lda, ts.load_bytes)) {
    q.lda = aligned_ld(p.K);
    const int64_t floats = p.M * q.lda;
    constexpr int64_t kKeptFloats = int64_t{1} << 18;
    if (floats > kKeptFloats) {
      large.reset(static_cast<float*>(::operator new(static_cast<size_t>(floats) * sizeof(float), std::align_val_t{64})));
    }
    float* a = large != nullptr ? large.get() : thread_scratch<0>(floats);  // [M, lda]
    copy_rows(p.A, p.lda, p.M, p.K, a, q.lda);
    q.A = a;
  }
  // Threads own disjoint column ranges of C; each element is computed whole by one thread, so the
  // split cannot change any result.
  parallel_for(n_threads, n_tiles, [&](int64_t t0, int64_t t1) {
    if (k_blocked) run_encoded_k_blocks(ts, q, rm, rn, t0 * rn, std::min(q.N, t1 * rn));
    else if (panels) run_encoded_panels(ts, q, rm, rn, t0 * rn, std::min(q.N, t1 * rn));
    else if (q.encoded != nullptr) run_encoded_columns(ts, q, rm, rn, t0 * rn, std::min(q.N, t1 * rn));
    else run_columns(ts, q, rm, rn, t0 * rn, std::min(q.N, t1 * rn));
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

void set_gemm_l2_bytes(int64_t bytes) { g_l2_override.store(bytes); }

}  // namespace detail

void matmul_nt(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
               int64_t ldb, float* C, int64_t ldc, int n_threads) {
  detail::run({M, N, K, A, lda, B, ldb, C, ldc, false}, n_threads);
}

void matmul_nt_accumulate(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                          const float* B, int64_t ldb, float* C, int64_t ldc, int n_threads) {
  detail::run({M, N, K, A, lda, B, ldb, C, ldc, true}, n_threads);
}

void matmul_nt_encoded(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const EncodedRows& B,
                       float* C, int64_t ldc, int n_threads, bool accumulate) {
  detail::run({M, N, K, A, lda, nullptr, 0, C, ldc, accumulate, &B}, n_threads);
}

}  // namespace reslens::ops
