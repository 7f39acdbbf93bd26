// llama.cpp's quantized block formats, one hand-built block each: which bits of which byte make
// each value, and the scale arithmetic (ggml-common.h's block layouts, ggml-quants.c's
// dequantize_row_*). The converted-model tests compare whole files against the NumPy decoder of
// scripts/reslens_ref, written separately from the same definitions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "model/dequantize.h"

namespace reslens {
namespace {

constexpr uint8_t kHalfLo = 0x00, kHalfHi = 0x38, kQuarterHi = 0x34;  // fp16 0.5 = 0x3800, 0.25 = 0x3400

void put_half(std::vector<uint8_t>& b, size_t at, uint8_t hi) {
  b[at] = kHalfLo;
  b[at + 1] = hi;
}

TEST(Dequantize, Q4_0AndQ4_1Nibbles) {
  std::vector<uint8_t> b(18);
  put_half(b, 0, kHalfHi);  // d = 0.5
  for (size_t j = 0; j < 16; ++j) b[2 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  std::vector<float> y(32);
  dequantize_q4_0(y.data(), b, 32);
  for (size_t j = 0; j < 16; ++j) {
    const auto v = static_cast<float>(j);
    EXPECT_EQ(y[j], 0.5f * (v - 8)) << j;            // low nibble of byte j
    EXPECT_EQ(y[j + 16], 0.5f * (7 - v)) << j + 16;  // its high nibble
  }
  std::vector<uint8_t> b1(20);
  put_half(b1, 0, kHalfHi);
  put_half(b1, 2, kQuarterHi);  // m = 0.25
  for (size_t j = 0; j < 16; ++j) b1[4 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  dequantize_q4_1(y.data(), b1, 32);
  EXPECT_EQ(y[3], 0.5f * 3 + 0.25f);
  EXPECT_EQ(y[16], 0.5f * 15 + 0.25f);
}

TEST(Dequantize, Q5FifthBitsComeFromTheHighWord) {
  std::vector<uint8_t> b(22, 0);
  put_half(b, 0, kHalfHi);
  b[2] = 0x01;  // bit 0: value 0's fifth bit
  b[5] = 0x80;  // bit 31: value 31's
  for (size_t j = 0; j < 16; ++j) b[6 + j] = 0x11;
  std::vector<float> y(32);
  dequantize_q5_0(y.data(), b, 32);
  EXPECT_EQ(y[0], 0.5f * (17 - 16));
  EXPECT_EQ(y[1], 0.5f * (1 - 16));
  EXPECT_EQ(y[16], 0.5f * (1 - 16));
  EXPECT_EQ(y[31], 0.5f * (17 - 16));
  std::vector<uint8_t> b1(24, 0);
  put_half(b1, 0, kHalfHi);
  put_half(b1, 2, kQuarterHi);
  b1[4] = 0x02;  // bit 1: value 1
  for (size_t j = 0; j < 16; ++j) b1[8 + j] = 0x11;
  dequantize_q5_1(y.data(), b1, 32);
  EXPECT_EQ(y[0], 0.5f * 1 + 0.25f);
  EXPECT_EQ(y[1], 0.5f * 17 + 0.25f);
}

TEST(Dequantize, Q2_KTwoBitPassesAndNibbleScales) {
  std::vector<uint8_t> b(84, 0);
  b[0] = 0x21;  // values 0-15: scale 1, min 2
  b[2] = 0x03;  // values 32-47 (second 2-bit pass): scale 3
  b[4] = 0x11;  // values 64-79: scale 1, min 1
  b[6] = 0x02;  // values 96-111: scale 2
  b[8] = 0x01;  // values 128-143 (second half): scale 1
  b[16] = 0xE4;  // codes 0, 1, 2, 3 at shifts 0, 2, 4, 6
  b[16 + 32] = 0x03;
  put_half(b, 80, kHalfHi);
  put_half(b, 82, kQuarterHi);
  std::vector<float> y(256);
  dequantize_q2_k(y.data(), b, 256);
  EXPECT_EQ(y[0], 0.5f * 1 * 0 - 0.25f * 2);
  EXPECT_EQ(y[32], 0.5f * 3 * 1);
  EXPECT_EQ(y[64], 0.5f * 1 * 2 - 0.25f * 1);
  EXPECT_EQ(y[96], 0.5f * 2 * 3);
  EXPECT_EQ(y[128], 0.5f * 1 * 3);
}

TEST(Dequantize, Q3_KSixBitScalesAndHighBitMask) {
  std::vector<uint8_t> b(110, 0);
  b[0] = 0x01;  // hmask byte 0: bit 0 (first pass), and below bit 4 (first pass of the second half)
  b[0] |= 0x10;
  b[32] = 0x03;       // qs[0]: code 3 at shift 0
  b[33] = 0x01;       // qs[1]: code 1, its high bit clear -> 1 - 4
  b[32 + 32] = 0x02;  // qs[32]: the second half's first byte
  b[96] = 0x01;       // scale 0's low nibble (scale 8's is the high nibble: 0)
  b[96 + 8] = 0x02;   // scale 0's top two bits (bits 0-1): 1 | 2 << 4 = 33
  put_half(b, 108, kHalfHi);
  std::vector<float> y(256);
  dequantize_q3_k(y.data(), b, 256);
  EXPECT_EQ(y[0], 0.5f * (33 - 32) * 3);
  EXPECT_EQ(y[1], 0.5f * (33 - 32) * (1 - 4));
  EXPECT_EQ(y[128], 0.5f * (0 - 32) * 2);
}

TEST(Dequantize, Q4_KAndQ5_KPackedScalesAndMins) {
  std::vector<uint8_t> b(144, 0);
  put_half(b, 0, kHalfHi);
  put_half(b, 2, kQuarterHi);
  b[4 + 0] = 0x42;  // sub-block 0 scale 2; top bits 01 -> sub-block 4's scale + 16
  b[4 + 4] = 0x03;  // sub-block 0 min 3
  b[4 + 8] = 0x25;  // sub-block 4: scale low nibble 5, min low nibble 2
  b[16 + 0] = 0x71;
  b[16 + 64] = 0x0A;
  std::vector<float> y(256);
  dequantize_q4_k(y.data(), b, 256);
  EXPECT_EQ(y[0], 0.5f * 2 * 1 - 0.25f * 3);
  EXPECT_EQ(y[32], 0.0f);  // high nibble 7, sub-block 1 scale 0 and min 0
  EXPECT_EQ(y[128], 0.5f * 21 * 10 - 0.25f * 2);
  std::vector<uint8_t> b5(176, 0);
  std::copy(b.begin(), b.begin() + 16, b5.begin());
  b5[16 + 0] = 0x13;  // qh[0]: bits 0, 1 (values 0 and 32) and 4 (value 128)
  b5[48 + 0] = 0x71;
  b5[48 + 64] = 0x0A;
  dequantize_q5_k(y.data(), b5, 256);
  EXPECT_EQ(y[0], 0.5f * 2 * 17 - 0.25f * 3);
  EXPECT_EQ(y[32], 0.0f);
  EXPECT_EQ(y[128], 0.5f * 21 * 26 - 0.25f * 2);
}

TEST(Dequantize, Q6_KLowNibblesHighPairsAndInt8Scales) {
  std::vector<uint8_t> b(210, 0);
  b[0] = 0x21;   // ql[0]: value 0 low nibble 1, value 64 low nibble 2
  b[32] = 0x43;  // ql[32]: value 32 low nibble 3, value 96 low nibble 4
  b[128] = 0xE4;  // qh[0]: high pairs 0, 1, 2, 3 for values 0, 32, 64, 96
  const int8_t scales[8] = {2, 5, -1, 0, 3, 0, 1, 0};
  for (size_t i = 0; i < 8; ++i) b[192 + i] = static_cast<uint8_t>(scales[i]);
  put_half(b, 208, kHalfHi);
  std::vector<float> y(256);
  dequantize_q6_k(y.data(), b, 256);
  EXPECT_EQ(y[0], 0.5f * 2 * (1 - 32));
  EXPECT_EQ(y[32], 0.5f * -1 * ((3 | 16) - 32));
  EXPECT_EQ(y[64], 0.5f * 3 * ((2 | 32) - 32));
  EXPECT_EQ(y[96], 0.5f * 1 * ((4 | 48) - 32));
  EXPECT_EQ(y[16], 0.5f * 5 * (0 - 32));  // values 16-31 use scale 1
}

TEST(Dequantize, Iq4NibblesIndexTheCodebook) {
  std::vector<uint8_t> b(18, 0);
  put_half(b, 0, kHalfHi);
  b[2] = 0xF0;  // value 0: entry 0 (-127); value 16: entry 15 (113)
  b[3] = 0x78;  // value 1: entry 8 (1); value 17: entry 7 (-10)
  std::vector<float> y(256);
  dequantize_iq4_nl(y.data(), b, 32);
  EXPECT_EQ(y[0], 0.5f * -127);
  EXPECT_EQ(y[16], 0.5f * 113);
  EXPECT_EQ(y[1], 0.5f * 1);
  EXPECT_EQ(y[17], 0.5f * -10);
  std::vector<uint8_t> xs(136, 0);
  put_half(xs, 0, kHalfHi);
  xs[2] = 0x02;  // scales_h: sub-block 0's high bits 10 -> +32; sub-block 1's 00
  xs[3] = 0x40;  // sub-block 7's high bits (bits 14-15) 01 -> +16
  xs[4] = 0x53;  // scales_l[0]: sub-block 0 low nibble 3, sub-block 1 low nibble 5
  xs[7] = 0x10;  // scales_l[3]: sub-block 7 low nibble 1
  xs[8] = 0x0F;       // qs[0]: value 0 entry 15
  xs[8 + 16] = 0x01;  // qs[16]: sub-block 1's value 0, entry 1
  xs[8 + 7 * 16] = 0x20;  // sub-block 7: value 0 entry 0, value 16 entry 2
  dequantize_iq4_xs(y.data(), xs, 256);
  EXPECT_EQ(y[0], 0.5f * (35 - 32) * 113);
  EXPECT_EQ(y[32], 0.5f * (5 - 32) * -104);
  EXPECT_EQ(y[224], 0.5f * (17 - 32) * -127);
  EXPECT_EQ(y[240], 0.5f * (17 - 32) * -83);
}

}  // namespace
}  // namespace reslens
