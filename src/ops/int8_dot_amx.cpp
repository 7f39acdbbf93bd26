// int8_dot_tile's AMX kernel (ops/int8_dot_kernels.h), for Intel CPUs with AMX-INT8 (Sapphire Rapids
// and later Xeons).
//
// One tdpbusd multiplies a [16, 64] tile of unsigned bytes (16 vectors, 64 columns) by a [16, 64]
// tile of signed bytes laid out 4 columns per 32-bit lane (16 groups of 4 columns x 16 rows) and adds
// the [16, 16] int32 results to an accumulator tile: 16,384 multiply-adds per instruction, 8x a
// 512-bit vpdpbusd. The packed rows (ops/int8_dot.h: blocks of 16 rows x 4 columns, 64 bytes per
// group of 4 columns) are already that layout: 16 consecutive groups of one block are one B tile of
// 1 KB, rows 64 bytes apart. The vectors' bytes are the A tiles, read in place (a vector's 64
// columns per row, rows k_pad bytes apart). Each tile of 64 rows is done as 2 x 2 accumulators (32
// vectors x 2 blocks of 16 rows) per pass, a pair of blocks at a time over every group of vectors
// (the pair's 2 x k_pad x 16 bytes stay in L1; 5% faster than every pair per group of vectors in
// bench_int8_dot at d = 768, 384 vectors). The +128 offset comes out with the row sums, as in the
// VNNI kernels, but first: the accumulators start at -128 x the rows' sums, so a full group's tiles
// are stored straight into the output (no pass through a buffer; +15% at d = 768, where that pass
// was a large part of a tile's work). The integer sums are exact (and wrap alike in any order), so
// the results are theirs bit for bit.
//
// A last group of fewer than 32 vectors, and a last step of fewer than 64 columns (k_pad not a
// multiple of 64), go through zero-padded copies, so no tile load reads past the caller's arrays.
// Linux hands out the tile registers' state only on request (arch_prctl ARCH_REQ_XCOMP_PERM, made
// by int8_amx_usable before this kernel is chosen); each call loads its tile configuration and
// releases it at the end, so a thread switching kernels or never using AMX again holds no state.
#include "ops/int8_dot_kernels.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__linux__)

#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#define RESLENS_INT8_AMX __attribute__((target("amx-tile,amx-int8")))

