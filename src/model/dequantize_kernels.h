// Internal interface between the dequantizers' entry points (dequantize_dispatch.cpp: the public
// functions of dequantize.h, which pick an instruction set at run time) and the kernels of each
// instruction set: the portable scalar ones (dequantize.cpp, dequantize_blocks.cpp, dequantize_k.cpp,
// dequantize_iq4.cpp), which define every value, and the AVX2 and AVX-512 ones
// (dequantize_*avx2.cpp, dequantize_*avx512.cpp), which give the same bits faster.
//
// Same bits means the same float32 operations on the same operands in the same order, one result
// per element: a SIMD kernel may compute a value once for a whole lane or a small table (the 16
// values a sub-block's 4-bit codes can take), but never fuse a multiply and an add, and never
// reassociate. The project compiles with -ffp-contract=off (cmake/ReslensWarnings.cmake), which is
// what keeps the compiler from fusing the scalar code's `d1 * q - m1` on one compiler and not on
// another (and ggml's values are unfused); the SIMD kernels write each multiply and add as its own
// intrinsic. Operand order shows only in which NaN's payload a two-NaN operation returns: fixed
// for a subtraction, but a compiler may swap the operands of an add or multiply, in scalar code
// and intrinsics alike, so Q4_1/Q5_1's q d + m with d and m both NaN is NaN of either payload.
#pragma once

#include <cstdint>
#include <span>

namespace reslens::detail {

/// One type's conversion: n values (whole blocks) from `in` to out[0, n).
using DequantizeFn = void (*)(float* out, std::span<const uint8_t> in, int64_t n);

/// The kernels of one instruction set, one per stored type.
struct DequantizeKernels {
  DequantizeFn f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k, iq4_nl, iq4_xs;
};

/// The portable definitions: ggml's dequantize_row_* in the same float32 operations and order.
namespace scalar {
void f16(float* out, std::span<const uint8_t> in, int64_t n);
void bf16(float* out, std::span<const uint8_t> in, int64_t n);
void q8_0(float* out, std::span<const uint8_t> in, int64_t n);
void q4_0(float* out, std::span<const uint8_t> in, int64_t n);
void q4_1(float* out, std::span<const uint8_t> in, int64_t n);
void q5_0(float* out, std::span<const uint8_t> in, int64_t n);
void q5_1(float* out, std::span<const uint8_t> in, int64_t n);
void q2_k(float* out, std::span<const uint8_t> in, int64_t n);
void q3_k(float* out, std::span<const uint8_t> in, int64_t n);
void q4_k(float* out, std::span<const uint8_t> in, int64_t n);
void q5_k(float* out, std::span<const uint8_t> in, int64_t n);
void q6_k(float* out, std::span<const uint8_t> in, int64_t n);
void iq4_nl(float* out, std::span<const uint8_t> in, int64_t n);
void iq4_xs(float* out, std::span<const uint8_t> in, int64_t n);
}  // namespace scalar

/// The SIMD kernels of each instruction set; nullptr when this build has none (non-x86 targets).
/// The caller checks that the CPU supports the instruction set before running them.
const DequantizeKernels* avx2_dequantize_kernels();
const DequantizeKernels* avx512_dequantize_kernels();

}  // namespace reslens::detail
