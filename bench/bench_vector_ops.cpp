// bench_vector_ops: the analysis kernels that dominate a cached explain (ops/vector_ops.h), on the
// shapes of GPT-2 124M: combining one attention head's cached int16 rows [d_head = 64, d_vocab =
// 50257] into the head's and its positions' projections (the Pn + 1 = 9 combinations of an 8-token
// prompt, and others), read from memory as in an explain, where every head's rows are new.
//
// Counters: rows_GB/s = bytes of the head's rows per call; combos = combinations per call.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "ops/vector_ops.h"

namespace {

constexpr int64_t kDHead = 64, kVocab = 50257;
// Copies of a head's rows the benchmark cycles through: 16 x 6.4 MB, well over the 32 MiB L3.
constexpr int kCopies = 16;

void BM_CombineInt16Rows(benchmark::State& state) {
  const auto nc = static_cast<int64_t>(state.range(0));
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> code(-32767, 32767);
  std::normal_distribution<float> normal;
  std::vector<int16_t> rows(static_cast<size_t>(kCopies * kDHead * kVocab));  // kCopies x [d_head, V]
  for (auto& r : rows) r = static_cast<int16_t>(code(rng));
  std::vector<float> coef(static_cast<size_t>(nc * kDHead));  // [nc, d_head]
  for (auto& c : coef) c = normal(rng);
  std::vector<float> out(static_cast<size_t>(nc * kVocab));  // [nc, V]
  int copy = 0;
  for (auto _ : state) {
    reslens::ops::combine_int16_rows(nc, kDHead, kVocab, coef.data(), rows.data() + copy * kDHead * kVocab, kVocab,
                                     out.data());
    benchmark::DoNotOptimize(out.data());
    copy = (copy + 1) % kCopies;
  }
  const double bytes = 2.0 * kDHead * kVocab;
  state.counters["rows_GB/s"] =
      benchmark::Counter(bytes * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  state.counters["combos"] = static_cast<double>(nc);
}
BENCHMARK(BM_CombineInt16Rows)->Arg(1)->Arg(2)->Arg(9)->Arg(16)->Arg(33)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
