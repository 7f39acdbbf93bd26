// What the GEMM benchmarks (bench_gemm, bench_gemm_encoded) share: their threads, how much weight
// memory they cycle through so B comes from memory, and a weight matrix's shape.
#pragma once

#include <cstdint>
#include <cstdlib>

namespace reslens::bench {

/// Total bytes of B copies one benchmark cycles through: well over this machine's 32 MiB L3.
inline constexpr int64_t kColdBytes = int64_t{96} << 20;

/// RESLENS_BENCH_THREADS, default 2 (this machine's cores).
inline int bench_threads() {
  const char* env = std::getenv("RESLENS_BENCH_THREADS");
  const int n = env != nullptr ? std::atoi(env) : 0;
  return n > 0 ? n : 2;
}

/// A weight matrix B [N, K] of a forward pass.
struct GemmShape {
  const char* name;
  int64_t N;  // out features (rows of B)
  int64_t K;  // in features
};

}  // namespace reslens::bench
