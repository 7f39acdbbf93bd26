// Internal interface between int8_dot_tile's dispatch (int8_dot.cpp) and its SIMD kernels, one file
// per instruction set (int8_dot_amx.cpp, int8_dot_avx512.cpp, int8_dot_avx_vnni.cpp, int8_dot_avx2.cpp). Every kernel
// computes the same exact int32 sums as the portable loops (int8_dot.h), so which one runs changes
// only the speed.
#pragma once

#include <cstdint>

#include "ops/int8_dot.h"

namespace reslens::ops::detail {

/// int8_dot_tile's contract (int8_dot.h): out [m, 64] for the 64 rows of `tile`.
using Int8TileFn = void (*)(const Int8Rows& rows, int64_t tile, const uint8_t* xs, int64_t m, int32_t* out);

/// The kernel of each instruction set; nullptr when this build has none (non-x86 targets). The
/// dispatch checks the CPU before running one.
Int8TileFn int8_tile_amx();
Int8TileFn int8_tile_avx512_vnni();
Int8TileFn int8_tile_avx_vnni();
Int8TileFn int8_tile_avx2();

/// Whether this CPU has AMX-INT8, the OS enabled its tile state, and Linux granted this process the
/// use of it (arch_prctl ARCH_REQ_XCOMP_PERM, requested here once for the process).
bool int8_amx_usable();

}  // namespace reslens::ops::detail
