// The SIMD dequantizers against the portable scalar code, bit for bit (memcmp, so NaN payloads and
// the sign of zero count): every stored type, on every instruction set this machine can run, over
// every fp16 value as a block's scale, random blocks whose scales are NaN (quiet and signaling,
// either sign, several payloads), infinities, subnormals, zeros and the largest finite values,
// codes of all zero and all one bits, one block and odd block counts up to a few rows, and input
// and output pointers off their natural alignment. The suite is spelled `Dequantize` so that
// `ctest -R Dequantize` selects it with the per-format tests of dequantize_test.cpp.
//
// One exception to the bits: Q4_1 and Q5_1 compute q d + m, and when q d and m are both NaN (m
// NaN, and d NaN or infinite, as inf * 0 is NaN), which payload comes out is whichever operand the
// compiler puts first in the add. Compilers treat a float add as commutative, in scalar code and in
// intrinsics alike (GCC turned _mm512_add_ps(m, t) back into t + m; clang 14 put m first in the
// AVX2 kernel and last in the scalar code), so no source fixes it; those values must only be NaN.
// Everywhere else at most one operand can be NaN (codes are finite) or the operation is a
// subtraction, whose operand order is fixed.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "model/dequantize.h"

namespace reslens {
namespace {

using detail::DequantizeIsa;

struct Format {
  const char* name;
  void (*fn)(float*, std::span<const uint8_t>, int64_t);
  int64_t elements;              // values per block
  int64_t bytes;                 // bytes per block
  std::vector<int> fp16_fields;  // byte offsets of the block's fp16 scales
  bool adds_two_scales = false;  // x = q d + m: the NaN payload is free when q d and m are both NaN
};

const std::vector<Format>& formats() {
  static const std::vector<Format> all = {
      {"F16", dequantize_f16, 1, 2, {0}},
      {"BF16", dequantize_bf16, 1, 2, {}},
      {"Q8_0", dequantize_q8_0, 32, 34, {0}},
      {"Q4_0", dequantize_q4_0, 32, 18, {0}},
      {"Q4_1", dequantize_q4_1, 32, 20, {0, 2}, true},
      {"Q5_0", dequantize_q5_0, 32, 22, {0}},
      {"Q5_1", dequantize_q5_1, 32, 24, {0, 2}, true},
      {"Q2_K", dequantize_q2_k, 256, 84, {80, 82}},
      {"Q3_K", dequantize_q3_k, 256, 110, {108}},
      {"Q4_K", dequantize_q4_k, 256, 144, {0, 2}},
      {"Q5_K", dequantize_q5_k, 256, 176, {0, 2}},
      {"Q6_K", dequantize_q6_k, 256, 210, {208}},
      {"IQ4_NL", dequantize_iq4_nl, 32, 18, {0}},
      {"IQ4_XS", dequantize_iq4_xs, 256, 136, {0}},
  };
  return all;
}

// fp16 values a scale must survive: zeros, the smallest and largest subnormals and normals, one,
// the largest finite value, infinities, and NaNs quiet and signaling with small and large payloads.
constexpr uint16_t kSpecialHalves[] = {0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x83FF, 0x0400, 0x8400,
                                       0x3C00, 0xBC00, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00, 0x7E00, 0xFE00,
                                       0x7C01, 0xFC01, 0x7D55, 0x7FFF, 0xFFFF, 0x7DFF, 0x7E01, 0xFE2A};

void put_half(uint8_t* p, uint16_t h) {
  p[0] = static_cast<uint8_t>(h & 0xFF);
  p[1] = static_cast<uint8_t>(h >> 8);
}

// `blocks` random blocks of `f`. Each fp16 scale is a special value (half the time) or random bits;
// one block in eight has its codes all zero bits and one in eight all one bits (the extreme codes).
// With `first_scale_from`, block b's first scale is instead the fp16 value first_scale_from + b.
std::vector<uint8_t> random_blocks(const Format& f, int64_t blocks, std::mt19937& rng, int first_scale_from = -1) {
  std::vector<uint8_t> data(static_cast<size_t>(blocks * f.bytes));  // [blocks, bytes]
  std::uniform_int_distribution<int> byte(0, 255), pick(0, 7);
  std::uniform_int_distribution<size_t> special(0, std::size(kSpecialHalves) - 1);
  for (auto& x : data) x = static_cast<uint8_t>(byte(rng));
  for (int64_t b = 0; b < blocks; ++b) {
    uint8_t* block = data.data() + b * f.bytes;
    const int kind = pick(rng);
    if (f.elements > 1 && kind < 2) std::memset(block, kind == 0 ? 0x00 : 0xFF, static_cast<size_t>(f.bytes));
    for (size_t k = 0; k < f.fp16_fields.size(); ++k) {
      uint16_t h = static_cast<uint16_t>(byte(rng) | (byte(rng) << 8));
      if (pick(rng) < 4) h = kSpecialHalves[special(rng)];
      if (k == 0 && first_scale_from >= 0) h = static_cast<uint16_t>(first_scale_from + b);
      put_half(block + f.fp16_fields[k], h);
    }
  }
  return data;
}

std::vector<DequantizeIsa> available_isas() {
  std::vector<DequantizeIsa> out;
  for (DequantizeIsa isa : {DequantizeIsa::scalar, DequantizeIsa::avx2, DequantizeIsa::avx512})
    if (static_cast<int>(isa) <= static_cast<int>(detail::dequantize_best_isa())) out.push_back(isa);
  return out;
}

const char* isa_name(DequantizeIsa isa) {
  switch (isa) {
    case DequantizeIsa::avx512:
      return "avx512";
    case DequantizeIsa::avx2:
      return "avx2";
    case DequantizeIsa::scalar:
      break;
  }
  return "scalar";
}

struct IsaGuard {
  explicit IsaGuard(DequantizeIsa isa) { detail::set_dequantize_isa_limit(isa); }
  ~IsaGuard() { detail::set_dequantize_isa_limit(DequantizeIsa::avx512); }
  IsaGuard(const IsaGuard&) = delete;
  IsaGuard& operator=(const IsaGuard&) = delete;
};

constexpr float kSentinel = 12345.0f;

// f's n values from `in` (placed `in_shift` bytes past an aligned start) into an output placed
// `out_shift` floats past an aligned start, under instruction set `isa`; returns the values and
// fails if anything past them was written.
std::vector<float> run(const Format& f, DequantizeIsa isa, std::span<const uint8_t> in, int64_t n, int in_shift,
                       int out_shift) {
  // [shift + bytes], with no slack after the input, so that a sanitizer build sees any over-read.
  std::vector<uint8_t> src(in.size() + static_cast<size_t>(in_shift));
  std::memcpy(src.data() + in_shift, in.data(), in.size());
  std::vector<float> dst(static_cast<size_t>(n + out_shift + 16), kSentinel);  // [shift + n + guard]
  {
    IsaGuard guard(isa);
    EXPECT_EQ(detail::dequantize_active_isa(), isa);
    f.fn(dst.data() + out_shift, std::span<const uint8_t>(src.data() + in_shift, in.size()), n);
  }
  for (size_t i = 0; i < dst.size(); ++i) {
    const bool inside = i >= static_cast<size_t>(out_shift) && i < static_cast<size_t>(n + out_shift);
    if (!inside) {
      EXPECT_EQ(dst[i], kSentinel) << f.name << " " << isa_name(isa) << " wrote outside at " << i;
    }
  }
  return {dst.begin() + out_shift, dst.begin() + out_shift + n};
}

int half_magnitude(const uint8_t* p) { return (p[0] | (p[1] << 8)) & 0x7FFF; }
bool is_nan_half(const uint8_t* p) { return half_magnitude(p) > 0x7C00; }
bool is_infinite_or_nan_half(const uint8_t* p) { return half_magnitude(p) >= 0x7C00; }
bool is_nan_bits(uint32_t x) { return (x & 0x7FFFFFFFU) > 0x7F800000U; }

// Every SIMD path against the scalar one on the same input, bitwise, naming the first difference.
void expect_same_bits(const Format& f, std::span<const uint8_t> in, int64_t n, int in_shift, int out_shift) {
  const std::vector<float> ref = run(f, DequantizeIsa::scalar, in, n, 0, 0);
  for (DequantizeIsa isa : available_isas()) {
    if (isa == DequantizeIsa::scalar) continue;
    const std::vector<float> got = run(f, isa, in, n, in_shift, out_shift);
    if (std::memcmp(got.data(), ref.data(), ref.size() * sizeof(float)) == 0) continue;
    for (size_t i = 0; i < ref.size(); ++i) {
      uint32_t a, b;
      std::memcpy(&a, &got[i], 4);
      std::memcpy(&b, &ref[i], 4);
      if (a == b) continue;
      const int64_t block = static_cast<int64_t>(i) / f.elements;
      const uint8_t* p = in.data() + block * f.bytes;
      if (f.adds_two_scales && is_infinite_or_nan_half(p) && is_nan_half(p + 2) && is_nan_bits(a) && is_nan_bits(b))
        continue;
      ADD_FAILURE() << f.name << " on " << isa_name(isa) << ", n = " << n << ", shifts " << in_shift << "/" << out_shift
                    << ": value " << i << " (block " << block << ") is 0x" << std::hex << a << ", scalar 0x" << b;
      break;
    }
  }
}

class Dequantize : public ::testing::TestWithParam<size_t> {
 protected:
  const Format& format() const { return formats()[GetParam()]; }
};

// Every fp16 value as the first scale of a block (the value itself for F16), the others random.
TEST_P(Dequantize, SimdMatchesScalarForEveryScale) {
  const Format& f = format();
  std::mt19937 rng(static_cast<uint32_t>(17 + GetParam()));
  constexpr int64_t kChunk = 4096;  // blocks per call
  for (int from = 0; from < 65536; from += kChunk) {
    std::vector<uint8_t> in = random_blocks(f, kChunk, rng, from);
    if (f.fp16_fields.empty())  // BF16: every bit pattern as a value
      for (int64_t b = 0; b < kChunk; ++b) put_half(in.data() + 2 * b, static_cast<uint16_t>(from + b));
    expect_same_bits(f, in, kChunk * f.elements, 0, 0);
  }
}

// Random blocks, one call each for many lengths and misalignments of input and output.
TEST_P(Dequantize, SimdMatchesScalarForAnyLengthAndAlignment) {
  const Format& f = format();
  std::mt19937 rng(static_cast<uint32_t>(101 + GetParam()));
  // Block counts: one, odd counts, a 4096-value row, six rows, and (for 16-bit types, whose
  // "blocks" are values) lengths that end mid-register.
  std::vector<int64_t> counts = {1, 3, 7, 33, 4096 / f.elements, 6 * 4096 / f.elements, 4096 / f.elements + 1};
  if (f.elements == 1)
    for (int64_t c : {2, 5, 8, 9, 15, 16, 17, 31, 63, 65, 4097}) counts.push_back(c);
  for (int64_t blocks : counts) {
    const std::vector<uint8_t> in = random_blocks(f, blocks, rng);
    for (const auto& [in_shift, out_shift] : {std::pair{0, 0}, std::pair{1, 1}, std::pair{3, 5}, std::pair{2, 3}})
      expect_same_bits(f, in, blocks * f.elements, in_shift, out_shift);
  }
}

// Thousands of random blocks in one call (the scales' specials mixed in among random bits).
TEST_P(Dequantize, SimdMatchesScalarOnManyRandomBlocks) {
  const Format& f = format();
  std::mt19937 rng(static_cast<uint32_t>(999 + GetParam()));
  const int64_t blocks = f.elements == 1 ? 65536 : 8192;
  const std::vector<uint8_t> in = random_blocks(f, blocks, rng);
  expect_same_bits(f, in, blocks * f.elements, 1, 1);
}

INSTANTIATE_TEST_SUITE_P(Formats, Dequantize, ::testing::Range<size_t>(0, 14),
                         [](const ::testing::TestParamInfo<size_t>& p) { return std::string(formats()[p.param].name); });

TEST(DequantizeIsa, CapNeverExceedsTheBest) {
  for (DequantizeIsa isa : {DequantizeIsa::scalar, DequantizeIsa::avx2, DequantizeIsa::avx512}) {
    IsaGuard guard(isa);
    EXPECT_LE(static_cast<int>(detail::dequantize_active_isa()), static_cast<int>(isa));
    EXPECT_LE(static_cast<int>(detail::dequantize_active_isa()), static_cast<int>(detail::dequantize_best_isa()));
  }
  EXPECT_EQ(detail::dequantize_active_isa(), detail::dequantize_best_isa());
  RecordProperty("best_isa", isa_name(detail::dequantize_best_isa()));
}

}  // namespace
}  // namespace reslens
