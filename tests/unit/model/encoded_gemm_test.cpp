// ops::matmul_nt_encoded on every stored type with the model's own dequantizers, bit for bit against
// ops::matmul_nt on the whole-matrix conversion: the K-blocked path (M <= 16), whose blocks of K
// cut a row between the encoding's blocks, and the whole-row path above it. Every M from 1 to 9 (the
// tile heights and their remainders), 16 and 17, a K over several K blocks, 1 and 2 threads, every
// GEMM instruction set. Instantiated as `gemm/...` so that `ctest -R gemm` selects it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "model/dequantize.h"
#include "model/storage.h"
#include "ops/gemm.h"

namespace reslens {
namespace {

using ops::detail::GemmIsa;

struct Format {
  const char* name;
  StorageType type;
  std::vector<int> fp16_fields;  // byte offsets of the block's fp16 scales (F16: the value itself)
};

const std::vector<Format>& formats() {
  static const std::vector<Format> all = {
      {"F16", StorageType::kF16, {0}},        {"BF16", StorageType::kBF16, {}},
      {"Q8_0", StorageType::kQ8_0, {0}},      {"Q4_0", StorageType::kQ4_0, {0}},
      {"Q4_1", StorageType::kQ4_1, {0, 2}},   {"Q5_0", StorageType::kQ5_0, {0}},
      {"Q5_1", StorageType::kQ5_1, {0, 2}},   {"Q2_K", StorageType::kQ2_K, {80, 82}},
      {"Q3_K", StorageType::kQ3_K, {108}},    {"Q4_K", StorageType::kQ4_K, {0, 2}},
      {"Q5_K", StorageType::kQ5_K, {0, 2}},   {"Q6_K", StorageType::kQ6_K, {208}},
      {"IQ4_NL", StorageType::kIQ4_NL, {0}},  {"IQ4_XS", StorageType::kIQ4_XS, {0}},
  };
  return all;
}

// Random blocks with finite values: every fp16 scale (or F16 value) has a random sign and mantissa
// and an exponent of 2^-5..2^5, every BF16 value likewise, so products and sums stay finite (a NaN's
// payload is not part of gemm.h's promise).
std::vector<uint8_t> finite_blocks(const Format& f, int64_t blocks, std::mt19937& rng) {
  const EncodingBlock b = encoding_block(f.type);
  std::vector<uint8_t> data(static_cast<size_t>(blocks * b.bytes));  // [blocks, bytes]
  std::uniform_int_distribution<int> byte(0, 255), exponent(10, 20);
  for (auto& x : data) x = static_cast<uint8_t>(byte(rng));
  for (int64_t k = 0; k < blocks; ++k) {
    uint8_t* block = data.data() + k * b.bytes;
    for (const int field : f.fp16_fields) {
      const int h = (byte(rng) & 0x83) << 8 | byte(rng) | exponent(rng) << 10;  // sign, exponent, mantissa
      block[field] = static_cast<uint8_t>(h & 0xFF);
      block[field + 1] = static_cast<uint8_t>(h >> 8);
    }
    if (f.type == StorageType::kBF16) block[1] = static_cast<uint8_t>((byte(rng) & 0x80) | (0x3C + exponent(rng) % 4));
  }
  return data;
}

std::vector<float> random_floats(int64_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));  // [n]
  for (float& x : v) x = u(rng);
  return v;
}

class GemmEncoded : public ::testing::TestWithParam<size_t> {};

TEST_P(GemmEncoded, EveryTypeGivesTheConvertedBits) {
  const Format& f = formats()[GetParam()];
  const EncodingBlock block = encoding_block(f.type);
  std::mt19937 rng(static_cast<uint32_t>(7 + GetParam()));
  // Several K blocks (256 values at M = 1, 352-672 above) and a last one shorter; for the 16-bit
  // types also a K % 16 tail.
  const int64_t K = block.elements == 1 ? 1203 : block.elements * (block.elements == 256 ? 7 : 45);
  const int64_t N = 37;
  const int64_t row_bytes = K / block.elements * block.bytes;
  const std::vector<uint8_t> packed = finite_blocks(f, N * K / block.elements, rng);  // [N, row_bytes]
  std::vector<float> B(static_cast<size_t>(N * K));                                    // [N, K] converted
  dequantize_fn(f.type)(B.data(), packed, N * K);
  const ops::EncodedRows rows{packed.data(), row_bytes, dequantize_fn(f.type), block.elements, block.bytes};
  for (const int64_t M : {1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17, 42}) {
    const std::vector<float> A = random_floats(M * K, rng);  // [M, K]
    // Above 16 rows, a 16 KB L2 leaves A out of it: the panels (blocks of K, of A's rows and of B's rows).
    ops::detail::set_gemm_l2_bytes(M > 16 ? int64_t{16} << 10 : 0);
    for (const GemmIsa isa : {GemmIsa::scalar, GemmIsa::avx2, GemmIsa::avx512}) {
      if (isa > ops::detail::gemm_best_isa()) continue;
      ops::detail::set_gemm_isa_limit(isa);
      for (const int threads : {1, 2}) {
        std::vector<float> want(static_cast<size_t>(M * N), 0.25f), got(want);  // [M, N]
        ops::matmul_nt(M, N, K, A.data(), K, B.data(), K, want.data(), N, threads);
        ops::matmul_nt_encoded(M, N, K, A.data(), K, rows, got.data(), N, threads);
        for (const float x : want) ASSERT_TRUE(std::isfinite(x)) << f.name;
        ASSERT_EQ(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)), 0)
            << f.name << " M " << M << " isa " << static_cast<int>(isa) << " threads " << threads;
      }
    }
    ops::detail::set_gemm_isa_limit(GemmIsa::avx512);
  }
  ops::detail::set_gemm_l2_bytes(0);
}

INSTANTIATE_TEST_SUITE_P(gemm, GemmEncoded, ::testing::Range<size_t>(0, 14),
                         [](const ::testing::TestParamInfo<size_t>& p) { return std::string(formats()[p.param].name); });

}  // namespace
}  // namespace reslens
