// int8_dot_tile: packing, the portable loops and the choice of kernel (ops/int8_dot.h). The SIMD
// kernels live one per file (ops/int8_dot_kernels.h); integer sums are exact, so every kernel
// gives the portable loops' numbers bit for bit.
#include "ops/int8_dot.h"

#include <algorithm>
#include <atomic>

#include "ops/gemm.h"
#include "ops/int8_dot_kernels.h"
#include "reslens/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace reslens::ops {

Int8Rows pack_int8_rows(const int8_t* codes, int64_t n, int64_t k, int64_t ld) {
  if (k > 66000) throw InvalidArgument("pack_int8_rows: rows longer than 66000 could overflow int32 sums");
  Int8Rows r;
  r.n = n;
  r.k = k;
  r.n_pad = (n + Int8Rows::kTileRows - 1) / Int8Rows::kTileRows * Int8Rows::kTileRows;
  r.k_pad = (k + 3) / 4 * 4;
  r.packed.assign(static_cast<size_t>(r.n_pad * r.k_pad), 0);
  r.row_sum.assign(static_cast<size_t>(r.n_pad), 0);
  const int64_t groups = r.k_pad / 4;
  bool min_code = false;  // a code of -128 (the AVX2 kernel's negation would wrap)
  for (int64_t j = 0; j < n; ++j) {
    int32_t sum = 0;
    int8_t* block = r.packed.data() + (j / 16) * groups * 64 + (j % 16) * 4;
    for (int64_t i = 0; i < k; ++i) {
      const int8_t c = codes[j * ld + i];
      min_code |= c == -128;
      block[(i / 4) * 64 + i % 4] = c;
      sum += c;
    }
    r.row_sum[static_cast<size_t>(j)] = sum;
  }
  if (min_code) throw InvalidArgument("pack_int8_rows: codes must lie in [-127, 127] (found -128)");
  return r;
}

namespace {

// rows[tile*64 + t, :] . (xs[v, :] - 128), one element at a time.
void dot_tile_portable(const Int8Rows& rows, int64_t tile, const uint8_t* xs, int64_t m, int32_t* out) {
  const int64_t groups = rows.k_pad / 4;
  for (int64_t v = 0; v < m; ++v) {
    const uint8_t* x = xs + v * rows.k_pad;
    for (int64_t t = 0; t < Int8Rows::kTileRows; ++t) {
      const int64_t j = tile * Int8Rows::kTileRows + t;
      const int8_t* block = rows.packed.data() + (j / 16) * groups * 64 + (j % 16) * 4;
      int32_t acc = 0;
      for (int64_t g = 0; g < groups; ++g) {
        const int8_t* b = block + g * 64;
        for (int64_t r = 0; r < 4; ++r) acc += static_cast<int32_t>(b[r]) * static_cast<int32_t>(x[g * 4 + r]);
      }
      out[v * Int8Rows::kTileRows + t] = acc - 128 * rows.row_sum[static_cast<size_t>(j)];
    }
  }
}

// AVX-VNNI: CPUID.(EAX=7, ECX=1):EAX bit 4 (GCC 12 knows __builtin_cpu_supports("avxvnni"),
// clang 14 does not). The OS's saving of ymm state is what "avx2" already checks.
bool cpu_has_avx_vnni() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (eax & (1u << 4)) != 0;
#else
  return false;
#endif
}

detail::Int8Kernel detect_best_kernel() {
  using detail::Int8Kernel;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2");
  if (detail::int8_tile_amx() != nullptr && detail::int8_amx_usable()) return Int8Kernel::amx;
  if (detail::int8_tile_avx512_vnni() != nullptr && __builtin_cpu_supports("avx512f") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni"))
    return Int8Kernel::avx512_vnni;
  if (detail::int8_tile_avx_vnni() != nullptr && avx2 && cpu_has_avx_vnni()) return Int8Kernel::avx_vnni;
  if (detail::int8_tile_avx2() != nullptr && avx2) return Int8Kernel::avx2;
#endif
  return Int8Kernel::portable;
}

std::atomic<int> g_kernel_limit{static_cast<int>(detail::Int8Kernel::amx)};

}  // namespace

namespace detail {

Int8Kernel int8_dot_best_kernel() {
  static const Int8Kernel best = detect_best_kernel();
  return best;
}

void set_int8_dot_kernel_limit(Int8Kernel limit) { g_kernel_limit.store(static_cast<int>(limit)); }

Int8Kernel int8_dot_active_kernel() {
  // The GEMM's instruction-set cap (which set_force_scalar also lowers) caps the kernels of that set.
  Int8Kernel isa_cap = Int8Kernel::amx;
  switch (gemm_active_isa()) {
    case GemmIsa::avx512: break;
    case GemmIsa::avx2: isa_cap = Int8Kernel::avx_vnni; break;
    case GemmIsa::scalar: isa_cap = Int8Kernel::portable; break;
  }
  return static_cast<Int8Kernel>(std::min({static_cast<int>(int8_dot_best_kernel()), static_cast<int>(isa_cap),
                                           g_kernel_limit.load()}));
}

bool int8_dot_is_fast() { return int8_dot_active_kernel() != Int8Kernel::portable; }

const char* int8_kernel_name(Int8Kernel kernel) {
  switch (kernel) {
    case Int8Kernel::amx: return "amx";
    case Int8Kernel::avx512_vnni: return "avx512-vnni";
    case Int8Kernel::avx_vnni: return "avx-vnni";
    case Int8Kernel::avx2: return "avx2";
    case Int8Kernel::portable: break;
  }
  return "portable";
}

}  // namespace detail

void int8_dot_tile(const Int8Rows& rows, int64_t tile, const uint8_t* xs, int64_t m, int32_t* out) {
  // The active kernel's function is never null: detection only picks kernels this build has.
  switch (detail::int8_dot_active_kernel()) {
    case detail::Int8Kernel::amx: return detail::int8_tile_amx()(rows, tile, xs, m, out);
    case detail::Int8Kernel::avx512_vnni: return detail::int8_tile_avx512_vnni()(rows, tile, xs, m, out);
    case detail::Int8Kernel::avx_vnni: return detail::int8_tile_avx_vnni()(rows, tile, xs, m, out);
    case detail::Int8Kernel::avx2: return detail::int8_tile_avx2()(rows, tile, xs, m, out);
    case detail::Int8Kernel::portable: break;
  }
  dot_tile_portable(rows, tile, xs, m, out);
}

}  // namespace reslens::ops
