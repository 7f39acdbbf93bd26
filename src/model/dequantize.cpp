// The portable F16, BF16 and Q8_0 conversions: the definitions the SIMD kernels reproduce.
#include <cstring>
#include <vector>

#include "core/half.h"
#include "model/dequantize.h"
#include "model/dequantize_kernels.h"

namespace reslens::detail::scalar {

namespace {
// Every binary16 value as float32 (256 KB, built once): a lookup per value instead of the
// branches of fp16_to_fp32, ~4x faster when a model stored as F16 loads. Exact, like the function.
const float* fp16_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(65536);
    for (uint32_t h = 0; h < 65536; ++h) t[h] = fp16_to_fp32(static_cast<uint16_t>(h));
    return t;
  }();
  return table.data();
}
}  // namespace

void f16(float* out, std::span<const uint8_t> in, int64_t n) {
  const float* table = fp16_table();
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, in.data() + 2 * i, 2);
    out[i] = table[h];
  }
}

void bf16(float* out, std::span<const uint8_t> in, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, in.data() + 2 * i, 2);
    out[i] = bf16_to_fp32(h);
  }
}

void q8_0(float* out, std::span<const uint8_t> in, int64_t n) {
  const int64_t blocks = n / kQ8_0Block;
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* block = in.data() + b * kQ8_0BlockBytes;
    const float d = fp16_at(block);
    const auto* q = reinterpret_cast<const int8_t*>(block + 2);
    for (int64_t i = 0; i < kQ8_0Block; ++i) out[b * kQ8_0Block + i] = d * static_cast<float>(q[i]);
  }
}

}  // namespace reslens::detail::scalar
