// Conversions of stored weight formats to float32 (exact for F16/BF16; Q8_0 is d * q per block).
#pragma once

#include <cstdint>
#include <span>

namespace reslens {

/// Q8_0 block: fp16 scale d, then 32 int8 quants; x = d * q.
inline constexpr int64_t kQ8_0Block = 32;
inline constexpr int64_t kQ8_0BlockBytes = 34;

void dequantize_f16(float* out, std::span<const uint8_t> in, int64_t n);
void dequantize_bf16(float* out, std::span<const uint8_t> in, int64_t n);
/// n must be a multiple of 32 (the GGUF reader guarantees it).
void dequantize_q8_0(float* out, std::span<const uint8_t> in, int64_t n);

}  // namespace reslens
