// llama.cpp's 32-value block formats Q4_0, Q4_1, Q5_0 and Q5_1 (ggml-common.h's block_q4_0 ...),
// dequantized as ggml's dequantize_row_q4_0 ... do: the code as an int, converted to float, times d
// (plus m where there is one), each in float32.
#include <cstring>

#include "core/half.h"
#include "model/dequantize.h"
#include "model/dequantize_kernels.h"

namespace reslens::detail::scalar {

namespace {

constexpr int64_t kBlock = 32;

// Block layouts, in bytes: d at 0; Q4_1/Q5_1 have m at 2; Q5_x have 4 bytes of high bits (bit j is
// the fifth bit of value j) before the 16 bytes of nibbles.
template <bool kHasMin, bool kHighBits>
void dequantize_blocks(float* out, std::span<const uint8_t> in, int64_t n) {
  constexpr int64_t kHeader = 2 + (kHasMin ? 2 : 0) + (kHighBits ? 4 : 0);
  constexpr int64_t kBytes = kHeader + kBlock / 2;
  constexpr int kOffset = kHasMin ? 0 : (kHighBits ? 16 : 8);  // symmetric codes are centred
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const uint8_t* block = in.data() + b * kBytes;
    const float d = fp16_at(block);
    const float m = kHasMin ? fp16_at(block + 2) : 0.0f;
    uint32_t high = 0;
    if constexpr (kHighBits) std::memcpy(&high, block + 2 + (kHasMin ? 2 : 0), 4);
    const uint8_t* qs = block + kHeader;
    float* y = out + b * kBlock;
    for (int j = 0; j < kBlock / 2; ++j) {
      int lo = qs[j] & 0x0F, hi = qs[j] >> 4;
      if constexpr (kHighBits) {
        lo |= static_cast<int>((high >> j) & 1U) << 4;
        hi |= static_cast<int>((high >> (j + 16)) & 1U) << 4;
      }
      if constexpr (kHasMin) {
        y[j] = static_cast<float>(lo) * d + m;
        y[j + kBlock / 2] = static_cast<float>(hi) * d + m;
      } else {
        y[j] = static_cast<float>(lo - kOffset) * d;
        y[j + kBlock / 2] = static_cast<float>(hi - kOffset) * d;
      }
    }
  }
}

}  // namespace

void q4_0(float* out, std::span<const uint8_t> in, int64_t n) { dequantize_blocks<false, false>(out, in, n); }
void q4_1(float* out, std::span<const uint8_t> in, int64_t n) { dequantize_blocks<true, false>(out, in, n); }
void q5_0(float* out, std::span<const uint8_t> in, int64_t n) { dequantize_blocks<false, true>(out, in, n); }
void q5_1(float* out, std::span<const uint8_t> in, int64_t n) { dequantize_blocks<true, true>(out, in, n); }

}  // namespace reslens::detail::scalar
