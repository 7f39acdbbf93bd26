// bench_gemm_encoded: ops::matmul_nt_encoded (weights kept in their file's encoding, decoded tile by
// tile inside the product; issue 15) against ops::matmul_nt on the same weights converted to float32,
// on a Llama-2-7B layer's shapes at M = 1, 8 and 128 tokens. This is where a 7B forward pass spends
// its time, so it is where prompt processing at 8 tokens (each decoded weight feeding only 8
// multiply-adds) is won or lost.
//
// Weights come from memory, as in a forward pass over a 4-14 GB file: each benchmark cycles through
// copies of B totalling at least kColdBytes. Threads: RESLENS_BENCH_THREADS (default 2).
//
// RESLENS_BENCH_ISA=avx2 caps the GEMM and the dequantizers at AVX2 (a CPU without AVX-512);
// RESLENS_BENCH_WHOLE_ROWS=1 leaves the encoding's block size out of EncodedRows, so every M takes
// the whole-row decode (the path before the K-blocked one; an A/B in one binary).
//
// Names: BM_GemmEncoded/<type>/<shape>/M:<tokens>. Counters: GFLOP/s = 2 M N K per call; W_GB/s =
// bytes of the stored weights per call.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "model/dequantize.h"
#include "gemm_shapes.h"
#include "ops/gemm.h"
#include "random_blocks.h"

namespace {

using reslens::bench::BlockFormat;

using reslens::bench::bench_threads;
using reslens::bench::kColdBytes;
using Shape = reslens::bench::GemmShape;

constexpr Shape kShapes[] = {{"q_k_v_o", 4096, 4096}, {"gate_up", 11008, 4096}, {"down", 4096, 11008}};
constexpr int64_t kTokens[] = {1, 8, 128};

// "F32" is the converted path: matmul_nt on the float32 values the F16 blocks decode to.
const std::vector<BlockFormat> kFormats = {
    {"F32", reslens::dequantize_f16, 1, 2, {0}},
    {"F16", reslens::dequantize_f16, 1, 2, {0}},
    {"Q8_0", reslens::dequantize_q8_0, 32, 34, {0}},
    {"Q4_K", reslens::dequantize_q4_k, 256, 144, {0, 2}},
    {"Q6_K", reslens::dequantize_q6_k, 256, 210, {208}},
};

void run(benchmark::State& state, const BlockFormat& f, const Shape& s, int64_t M) {
  const bool f32 = std::string(f.name) == "F32";
  const int64_t row_bytes = s.K / f.elements * f.bytes;
  const int64_t b_bytes = f32 ? s.N * s.K * 4 : s.N * row_bytes;
  const int64_t copies = std::clamp<int64_t>(kColdBytes / b_bytes, 1, 64);
  std::vector<std::vector<uint8_t>> enc(static_cast<size_t>(copies));  // [copies][N, row_bytes]
  std::vector<std::vector<float>> dec(f32 ? static_cast<size_t>(copies) : 0);  // [copies][N, K]
  for (int64_t c = 0; c < copies; ++c) {
    enc[static_cast<size_t>(c)] = reslens::bench::random_blocks(f, s.N * s.K, static_cast<uint32_t>(c + 1));
    if (f32) {
      dec[static_cast<size_t>(c)].resize(static_cast<size_t>(s.N * s.K));
      f.decode(dec[static_cast<size_t>(c)].data(), enc[static_cast<size_t>(c)], s.N * s.K);
      enc[static_cast<size_t>(c)].clear();
      enc[static_cast<size_t>(c)].shrink_to_fit();
    }
  }
  std::vector<float> a(static_cast<size_t>(M * s.K), 0.01f), c(static_cast<size_t>(M * s.N));  // [M, K], [M, N]
  const int threads = bench_threads();
  const char* whole = std::getenv("RESLENS_BENCH_WHOLE_ROWS");
  const bool whole_rows = whole != nullptr && std::string(whole) == "1";
  size_t i = 0;
  for (auto _ : state) {
    const size_t k = i++ % static_cast<size_t>(copies);
    if (f32) {
      reslens::ops::matmul_nt(M, s.N, s.K, a.data(), s.K, dec[k].data(), s.K, c.data(), s.N, threads);
    } else {
      const reslens::ops::EncodedRows rows{enc[k].data(), row_bytes, f.decode, whole_rows ? 0 : f.elements,
                                           whole_rows ? 0 : f.bytes};
      reslens::ops::matmul_nt_encoded(M, s.N, s.K, a.data(), s.K, rows, c.data(), s.N, threads);
    }
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  const double calls = static_cast<double>(state.iterations());
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(M * s.N * s.K) * calls / 1e9,
                                                 benchmark::Counter::kIsRate);
  state.counters["W_GB/s"] =
      benchmark::Counter(static_cast<double>(b_bytes) * calls / 1e9, benchmark::Counter::kIsRate);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  const char* isa = std::getenv("RESLENS_BENCH_ISA");
  if (isa != nullptr && std::string(isa) == "avx2") {
    reslens::ops::detail::set_gemm_isa_limit(reslens::ops::detail::GemmIsa::avx2);
    reslens::detail::set_dequantize_isa_limit(reslens::detail::DequantizeIsa::avx2);
  }
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  for (const BlockFormat& f : kFormats) {
    for (const Shape& s : kShapes) {
      for (int64_t M : kTokens) {
        const std::string name =
            std::string("BM_GemmEncoded/") + f.name + "/" + s.name + "/M:" + std::to_string(M);
        benchmark::RegisterBenchmark(name.c_str(), [&f, &s, M](benchmark::State& st) { run(st, f, s, M); })
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
      }
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
