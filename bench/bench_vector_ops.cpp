// bench_vector_ops: the analysis kernels that dominate a cached explain (ops/vector_ops.h), on the
// shapes of GPT-2 124M:
//   * combining one attention head's cached int16 rows [d_head = 64, d_vocab = 50257] into the
//     head's and its positions' projections (the Pn + 1 = 9 combinations of an 8-token prompt, and
//     others), read from memory as in an explain, where every head's rows are new;
//   * the tail means of the 2L = 24 states, weighted sums of W_U's rows [50257, 768] (one pass);
//   * Q3's and the head projections' double products over a weight matrix W_out [768, 3072].
//
// Counters: rows_GB/s = bytes of the head's rows per call; combos = combinations per call;
// GFLOP/s = 2 M N K per call.
#include <benchmark/benchmark.h>

#include <cmath>
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

void BM_WeightedRowSums(benchmark::State& state) {
  constexpr int64_t M = 24, K = kVocab, N = 768;
  const int threads = static_cast<int>(state.range(0));
  std::mt19937 rng(9);
  std::normal_distribution<float> normal;
  std::vector<float> W(static_cast<size_t>(K * N));  // [V, d] like W_U: 154 MB, beyond L3
  for (auto& w : W) w = normal(rng);
  std::vector<float> A(static_cast<size_t>(M * K));  // [24, V] tail probabilities
  for (auto& a : A) a = std::abs(normal(rng)) / static_cast<float>(K);
  std::vector<double> C(static_cast<size_t>(M * N));
  for (auto _ : state) {
    reslens::ops::weighted_row_sums(M, K, N, A.data(), K, W.data(), N, C.data(), threads);
    benchmark::DoNotOptimize(C.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * K * static_cast<double>(state.iterations()) / 1e9,
                                                 benchmark::Counter::kIsRate);
}
BENCHMARK(BM_WeightedRowSums)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_DoubleProductOverFloatWeights(benchmark::State& state) {
  const auto M = static_cast<int64_t>(state.range(0));
  constexpr int64_t K = 768, N = 3072;
  std::mt19937 rng(11);
  std::normal_distribution<float> normal;
  std::vector<float> B(static_cast<size_t>(K * N));  // [d, d_mlp] like W_out
  for (auto& b : B) b = normal(rng);
  std::vector<double> A(static_cast<size_t>(M * K)), C(static_cast<size_t>(M * N));
  for (auto& a : A) a = static_cast<double>(normal(rng));
  for (auto _ : state) {
    reslens::ops::matmul_nn_accumulate_small(M, N, K, A.data(), K, B.data(), N, C.data(), N);
    benchmark::DoNotOptimize(C.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(M * N * K * state.iterations()) / 1e9,
                                                 benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DoubleProductOverFloatWeights)->Arg(2)->Arg(10)->Unit(benchmark::kMillisecond);

// The bounded method's head projections (analysis/bounded_scores.cpp, head_projections): the head
// tokens' prepared rows [|H|, d] (row stride d) times a [128, 256] block of W_out's rows copied
// contiguous, into a [|H|, 256] slice of the accumulators (row stride d_mlp), over every block of a
// Llama 2 7B layer's shape (d 4096, d_mlp 11008; arg: |H|).
void BM_FloatProductHeadTokens(benchmark::State& state) {
  const auto M = static_cast<int64_t>(state.range(0));
  const int64_t pad_a = state.range(1), pad_b = state.range(2);
  constexpr int64_t d = 4096, N = 11008, kRows = 128, kCols = 256;
  const int64_t lda = d + pad_a, ldb = kCols + pad_b;
  std::mt19937 rng(12);
  std::normal_distribution<float> normal;
  std::vector<float> A(static_cast<size_t>(M * lda)), block(static_cast<size_t>(kRows * ldb));
  for (auto& a : A) a = normal(rng);
  for (auto& b : block) b = normal(rng);
  std::vector<float> C(static_cast<size_t>(M * N));
  for (auto _ : state) {
    for (int64_t c0 = 0; c0 + kCols <= N; c0 += kCols) {
      for (int64_t i0 = 0; i0 < d; i0 += kRows) {
        reslens::ops::matmul_nn_accumulate_small(M, kCols, kRows, A.data() + i0, lda, block.data(), ldb, C.data() + c0, N);
      }
    }
    benchmark::DoNotOptimize(C.data());
  }
  state.counters["GMAC/s"] = benchmark::Counter(static_cast<double>(M * (N / kCols * kCols) * d) * static_cast<double>(state.iterations()) / 1e9,
                                                benchmark::Counter::kIsRate);
}
BENCHMARK(BM_FloatProductHeadTokens)->Args({66, 0, 0})->Args({66, 0, 16})->Args({66, 16, 16})->Args({66, 16, 0})->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
