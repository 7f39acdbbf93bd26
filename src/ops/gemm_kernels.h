// Internal interface between the GEMM driver (gemm.cpp: dispatch, blocking, threads) and the tile
// kernels of each instruction set (gemm.cpp: scalar, gemm_avx2.cpp, gemm_avx512.cpp). Every kernel
// computes each element of its tile with the exact operation sequence documented in gemm.h, so the
// driver may cut the problem into tiles any way it likes without changing a bit of the result.
#pragma once

#include <cstdint>

namespace reslens::ops::detail {

/// Number of partial sums per output element (the "lanes" of gemm.h).
inline constexpr int kGemmLanes = 16;

/// Largest tile the tables can describe.
inline constexpr int kMaxTileRows = 8;
inline constexpr int kMaxTileCols = 16;

/// Software prefetch a tile kernel issues while it runs (kernels may treat it as none): one cache line
/// per row and step at pf + 4 * (j * ldb + k) for its rn rows j as k advances, into L1 or into L2.
/// The driver points pf further along the tile's own rows of B, or at the next tile's rows.
enum class Prefetch { none = 0, l1 = 1, l2 = 2 };
inline constexpr int kPrefetchModes = 3;

/// Computes one rm x rn tile over the full K. A: [rm, K] row stride lda; B: [rn, K] row stride ldb;
/// C: [rm, rn] row stride ldc. accumulate: C += sum instead of C = sum. pf: the prefetch address
/// (see Prefetch), an integer because it may lie past the end of B: a prefetch never faults, but
/// forming such a pointer would be undefined behaviour.
using TileFn = void (*)(int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                        float* C, int64_t ldc, bool accumulate, std::uintptr_t pf);

/// One block of K of an rm x rn tile whose accumulators (the 16 lanes of every element, gemm.h) are
/// kept in memory between blocks, so that a K-blocked driver continues every lane's chain in order and
/// gets the bits of one pass over the full K. A: [rm, K] row stride lda (the block's columns); B:
/// [rn, K] row stride ldb; acc: [rm * rn][16] floats, element (i, j) at i * rn + j. first: the lanes
/// start at +0.0f (acc is not read); else they continue from acc. last: the lanes are reduced and
/// written to C ([rm, rn], row stride ldc; += when accumulate); else they are stored back to acc. Only
/// a last block may have K % 16 != 0.
using PartTileFn = void (*)(int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* acc,
                            bool first, bool last, float* C, int64_t ldc, bool accumulate);

/// The tile kernels of one instruction set.
struct TileSet {
  /// Rows of the main tile (RM).
  int rows = 1;
  /// cols[r]: tile width (RN) used when the tiles have r rows, i.e. when M == r < rows, and
  /// cols[rows] for the main tile (whose row remainder tiles reuse that width).
  int cols[kMaxTileRows + 1] = {};
  /// fn[mode][r][c]: kernel for an r x c tile with Prefetch mode; set for 1 <= r <= rows,
  /// 1 <= c <= max(cols[r], cols[rows]).
  TileFn fn[kPrefetchModes][kMaxTileRows + 1][kMaxTileCols + 1] = {};
  /// part[r][c]: the same shapes one K block at a time (PartTileFn); null where a set has none (the
  /// driver then decodes whole rows).
  PartTileFn part[kMaxTileRows + 1][kMaxTileCols + 1] = {};
  /// Bytes of the kernels' widest load: rows whose loads would straddle cache lines are copied to
  /// aligned scratch first (gemm.cpp, rows_aligned).
  int64_t load_bytes = 64;
};

/// Tile kernels per instruction set; nullptr when this build has no such path (non-x86 targets).
/// The caller checks the CPU supports the instruction set before running them.
const TileSet* avx512_tiles();
const TileSet* avx2_tiles();

/// The fixed reduction tree of gemm.h over 16 lanes (scalar form; the SIMD paths do the same adds).
inline float reduce_lanes(const float* lane) {
  float h8[8];  // [8]
  for (int i = 0; i < 8; ++i) h8[i] = lane[i] + lane[i + 8];
  float h4[4];  // [4]
  for (int i = 0; i < 4; ++i) h4[i] = h8[i] + h8[i + 4];
  const float h2_0 = h4[0] + h4[2];
  const float h2_1 = h4[1] + h4[3];
  return h2_0 + h2_1;
}

}  // namespace reslens::ops::detail
