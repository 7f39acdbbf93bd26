// Exact integer dot products of int8 rows with many short vectors: the kernel behind explain's
// sketched projections (analysis/projection_sketch.h), where a vector's projection onto the whole
// vocabulary is wanted only to a known error, at a quarter (VNNI) to a half (AVX2) of the cost of a
// float32 GEMM of the same instruction set.
//
// Every result is an exact int32 (|sum| <= 255 * 127 * K < 2^31 for K <= 66000), so the kernels
// (AVX-512 VNNI, AVX-VNNI, AVX2, the portable loops), the thread count and the tile order all give
// the same numbers.
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

/// Packs codes [n, k] (row stride ld) into an Int8Rows. Codes must lie in [-127, 127] (the AVX2
/// kernel negates them; -128 is refused with InvalidArgument), and k <= 66000.
Int8Rows pack_int8_rows(const int8_t* codes, int64_t n, int64_t k, int64_t ld);

/// out[v, t] = sum_i rows[tile * 64 + t, i] * (xs[v, i] - 128) for v < m, t < 64, exactly.
/// xs: [m, rows.k_pad] uint8 (value + 128; entries past k are ignored); out: [m, 64].
void int8_dot_tile(const Int8Rows& rows, int64_t tile, const uint8_t* xs, int64_t m, int32_t* out);

namespace detail {

/// int8_dot_tile's kernels, in increasing order of speed (all give the same results):
/// the portable loops (~1-2 GMAC/s), AVX2 (vpmaddubsw, no VNNI), AVX-VNNI (256-bit vpdpbusd, Intel
/// Alder Lake and later), AVX-512 VNNI and AMX-INT8 (tdpbusd tiles, Intel Sapphire Rapids and later
/// Xeons). Measured (bench_int8_dot): docs/benchmarks.md, "On CPUs without AVX-512 VNNI".
enum class Int8Kernel { portable = 0, avx2 = 1, avx_vnni = 2, avx512_vnni = 3, amx = 4 };

/// The fastest kernel this CPU (and this build) supports.
Int8Kernel int8_dot_best_kernel();

/// Test/benchmark hook: cap the kernel used by later calls (process-wide); Int8Kernel::amx removes
/// the cap. ops::detail::set_gemm_isa_limit caps it too: AVX2 allows at most AVX-VNNI (the
/// 256-bit kernels), scalar (or set_force_scalar) the portable loops.
void set_int8_dot_kernel_limit(Int8Kernel limit);

/// The kernel int8_dot_tile runs now: the best one under both caps.
Int8Kernel int8_dot_active_kernel();

/// Whether that is a SIMD kernel (anything but the portable loops).
bool int8_dot_is_fast();

/// "amx", "avx512-vnni", "avx-vnni", "avx2", "portable".
const char* int8_kernel_name(Int8Kernel kernel);

}  // namespace detail

}  // namespace reslens::ops
