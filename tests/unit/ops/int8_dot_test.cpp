// ops/int8_dot: the packed int8 products against a plain integer loop, bit for bit, on every kernel
// this CPU has (portable, AVX2, AVX-VNNI, AVX-512 VNNI, AMX, chosen with set_int8_dot_kernel_limit), for
// shapes that are not multiples of the packing or of the kernels' vector groups, every tile, and
// values at the extremes (codes +-127, vectors' bytes 0 and 255: the AVX2 kernel's saturation and
// sign cases); and how the GEMM's instruction-set cap limits the choice.
#include "ops/int8_dot.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "ops/gemm.h"

namespace reslens::ops {
namespace detail {
// gtest names a failing parameter by this.
void PrintTo(Int8Kernel kernel, std::ostream* os) { *os << int8_kernel_name(kernel); }
}  // namespace detail

namespace {

using detail::Int8Kernel;

// sum_i codes[j, i] * (xs[v, i] - 128) for every vector v and row j of tile `tile` (0 past n).
std::vector<int32_t> naive_tile(const std::vector<int8_t>& codes, int64_t n, int64_t k, const std::vector<uint8_t>& xs,
                                int64_t kp, int64_t m, int64_t tile) {
  std::vector<int32_t> out(static_cast<size_t>(m * 64), 0);
  for (int64_t v = 0; v < m; ++v) {
    for (int64_t t = 0; t < 64; ++t) {
      const int64_t j = tile * 64 + t;
      if (j >= n) continue;
      int64_t s = 0;
      for (int64_t i = 0; i < k; ++i) {
        s += static_cast<int64_t>(codes[static_cast<size_t>(j * k + i)]) * (static_cast<int64_t>(xs[static_cast<size_t>(v * kp + i)]) - 128);
      }
      out[static_cast<size_t>(v * 64 + t)] = static_cast<int32_t>(s);
    }
  }
  return out;
}

// Runs the body with the kernel capped at `kernel`, or skips when this CPU (or build) lacks it.
class Int8DotKernel : public ::testing::TestWithParam<Int8Kernel> {
 protected:
  void SetUp() override {
    if (detail::int8_dot_best_kernel() < GetParam())
      GTEST_SKIP() << "this CPU has no " << detail::int8_kernel_name(GetParam()) << " kernel (best: "
                   << detail::int8_kernel_name(detail::int8_dot_best_kernel()) << ")";
    detail::set_int8_dot_kernel_limit(GetParam());
    ASSERT_EQ(detail::int8_dot_active_kernel(), GetParam());
  }
  void TearDown() override { detail::set_int8_dot_kernel_limit(Int8Kernel::amx); }
};

// Every tile of every shape, m = 1..13 vectors (past the AVX2 kernel's groups of 2 and the VNNI
// kernels' 6) and 16-70 (AMX's groups of 32, in place and padded; k past its steps of 64 columns),
// random codes with many at +-127 and random bytes with many at 0 and 255.
TEST_P(Int8DotKernel, EqualsIntegerLoops) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> code(-127, 127), byte(0, 255), pick(0, 3);
  for (const auto& [n, k] : std::vector<std::pair<int64_t, int64_t>>{
           {1, 1}, {64, 4}, {100, 37}, {130, 768}, {70, 1023}, {200, 5}, {65, 130}}) {
    std::vector<int8_t> codes(static_cast<size_t>(n * k));
    for (auto& c : codes) {
      const int p = pick(rng);
      c = static_cast<int8_t>(p == 0 ? -127 : p == 1 ? 127 : code(rng));
    }
    const Int8Rows rows = pack_int8_rows(codes.data(), n, k, k);
    ASSERT_EQ(rows.n_pad % 64, 0);
    ASSERT_GE(rows.n_pad, n);
    for (const int64_t m : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 31, 32, 33, 70}) {
      std::vector<uint8_t> xs(static_cast<size_t>(m * rows.k_pad));
      for (auto& x : xs) {
        const int p = pick(rng);
        x = static_cast<uint8_t>(p == 0 ? 0 : p == 1 ? 255 : byte(rng));
      }
      for (int64_t tile = 0; tile < rows.n_tiles(); ++tile) {
        const std::vector<int32_t> want = naive_tile(codes, n, k, xs, rows.k_pad, m, tile);
        std::vector<int32_t> got(static_cast<size_t>(m * 64), 7);
        int8_dot_tile(rows, tile, xs.data(), m, got.data());
        ASSERT_EQ(got, want) << detail::int8_kernel_name(GetParam()) << ": n " << n << " k " << k << " m " << m
                             << " tile " << tile;
      }
    }
  }
}

