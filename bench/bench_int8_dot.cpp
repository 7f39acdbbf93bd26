// bench_int8_dot: ops::int8_dot_tile, the sketched projection's integer products
// (analysis/projection_sketch.cpp, step 4), per kernel (AVX-512 VNNI, AVX-VNNI, AVX2, portable),
// against ops::matmul_nt doing the same multiply-adds in float32 (what the exact pass does instead;
// AVX-512 and AVX2), at 1 and RESLENS_BENCH_THREADS threads (default 2).
//
// Shapes as the sketch runs them: 8192 rows of W_U's codes (128 tiles, a slice of the vocabulary;
// GPT-2's 50257 rows take 6.1x as long) of d = 768 (GPT-2 124M) or 4096 (Llama-2-7B) columns,
// against 384 vectors (the sketch's sweep: their codes stay in L2), tiles split across threads.
// The portable loops get 24 vectors (they run at ~0.6 GMAC/s).
//
// Counter: GMAC/s = rows x d x vectors per call (int8 or float multiply-adds).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/parallel.h"
#include "gemm_shapes.h"
#include "ops/gemm.h"
#include "ops/int8_dot.h"

namespace {

using reslens::ops::detail::GemmIsa;
using reslens::ops::detail::Int8Kernel;
using reslens::bench::bench_threads;

constexpr int64_t kRows = 8192;
constexpr int64_t kVectors = 384;

uint32_t next_random(uint32_t& s) {
  s = s * 1664525u + 1013904223u;
  return s >> 8;
}

void set_gmacs(benchmark::State& state, int64_t n, int64_t d, int64_t m) {
  state.counters["GMAC/s"] = benchmark::Counter(static_cast<double>(n * d * m) * 1e-9,
                                                benchmark::Counter::kIsIterationInvariantRate);
}

void bm_int8(benchmark::State& state, Int8Kernel kernel, int64_t d, int64_t m) {
  const int threads = static_cast<int>(state.range(0));
  if (reslens::ops::detail::int8_dot_best_kernel() < kernel) {
    state.SkipWithError("kernel not available on this CPU");
    return;
  }
  uint32_t s = 7;
  std::vector<int8_t> codes(static_cast<size_t>(kRows * d));  // [rows, d]
  for (int8_t& c : codes) c = static_cast<int8_t>(static_cast<int>(next_random(s) % 255) - 127);
  const reslens::ops::Int8Rows rows = reslens::ops::pack_int8_rows(codes.data(), kRows, d, d);
  std::vector<uint8_t> xs(static_cast<size_t>(m * rows.k_pad));  // [m, k_pad] value + 128
  for (uint8_t& x : xs) x = static_cast<uint8_t>(1 + next_random(s) % 255);
  reslens::ops::detail::set_int8_dot_kernel_limit(kernel);
  for (auto _ : state) {
    reslens::parallel_for(threads, rows.n_tiles(), [&](int64_t t0, int64_t t1) {
      std::vector<int32_t> dots(static_cast<size_t>(m * 64));  // [m, 64]
      for (int64_t tile = t0; tile < t1; ++tile) {
        reslens::ops::int8_dot_tile(rows, tile, xs.data(), m, dots.data());
        benchmark::DoNotOptimize(dots.data());
      }
    });
  }
  reslens::ops::detail::set_int8_dot_kernel_limit(Int8Kernel::amx);
  set_gmacs(state, kRows, d, m);
}

// The same multiply-adds in float32: [m, d] vectors x [rows, d] rows, matmul_nt at `isa` (AVX2: what
// the exact pass runs on a laptop without AVX-512).
void bm_float(benchmark::State& state, GemmIsa isa, int64_t d, int64_t m) {
  const int threads = static_cast<int>(state.range(0));
  reslens::ops::detail::set_gemm_isa_limit(isa);
  if (reslens::ops::detail::gemm_active_isa() != isa) {
    state.SkipWithError("instruction set not available on this CPU");
    return;
  }
  uint32_t s = 9;
  std::vector<float> w(static_cast<size_t>(kRows * d)), y(static_cast<size_t>(m * d));
  std::vector<float> out(static_cast<size_t>(m * kRows));  // [m, rows]
  for (float& x : w) x = static_cast<float>(next_random(s)) * (1.0f / 16777216.0f) - 0.5f;
  for (float& x : y) x = static_cast<float>(next_random(s)) * (1.0f / 16777216.0f) - 0.5f;
  for (auto _ : state) {
    reslens::ops::matmul_nt(m, kRows, d, y.data(), d, w.data(), d, out.data(), kRows, threads);
    benchmark::DoNotOptimize(out.data());
  }
  reslens::ops::detail::set_gemm_isa_limit(GemmIsa::avx512);
  set_gmacs(state, kRows, d, m);
}

void register_all() {
  const int64_t threads = bench_threads();
  for (const int64_t d : {int64_t{768}, int64_t{4096}}) {
    const std::string shape = "/d:" + std::to_string(d);
    for (const Int8Kernel k : {Int8Kernel::amx, Int8Kernel::avx512_vnni, Int8Kernel::avx_vnni, Int8Kernel::avx2, Int8Kernel::portable}) {
      const int64_t m = k == Int8Kernel::portable ? 24 : kVectors;
      benchmark::RegisterBenchmark(
          (std::string("int8_") + reslens::ops::detail::int8_kernel_name(k) + shape + "/m:" + std::to_string(m)).c_str(),
          bm_int8, k, d, m)
          ->Arg(1)
          ->Arg(threads)
          ->ArgName("threads")
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
    for (const GemmIsa isa : {GemmIsa::avx512, GemmIsa::avx2}) {
      benchmark::RegisterBenchmark(
          (std::string("float32_gemm_") + (isa == GemmIsa::avx512 ? "avx512" : "avx2") + shape + "/m:" +
           std::to_string(kVectors))
              .c_str(),
          bm_float, isa, d, kVectors)
          ->Arg(1)
          ->Arg(threads)
          ->ArgName("threads")
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::AddCustomContext("threads", std::to_string(bench_threads()));
  benchmark::AddCustomContext("int8_best_kernel",
                              reslens::ops::detail::int8_kernel_name(reslens::ops::detail::int8_dot_best_kernel()));
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
