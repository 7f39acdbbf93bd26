// llama.cpp's non-linear 4-bit types IQ4_NL and IQ4_XS (ggml-common.h's block_iq4_nl,
// block_iq4_xs): each nibble indexes a fixed 16-entry codebook, times the block's scale; dequantized
// as ggml's dequantize_row_iq4_nl / iq4_xs do (d, or d * (sub-block scale - 32), times the entry).
#include "core/half.h"
#include "model/dequantize.h"
#include "model/dequantize_kernels.h"

namespace reslens::detail::scalar {

namespace {

// ggml-common.h's kvalues_iq4nl: a 4-bit grid denser near zero, where weights are.
constexpr int8_t kCodebook[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// 32 values from 16 bytes of nibbles: value j < 16 is byte j's low nibble, j + 16 its high one.
void nibbles(float* y, const uint8_t* qs, float scale) {
  for (int j = 0; j < 16; ++j) {
    y[j] = scale * static_cast<float>(kCodebook[qs[j] & 0x0F]);
    y[j + 16] = scale * static_cast<float>(kCodebook[qs[j] >> 4]);
  }
}

}  // namespace

// 18 bytes per 32 values: fp16 d, 16 bytes of nibbles.
void iq4_nl(float* out, std::span<const uint8_t> in, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b) {
    const uint8_t* block = in.data() + b * 18;
    nibbles(out + b * 32, block + 2, fp16_at(block));
  }
}

// 136 bytes per 256 values: fp16 d, uint16 scales_h (2 high bits per sub-block), scales_l[4] (a
// nibble per sub-block), qs[128]. Sub-block ib's scale: d * (six-bit scale - 32).
void iq4_xs(float* out, std::span<const uint8_t> in, int64_t n) {
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t* block = in.data() + b * 136;
    const float d = fp16_at(block);
    const unsigned high = static_cast<unsigned>(block[2] | (block[3] << 8));
    const uint8_t* low = block + 4;
    const uint8_t* qs = block + 8;
    for (int ib = 0; ib < 8; ++ib) {
      const int ls = static_cast<int>(((low[ib / 2] >> (4 * (ib % 2))) & 0x0F) | (((high >> (2 * ib)) & 3U) << 4));
      nibbles(out + b * 256 + ib * 32, qs + 16 * ib, d * static_cast<float>(ls - 32));
    }
  }
}

}  // namespace reslens::detail::scalar
