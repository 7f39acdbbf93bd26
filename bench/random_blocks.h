// Random stored weights for the benchmarks: bytes of a llama.cpp block type (or F16/BF16) whose fp16
// scales are finite, so no block takes a NaN path. Shared by bench_dequantize and bench_gemm_encoded.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace reslens::bench {

struct BlockFormat {
  const char* name;
  void (*decode)(float*, std::span<const uint8_t>, int64_t);
  int64_t elements;              // values per block
  int64_t bytes;                 // bytes per block
  std::vector<int> fp16_fields;  // byte offsets of the block's fp16 scales
};

/// n values (whole blocks) of format f: random bytes, each fp16 scale given a random exponent 8..22
/// (finite, and sizes like a real checkpoint's). [n / f.elements blocks, f.bytes]
inline std::vector<uint8_t> random_blocks(const BlockFormat& f, int64_t n, uint32_t seed = 42) {
  const int64_t blocks = n / f.elements;
  std::vector<uint8_t> in(static_cast<size_t>(blocks * f.bytes));
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255), exponent(8, 22);
  for (auto& x : in) x = static_cast<uint8_t>(byte(rng));
  for (int64_t b = 0; b < blocks; ++b) {
    for (int off : f.fp16_fields) {
      uint8_t* p = in.data() + b * f.bytes + off;
      p[1] = static_cast<uint8_t>((p[1] & 0x83) | (exponent(rng) << 2));
    }
  }
  return in;
}

}  // namespace reslens::bench
