// RESLENS_ISA: run the CLI as if the CPU had fewer instruction sets (measuring what a laptop without
// AVX-512 gets, on a machine that has it). Results never change with it (every kernel gives the
// same bits); only speed does.
#pragma once

#include <string>

namespace reslens::cli {

/// Reads $RESLENS_ISA and caps the GEMM, dequantization and int8 kernels accordingly:
///   avx512 (or unset / empty): no cap; avx-vnni: AVX2 kernels and the 256-bit AVX-VNNI int8 kernel
///   (Intel Alder Lake and later); avx2: AVX2 only (no VNNI of either width); scalar: the portable
///   loops. Kernels the CPU lacks stay unused whatever the cap. Any other value: InvalidArgument.
void apply_isa_limit_from_env();

/// The instruction sets the kernels run on now (after RESLENS_ISA and the CPU's own): `bench`
/// reports them, so a measurement says what it measured.
struct ActiveKernels {
  std::string gemm;        ///< avx512, avx2, scalar
  std::string dequantize;  ///< avx512, avx2, scalar
  std::string int8;        ///< avx512-vnni, avx-vnni, avx2, portable
};
ActiveKernels active_kernels();

}  // namespace reslens::cli
