// bench_dequantize: the conversions of model/dequantize.h per stored type and instruction set, on
// one core, at the sizes the on-the-fly GEMM of issue 15 asks for: a 4096-value row (its output,
// 16 KiB, stays in L1), a 6 x 4096 tile (96 KiB, in L2), and a 16M-value matrix whose output (64 MiB)
// and input stream through memory as a whole-model conversion at load does.
//
// Names: BM_Dequantize/<type>/<isa>/<values per call>. Counters: items_per_second = values per
// second (so "12G/s" is 12 values per ns); bytes_per_second = bytes of the stored input read.
// The input is random bytes with finite scales, so no block takes a NaN path.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "model/dequantize.h"
#include "random_blocks.h"

namespace {

using reslens::detail::DequantizeIsa;

using Format = reslens::bench::BlockFormat;

const std::vector<Format> kFormats = {
    {"F16", reslens::dequantize_f16, 1, 2, {0}},
    {"BF16", reslens::dequantize_bf16, 1, 2, {}},
    {"Q8_0", reslens::dequantize_q8_0, 32, 34, {0}},
    {"Q4_K", reslens::dequantize_q4_k, 256, 144, {0, 2}},
    {"Q6_K", reslens::dequantize_q6_k, 256, 210, {208}},
    {"Q5_K", reslens::dequantize_q5_k, 256, 176, {0, 2}},
    {"Q4_0", reslens::dequantize_q4_0, 32, 18, {0}},
    {"Q5_0", reslens::dequantize_q5_0, 32, 22, {0}},
    {"Q4_1", reslens::dequantize_q4_1, 32, 20, {0, 2}},
    {"Q5_1", reslens::dequantize_q5_1, 32, 24, {0, 2}},
    {"Q2_K", reslens::dequantize_q2_k, 256, 84, {80, 82}},
    {"Q3_K", reslens::dequantize_q3_k, 256, 110, {108}},
    {"IQ4_NL", reslens::dequantize_iq4_nl, 32, 18, {0}},
    {"IQ4_XS", reslens::dequantize_iq4_xs, 256, 136, {0}},
};

constexpr int64_t kSizes[] = {4096, 6 * 4096, int64_t{1} << 24};

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

void run(benchmark::State& state, const Format& f, DequantizeIsa isa, int64_t n) {
  const std::vector<uint8_t> in = reslens::bench::random_blocks(f, n);
  std::vector<float> out(static_cast<size_t>(n));  // [n]
  reslens::detail::set_dequantize_isa_limit(isa);
  for (auto _ : state) {
    f.decode(out.data(), in, n);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  reslens::detail::set_dequantize_isa_limit(DequantizeIsa::avx512);
  state.SetItemsProcessed(state.iterations() * n);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(in.size()));
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const int best = static_cast<int>(reslens::detail::dequantize_best_isa());
  for (const Format& f : kFormats) {
    for (int64_t n : kSizes) {
      for (int i = 0; i <= best; ++i) {
        const auto isa = static_cast<DequantizeIsa>(i);
        const std::string name = std::string("BM_Dequantize/") + f.name + "/" + isa_name(isa) + "/" + std::to_string(n);
        benchmark::RegisterBenchmark(name.c_str(), [&f, isa, n](benchmark::State& s) { run(s, f, isa, n); });
      }
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