namespace reslens::ops::detail {
namespace {

constexpr int64_t kVectors = 32;  // vectors per pass: two A tiles of 16
constexpr int64_t kStep = 64;     // columns per tdpbusd

// The palette-1 tile configuration (64 bytes, Intel SDM vol. 1, 3.2 "ldtilecfg").
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Every tile in use is 16 rows of 64 bytes: tmm0-3 the [16 vectors, 16 rows] int32 accumulators,
// tmm4-5 the two A tiles (vectors), tmm6-7 the two B tiles (rows).
TileConfig full_tiles() {
  TileConfig c;
  for (int i = 0; i < 8; ++i) c.colsb[i] = 64, c.rows[i] = 16;
  return c;
}

// Adds one step's products: C[2a + b] += A_a x B_b for a, b in {0, 1}.
RESLENS_INT8_AMX inline void step(const uint8_t* a, int64_t lda, const int8_t* b0, const int8_t* b1) {
  _tile_loadd(4, a, lda);
  _tile_loadd(5, a + 16 * lda, lda);
  _tile_loadd(6, b0, 64);
  _tile_loadd(7, b1, 64);
  _tile_dpbusd(0, 4, 6);
  _tile_dpbusd(1, 4, 7);
  _tile_dpbusd(2, 5, 6);
  _tile_dpbusd(3, 5, 7);
}

RESLENS_INT8_AMX void tile_amx(const Int8Rows& rows, int64_t tile, const uint8_t* xs, int64_t m, int32_t* out) {
  const int64_t kp = rows.k_pad, groups = kp / 4;
  const int64_t steps = kp / kStep, rem = kp % kStep;  // full steps; columns of the last partial one
  const int8_t* block0 = rows.packed.data() + tile * 4 * groups * 64;  // 4 blocks of 16 rows
  const int32_t* sums = rows.row_sum.data() + tile * 64;
  // Per-thread scratch: a short last group of vectors [32, kp]; the partial step's A [32, 64] and
  // B [4 blocks, 16 groups, 64] columns, zero past k_pad (so past-the-end products are 0).
  thread_local std::vector<uint8_t> pad_a;
  alignas(64) int8_t rem_b[4 * 16 * 64];
  if (rem > 0) {
    std::memset(rem_b, 0, sizeof rem_b);
    for (int64_t b = 0; b < 4; ++b) {
      std::memcpy(rem_b + b * 1024, block0 + b * groups * 64 + steps * 1024, static_cast<size_t>(rem / 4 * 64));
    }
  }
  // The vectors, each group of 32 in place or (a short last group) from a padded copy, and every
  // group's partial last step.
  const int64_t n_groups = (m + kVectors - 1) / kVectors;
  const int64_t tail = m - (n_groups - 1) * kVectors;  // vectors in the last group
  if (tail < kVectors) {
    pad_a.assign(static_cast<size_t>(kVectors * kp), 128);
    std::memcpy(pad_a.data(), xs + (n_groups - 1) * kVectors * kp, static_cast<size_t>(tail * kp));
  }
  const auto group_a = [&](int64_t g) {
    return g == n_groups - 1 && tail < kVectors ? pad_a.data() : xs + g * kVectors * kp;
  };
  thread_local std::vector<uint8_t> rem_all;  // [groups, 32, 64]
  if (rem > 0) {
    rem_all.assign(static_cast<size_t>(n_groups * kVectors * kStep), 0);
    for (int64_t g = 0; g < n_groups; ++g) {
      for (int64_t v = 0; v < kVectors; ++v) {
        std::memcpy(rem_all.data() + (g * kVectors + v) * kStep, group_a(g) + v * kp + steps * kStep, static_cast<size_t>(rem));
      }
    }
  }
  const TileConfig cfg = full_tiles();
  _tile_loadconfig(&cfg);
  alignas(64) int32_t c[4][16 * 16];  // [2a + b][vector, row]
  // The accumulators start at -128 x the rows' code sums (the +128 offset of the vectors' bytes,
  // taken out as the VNNI kernels take it out at the end: int32 sums wrap the same either way), so a
  // full group's tiles are stored straight into `out` (a vector's 64 rows, 256 bytes apart).
  alignas(64) int32_t start[4][16 * 16];  // [block][vector, row]
  for (int64_t blk = 0; blk < 4; ++blk) {
    for (int64_t r = 0; r < 16; ++r) {
      for (int64_t t = 0; t < 16; ++t) start[blk][r * 16 + t] = -128 * sums[blk * 16 + t];
    }
  }
  // A pair of row blocks (2 x 16 rows, 2 x k_pad bytes) stays in L1 while the vectors stream past.
  for (int64_t pair = 0; pair < 2; ++pair) {
    const int8_t* b0 = block0 + (2 * pair) * groups * 64;
    const int8_t* b1 = block0 + (2 * pair + 1) * groups * 64;
    for (int64_t g = 0; g < n_groups; ++g) {
      const int64_t v0 = g * kVectors, nv = std::min(kVectors, m - v0);
      const uint8_t* a = group_a(g);
      _tile_loadd(0, start[2 * pair], 64);
      _tile_loadd(1, start[2 * pair + 1], 64);
      _tile_loadd(2, start[2 * pair], 64);
      _tile_loadd(3, start[2 * pair + 1], 64);
      for (int64_t s = 0; s < steps; ++s) step(a + s * kStep, kp, b0 + s * 1024, b1 + s * 1024);
      if (rem > 0) step(rem_all.data() + g * kVectors * kStep, kStep, rem_b + (2 * pair) * 1024, rem_b + (2 * pair + 1) * 1024);
      int32_t* o = out + v0 * 64 + (2 * pair) * 16;
      if (nv == kVectors) {
        _tile_stored(0, o, 256);
        _tile_stored(1, o + 16, 256);
        _tile_stored(2, o + 16 * 64, 256);
        _tile_stored(3, o + 16 * 64 + 16, 256);
        continue;
      }
      _tile_stored(0, c[0], 64);
      _tile_stored(1, c[1], 64);
      _tile_stored(2, c[2], 64);
      _tile_stored(3, c[3], 64);
      for (int64_t v = 0; v < nv; ++v) {
        const int64_t half = v / 16, r = v % 16;
        for (int64_t b = 0; b < 2; ++b) std::memcpy(o + v * 64 + b * 16, c[2 * half + b] + r * 16, 16 * sizeof(int32_t));
      }
    }
  }
  _tile_release();
}

}  // namespace

Int8TileFn int8_tile_amx() { return &tile_amx; }

bool int8_amx_usable() {
  // CPUID.(EAX=7, ECX=0):EDX bit 24 AMX-TILE, bit 25 AMX-INT8; XCR0 bits 17-18 (XTILECFG, XTILEDATA)
  // enabled by the OS; then Linux's permission to use the tile data (since 5.16).
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  __asm__("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(7), "c"(0));
  if ((edx & (1u << 24)) == 0 || (edx & (1u << 25)) == 0) return false;
  __asm__("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(1), "c"(0));
  if ((ecx & (1u << 27)) == 0) return false;  // OSXSAVE: xgetbv is allowed
  unsigned lo = 0, hi = 0;
  __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & (3u << 17)) != (3u << 17)) return false;
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

}  // namespace reslens::ops::detail

#else

namespace reslens::ops::detail {
Int8TileFn int8_tile_amx() { return nullptr; }
bool int8_amx_usable() { return false; }
}  // namespace reslens::ops::detail

#endif
