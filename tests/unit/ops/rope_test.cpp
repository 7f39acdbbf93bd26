// Rotary tables and rotation: RoPE scaling is an angle change only (positions divided by the linear
// factor, each pair's frequency divided by its own factor), and the two pair layouts rotate the
// same features.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "ops/rope.h"

namespace reslens::ops {
namespace {

TEST(Rope, UnscaledAnglesArePositionTimesBaseToTheMinusTwoIOverDims) {
  const RopeTable t = make_rope_table(3, 2, 8, 10000.0f);
  ASSERT_EQ(t.half, 4);
  for (int64_t p = 0; p < 2; ++p) {
    for (int64_t i = 0; i < 4; ++i) {
      const double angle = static_cast<double>(3 + p) * std::pow(10000.0, -2.0 * static_cast<double>(i) / 8.0);
      EXPECT_FLOAT_EQ(t.cos[static_cast<size_t>(p * 4 + i)], static_cast<float>(std::cos(angle)));
      EXPECT_FLOAT_EQ(t.sin[static_cast<size_t>(p * 4 + i)], static_cast<float>(std::sin(angle)));
    }
  }
}

TEST(Rope, LinearScalingDividesPositionsAndFactorsDivideEachPairsFrequency) {
  RopeScaling linear;
  linear.linear_factor = 4.0;
  const RopeTable scaled = make_rope_table(8, 1, 4, 10000.0f, linear);
  const RopeTable plain = make_rope_table(2, 1, 4, 10000.0f);  // position 8 / 4
  EXPECT_EQ(scaled.cos, plain.cos);
  EXPECT_EQ(scaled.sin, plain.sin);

  RopeScaling factors;
  factors.freq_factors = {1.0, 8.0};
  const RopeTable f = make_rope_table(8, 1, 4, 10000.0f, factors);
  const RopeTable at8 = make_rope_table(8, 1, 4, 10000.0f);
  const RopeTable at1 = make_rope_table(1, 1, 4, 10000.0f);
  EXPECT_EQ(f.cos[0], at8.cos[0]);  // factor 1: unchanged
  EXPECT_EQ(f.cos[1], at1.cos[1]);  // 8 * freq / 8
  EXPECT_EQ(f.sin[1], at1.sin[1]);
}

TEST(Rope, AttentionFactorScalesCosAndSinOnly) {
  // YaRN's mscale and LongRoPE's attention factor: the same angles, cos and sin times the factor.
  RopeScaling s;
  s.freq_factors = {1.0, 8.0};
  s.attn_factor = 1.25;
  const RopeTable scaled = make_rope_table(5, 3, 4, 10000.0f, s);
  s.attn_factor = 1.0;
  const RopeTable plain = make_rope_table(5, 3, 4, 10000.0f, s);
  for (size_t i = 0; i < plain.cos.size(); ++i) {
    EXPECT_FLOAT_EQ(scaled.cos[i], plain.cos[i] * 1.25f);
    EXPECT_FLOAT_EQ(scaled.sin[i], plain.sin[i] * 1.25f);
  }
}

TEST(Rope, InterleavedAndHalfLayoutsRotateTheSamePairs) {
  // One head of 6 dims, 4 of them rotary (partial rotation): the interleaved vector, reordered into
  // rotate_half order, rotates to the reordered result of rotating it interleaved.
  const std::vector<float> x = {0.3f, -1.2f, 0.7f, 2.5f, -0.4f, 0.9f};
  const RopeTable t = make_rope_table(5, 1, 4, 100.0f);
  std::vector<float> inter = x;
  apply_rope(inter.data(), 1, 1, 6, 6, t, RopeLayout::kInterleaved);
  std::vector<float> half(6), expected(6);
  interleaved_to_half(half.data(), x.data(), 6, 4);
  apply_rope(half.data(), 1, 1, 6, 6, t, RopeLayout::kHalf);
  interleaved_to_half(expected.data(), inter.data(), 6, 4);
  EXPECT_EQ(half, expected);
  EXPECT_EQ(half[4], x[4]);  // dims past rotary_dim do not move
  EXPECT_EQ(half[5], x[5]);
}

}  // namespace
}  // namespace reslens::ops
