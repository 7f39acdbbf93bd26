// ops/int8_dot: the packed int8 products against a plain integer loop, on the VNNI path and the
// portable one (set_gemm_isa_limit), for shapes that are not multiples of the packing.
#include "ops/int8_dot.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "ops/gemm.h"

namespace reslens::ops {
namespace {

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

TEST(Int8Dot, EqualsIntegerLoopsOnEveryPath) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> code(-127, 127), byte(0, 255);
  for (const auto& [n, k] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {64, 4}, {100, 37}, {130, 768}, {70, 1023}}) {
    std::vector<int8_t> codes(static_cast<size_t>(n * k));
    for (auto& c : codes) c = static_cast<int8_t>(code(rng));
    codes[0] = -127;  // the extremes
    const Int8Rows rows = pack_int8_rows(codes.data(), n, k, k);
    ASSERT_EQ(rows.n_pad % 64, 0);
    ASSERT_GE(rows.n_pad, n);
    for (int64_t m : {1, 5, 6, 7, 13}) {
      std::vector<uint8_t> xs(static_cast<size_t>(m * rows.k_pad));
      for (auto& x : xs) x = static_cast<uint8_t>(byte(rng));
      xs[0] = 255;
      for (int64_t tile = 0; tile < rows.n_tiles(); ++tile) {
        const std::vector<int32_t> want = naive_tile(codes, n, k, xs, rows.k_pad, m, tile);
        std::vector<int32_t> got(static_cast<size_t>(m * 64), 7);
        int8_dot_tile(rows, tile, xs.data(), m, got.data());
        EXPECT_EQ(got, want) << "n " << n << " k " << k << " m " << m << " tile " << tile << " vnni "
                             << detail::int8_dot_uses_vnni();
        detail::set_gemm_isa_limit(detail::GemmIsa::avx2);  // the portable loops
        EXPECT_FALSE(detail::int8_dot_uses_vnni());
        std::vector<int32_t> portable(static_cast<size_t>(m * 64), 7);
        int8_dot_tile(rows, tile, xs.data(), m, portable.data());
        detail::set_gemm_isa_limit(detail::GemmIsa::avx512);
        EXPECT_EQ(portable, want) << "portable, n " << n << " k " << k << " m " << m << " tile " << tile;
      }
    }
  }
}

TEST(Int8Dot, RejectsRowsThatCouldOverflow) {
  std::vector<int8_t> codes(70000, 1);
  EXPECT_ANY_THROW(pack_int8_rows(codes.data(), 1, 70000, 70000));
}

}  // namespace
}  // namespace reslens::ops
