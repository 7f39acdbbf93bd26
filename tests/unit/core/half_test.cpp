#include "core/half.h"

#include <gtest/gtest.h>

#include <cmath>

namespace reslens {
namespace {

TEST(Half, Fp16RoundTripsEveryValue) {
  // Every finite fp16 value converts to float and back unchanged.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const auto x = static_cast<uint16_t>(h);
    const float f = fp16_to_fp32(x);
    if (std::isnan(f)) continue;
    ASSERT_EQ(fp32_to_fp16(f), x) << "h=" << h;
  }
}

TEST(Half, Fp16KnownValues) {
  EXPECT_EQ(fp16_to_fp32(0x3c00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0xc000), -2.0f);
  EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(fp16_to_fp32(0x7bff), 65504.0f);
  EXPECT_TRUE(std::isinf(fp16_to_fp32(0x7c00)));
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie rounds to even
  EXPECT_EQ(fp32_to_fp16(1e6f), 0x7c00);
}

TEST(Half, Bf16IsTheTopHalfOfAFloat) {
  EXPECT_EQ(bf16_to_fp32(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_fp32(0xc040), -3.0f);
}

}  // namespace
}  // namespace reslens
