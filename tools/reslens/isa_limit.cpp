// RESLENS_ISA and the kernels it leaves (isa_limit.h).
#include "isa_limit.h"

#include <cstdlib>
#include <string>

#include "model/dequantize.h"
#include "ops/gemm.h"
#include "ops/int8_dot.h"
#include "reslens/error.h"

namespace reslens::cli {

void apply_isa_limit_from_env() {
  const char* env = std::getenv("RESLENS_ISA");
  if (env == nullptr || *env == '\0') return;
  const std::string isa = env;
  using ops::detail::GemmIsa;
  using ops::detail::Int8Kernel;
  using DIsa = reslens::detail::DequantizeIsa;
  auto cap = [](GemmIsa gemm, DIsa dequantize, Int8Kernel int8) {
    ops::detail::set_gemm_isa_limit(gemm);
    reslens::detail::set_dequantize_isa_limit(dequantize);
    ops::detail::set_int8_dot_kernel_limit(int8);
  };
  if (isa == "amx") cap(GemmIsa::avx512, DIsa::avx512, Int8Kernel::amx);
  else if (isa == "avx512") cap(GemmIsa::avx512, DIsa::avx512, Int8Kernel::avx512_vnni);
  else if (isa == "avx-vnni") cap(GemmIsa::avx2, DIsa::avx2, Int8Kernel::avx_vnni);
  else if (isa == "avx2") cap(GemmIsa::avx2, DIsa::avx2, Int8Kernel::avx2);
  else if (isa == "scalar") cap(GemmIsa::scalar, DIsa::scalar, Int8Kernel::portable);
  else throw InvalidArgument("RESLENS_ISA='" + isa + "': expected amx, avx512, avx-vnni, avx2 or scalar");
}

namespace {
const char* isa_name(ops::detail::GemmIsa isa) {
  switch (isa) {
    case ops::detail::GemmIsa::avx512: return "avx512";
    case ops::detail::GemmIsa::avx2: return "avx2";
    case ops::detail::GemmIsa::scalar: break;
  }
  return "scalar";
}
const char* isa_name(reslens::detail::DequantizeIsa isa) {
  switch (isa) {
    case reslens::detail::DequantizeIsa::avx512: return "avx512";
    case reslens::detail::DequantizeIsa::avx2: return "avx2";
    case reslens::detail::DequantizeIsa::scalar: break;
  }
  return "scalar";
}
}  // namespace

ActiveKernels active_kernels() {
  return {isa_name(ops::detail::gemm_active_isa()), isa_name(reslens::detail::dequantize_active_isa()),
          ops::detail::int8_kernel_name(ops::detail::int8_dot_active_kernel())};
}

}  // namespace reslens::cli