// The largest products: every code +-127 against bytes 0 (x - 128 = -128) or 255, whole rows of
// one sign (each vpmaddubsw pair at its bound 2 * 128 * 127), and a long row (k = 4096, a 7B
// model's d_model) so that the sums are large.
TEST_P(Int8DotKernel, ExtremeValuesAreExact) {
  const int64_t n = 128, k = 4096;
  std::vector<int8_t> codes(static_cast<size_t>(n * k));
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t i = 0; i < k; ++i) {
      // rows all -127, all 127, alternating in pairs, or by a pattern
      const int64_t kind = j % 4;
      const bool neg = kind == 0 || (kind == 2 && (i / 2) % 2 == 0) || (kind == 3 && (i * 7 + j) % 3 == 0);
      codes[static_cast<size_t>(j * k + i)] = static_cast<int8_t>(neg ? -127 : 127);
    }
  }
  const Int8Rows rows = pack_int8_rows(codes.data(), n, k, k);
  for (const uint8_t fill : {uint8_t{0}, uint8_t{255}, uint8_t{1}, uint8_t{128}}) {
    const int64_t m = 7;
    std::vector<uint8_t> xs(static_cast<size_t>(m * rows.k_pad), fill);
    for (int64_t i = 0; i < k; i += 3) xs[static_cast<size_t>(6 * rows.k_pad + i)] = 0;  // the last vector mixed
    for (int64_t tile = 0; tile < rows.n_tiles(); ++tile) {
      std::vector<int32_t> got(static_cast<size_t>(m * 64), 7);
      int8_dot_tile(rows, tile, xs.data(), m, got.data());
      ASSERT_EQ(got, naive_tile(codes, n, k, xs, rows.k_pad, m, tile))
          << detail::int8_kernel_name(GetParam()) << ": bytes " << int{fill} << " tile " << tile;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, Int8DotKernel,
                         ::testing::Values(Int8Kernel::portable, Int8Kernel::avx2, Int8Kernel::avx_vnni,
                                           Int8Kernel::avx512_vnni, Int8Kernel::amx),
                         [](const ::testing::TestParamInfo<Int8Kernel>& param) {
                           std::string name = detail::int8_kernel_name(param.param);
                           for (char& c : name) c = c == '-' ? '_' : c;
                           return name;
                         });

// set_gemm_isa_limit caps the kernels too (tests and benchmarks force paths with it): AVX2 keeps the
// 256-bit kernels, scalar and set_force_scalar the portable loops.
TEST(Int8Dot, TheGemmCapLimitsTheKernel) {
  const Int8Kernel best = detail::int8_dot_best_kernel();
  EXPECT_EQ(detail::int8_dot_active_kernel(), best);
  EXPECT_EQ(detail::int8_dot_is_fast(), best != Int8Kernel::portable);
  detail::set_gemm_isa_limit(detail::GemmIsa::avx2);
  EXPECT_EQ(detail::int8_dot_active_kernel(), std::min(best, Int8Kernel::avx_vnni));
  detail::set_gemm_isa_limit(detail::GemmIsa::scalar);
  EXPECT_EQ(detail::int8_dot_active_kernel(), Int8Kernel::portable);
  EXPECT_FALSE(detail::int8_dot_is_fast());
  detail::set_gemm_isa_limit(detail::GemmIsa::avx512);
  detail::set_force_scalar(true);
  EXPECT_EQ(detail::int8_dot_active_kernel(), Int8Kernel::portable);
  detail::set_force_scalar(false);
  detail::set_int8_dot_kernel_limit(Int8Kernel::avx2);
  EXPECT_EQ(detail::int8_dot_active_kernel(), std::min(best, Int8Kernel::avx2));
  detail::set_int8_dot_kernel_limit(Int8Kernel::avx512_vnni);
  EXPECT_EQ(detail::int8_dot_active_kernel(), std::min(best, Int8Kernel::avx512_vnni));
  detail::set_int8_dot_kernel_limit(Int8Kernel::amx);
  EXPECT_EQ(detail::int8_dot_active_kernel(), best);
}

TEST(Int8Dot, RejectsRowsThatCouldOverflow) {
  std::vector<int8_t> codes(70000, 1);
  EXPECT_ANY_THROW(pack_int8_rows(codes.data(), 1, 70000, 70000));
}

// -128 would wrap in the AVX2 kernel's negation (int8_dot_avx2.cpp), so no kernel may see it.
TEST(Int8Dot, RejectsTheCodeMinus128) {
  std::vector<int8_t> codes(40, 3);
  codes[37] = -128;
  EXPECT_ANY_THROW(pack_int8_rows(codes.data(), 4, 10, 10));
  codes[37] = -127;
  EXPECT_NO_THROW(pack_int8_rows(codes.data(), 4, 10, 10));
}

}  // namespace
}  // namespace reslens::ops
