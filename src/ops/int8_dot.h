// Exact integer dot products of int8 rows with many short vectors: the kernel behind explain's
// sketched projections (analysis/projection_sketch.h), where a vector's projection onto the whole
// vocabulary is wanted only to a known error, at a quarter of a float32 GEMM's cost.
//
// Every result is an exact int32 (|sum| <= 255 * 127 * K < 2^31 for K <= 66000), so the AVX-512
// VNNI path, the portable path, the thread count and the tile order all give the same numbers.
#pragma once

#include <cstdint>
#include <vector>

namespace reslens::ops {

/// An [n, k] int8 matrix packed for the kernel: blocks of 16 rows x 4 columns, 64 bytes each, laid
/// out [n_pad / 16][k_pad / 4][16 rows][4 columns] (zeros past n and k), plus each row's sum.
struct Int8Rows {
  int64_t n = 0, k = 0;          ///< logical shape
  int64_t n_pad = 0, k_pad = 0;  ///< n rounded up to kTileRows, k to 4
  std::vector<int8_t> packed;    ///< [n_pad * k_pad]
  std::vector<int32_t> row_sum;  ///< [n_pad] sum_i rows[j, i] (0 past n)
  /// Rows per tile of int8_dot_tile.
  static constexpr int64_t kTileRows = 64;
  int64_t n_tiles() const { return n_pad / kTileRows; }
};

/// Packs codes [n, k] (row stride ld) into an Int8Rows.
Int8Rows pack_int8_rows(const int8_t* codes, int64_t n, int64_t k, int64_t ld);

/// out[v, t] = sum_i rows[tile * 64 + t, i] * (xs[v, i] - 128) for v < m, t < 64, exactly.
/// xs: [m, rows.k_pad] uint8 (value + 128; entries past k are ignored); out: [m, 64].
void int8_dot_tile(const Int8Rows& rows, int64_t tile, const uint8_t* xs, int64_t m, int32_t* out);

namespace detail {
/// Whether int8_dot_tile runs the AVX-512 VNNI kernel now (the CPU has it and set_gemm_isa_limit
/// allows AVX-512); otherwise it runs the portable loops, with the same results.
bool int8_dot_uses_vnni();
}  // namespace detail

}  // namespace reslens::ops
