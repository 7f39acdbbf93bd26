// Conversions of stored weight formats to float32, value for value as ggml's dequantize_row_*
// computes them (the same float32 operations in the same order, so a llama.cpp model gives the
// weights llama.cpp itself would use): exact for F16/BF16, d * q per block for Q8_0, and llama.cpp's
// 4/5-bit block formats and k-quants (docs/formats.md gives each layout).
//
// The functions run AVX-512 or AVX2 code where the CPU has it, chosen once at run time; the bits
// are the same on every path (dequantize_kernels.h says how). They keep no state, so any number of
// threads may call them at once on disjoint outputs, e.g. a few rows each of a weight matrix.
#pragma once

#include <cstdint>
#include <span>

namespace reslens {

/// Q8_0 block: fp16 scale d, then 32 int8 quants; x = d * q.
inline constexpr int64_t kQ8_0Block = 32;
inline constexpr int64_t kQ8_0BlockBytes = 34;

/// One of the functions below: writes n float32 values (whole blocks) decoded from `in`.
using DequantizeFn = void (*)(float* out, std::span<const uint8_t> in, int64_t n);

void dequantize_f16(float* out, std::span<const uint8_t> in, int64_t n);
void dequantize_bf16(float* out, std::span<const uint8_t> in, int64_t n);
/// n must be a multiple of 32 (the GGUF reader guarantees it).
void dequantize_q8_0(float* out, std::span<const uint8_t> in, int64_t n);

/// The 32-value blocks (n a multiple of 32): Q4_0 (fp16 d, 16 bytes of nibbles; x = (q - 8) d),
/// Q4_1 (d, m; x = q d + m), Q5_0 (d, 32 high bits, nibbles; x = (q - 16) d), Q5_1 (d, m, high
/// bits, nibbles; x = q d + m). Value j < 16 is byte j's low nibble, value j + 16 its high nibble.
void dequantize_q4_0(float* out, std::span<const uint8_t> in, int64_t n);
void dequantize_q4_1(float* out, std::span<const uint8_t> in, int64_t n);
void dequantize_q5_0(float* out, std::span<const uint8_t> in, int64_t n);
void dequantize_q5_1(float* out, std::span<const uint8_t> in, int64_t n);

/// The k-quants' 256-value super-blocks (n a multiple of 256), sub-blocks with their own scales.
void dequantize_q2_k(float* out, std::span<const uint8_t> in, int64_t n);
void dequantize_q3_k(float* out, std::span<const uint8_t> in, int64_t n);
void dequantize_q4_k(float* out, std::span<const uint8_t> in, int64_t n);
void dequantize_q5_k(float* out, std::span<const uint8_t> in, int64_t n);
void dequantize_q6_k(float* out, std::span<const uint8_t> in, int64_t n);

/// The non-linear 4-bit types: IQ4_NL (32 values: fp16 d, nibbles; x = d * codebook[q]) and IQ4_XS
/// (256 values in 8 sub-blocks with six-bit scales; x = d (scale - 32) * codebook[q]).
void dequantize_iq4_nl(float* out, std::span<const uint8_t> in, int64_t n);
void dequantize_iq4_xs(float* out, std::span<const uint8_t> in, int64_t n);

namespace detail {

/// Instruction sets the dequantizers can run on, in increasing order.
enum class DequantizeIsa { scalar = 0, avx2 = 1, avx512 = 2 };

/// The best instruction set this CPU (and this build) supports.
DequantizeIsa dequantize_best_isa();

/// Test/benchmark hook: cap the instruction set used by later calls (process-wide; the portable
/// scalar code with DequantizeIsa::scalar). Passing DequantizeIsa::avx512 removes the cap. Results
/// do not change with it; only speed does.
void set_dequantize_isa_limit(DequantizeIsa limit);

/// The instruction set later calls will use (the best one, under the cap).
DequantizeIsa dequantize_active_isa();

}  // namespace detail
}  // namespace reslens
