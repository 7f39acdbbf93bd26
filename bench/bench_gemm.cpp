// bench_gemm: ops::matmul_nt against OpenBLAS cblas_sgemm(RowMajor, NoTrans, Trans) on the shapes of
// a GPT-2-124M and a TinyLlama-1.1B forward pass, at M = 1, 8, 32, 128 tokens, plus a memory read
// bandwidth probe to judge the small-M cases (which are bound by streaming the weights once).
//
// Weights are read from memory, not cache, as in a real forward pass whose weights far exceed L3:
// each benchmark rotates through enough copies of B to cover kColdBytes. Both libraries get the same
// operands and the same thread count (RESLENS_BENCH_THREADS, default 2).
//
// OpenBLAS's worker threads spin for a while after each call, and so do OpenMP's; a benchmark that
// starts right after the other library's would share the cores with those spinning threads (this
// halved the measured speed of whichever ran second). So each benchmark first waits for the other
// library's threads to go to sleep.
//
// Counters: GFLOP/s = 2 M N K per call; B_GB/s = bytes of B per call (the bound at small M).
//
// tile_kernel/...: the ceiling of the tile kernel itself, on one thread, against the float32 FMA peak
// measured in the same process (peak_GFLOP/s): the main tile's K-block kernel (PartTileFn, as the
// 7B panels run it, K = 1024 per call, lanes carried in memory) with its operands in L1 (l1), and with
// A's rows streaming from L2 past one tile of B in L1, 128 rows of A per pass (a_from_l2, the panels'
// data flow at 128 tokens). What issue 15's "85% of the FMA peak" at 128 tokens would need of it.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "core/parallel.h"
#include "gemm_shapes.h"
#include "ops/fma_peak.h"
#include "ops/gemm.h"
#include "ops/gemm_kernels.h"

namespace {

using reslens::ops::detail::GemmIsa;

using reslens::bench::bench_threads;
using reslens::bench::kColdBytes;
using Shape = reslens::bench::GemmShape;

constexpr Shape kShapes[] = {
    {"gpt2_qkv", 2304, 768},        {"gpt2_attn_out", 768, 768},
    {"gpt2_mlp_up", 3072, 768},     {"gpt2_mlp_down", 768, 3072},
    {"gpt2_lm_head", 50257, 768},   {"llama_q_o", 2048, 2048},
    {"llama_k_v", 256, 2048},       {"llama_gate_up", 5632, 2048},
    {"llama_down", 2048, 5632},     {"llama_lm_head", 32000, 2048},
};
constexpr int64_t kTokens[] = {1, 8, 32, 128};

// Waits long enough for the other library's spinning threads to sleep, when it ran last.
enum class Lib { none, openblas, reslens };
void settle(Lib lib) {
  static Lib last = Lib::none;
  if (last != lib) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  last = lib;
}

void fill(std::vector<float>& v, uint32_t seed) {
  uint32_t s = seed * 2654435761u + 1u;
  for (float& x : v) {
    s = s * 1664525u + 1013904223u;
    x = static_cast<float>(s >> 8) * (1.0f / 16777216.0f) - 0.5f;  // uniform in [-0.5, 0.5)
  }
}

struct Operands {
  Operands(int64_t M, int64_t N, int64_t K)
      : a(static_cast<size_t>(M * K)), c(static_cast<size_t>(M * N)) {
    const int64_t b_bytes = N * K * static_cast<int64_t>(sizeof(float));
    const int64_t copies = std::clamp<int64_t>(kColdBytes / b_bytes, 1, 64);
    fill(a, 1);
    b.resize(static_cast<size_t>(copies));
    for (size_t i = 0; i < b.size(); ++i) {
      b[i].resize(static_cast<size_t>(N * K));
      fill(b[i], static_cast<uint32_t>(i + 2));
    }
  }
  const float* next_b() {
    next = (next + 1) % b.size();
    return b[next].data();
  }
  std::vector<float> a;               // [M, K]
  std::vector<std::vector<float>> b;  // copies of [N, K]
  std::vector<float> c;               // [M, N]
  size_t next = 0;
};

void set_counters(benchmark::State& state, int64_t M, int64_t N, int64_t K) {
  const double flops = 2.0 * static_cast<double>(M * N * K);
  const double b_bytes = static_cast<double>(N * K) * sizeof(float);
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["B_GB/s"] =
      benchmark::Counter(b_bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void bm_reslens(benchmark::State& state, int64_t M, int64_t N, int64_t K, GemmIsa isa) {
  reslens::ops::detail::set_gemm_isa_limit(isa);
  if (reslens::ops::detail::gemm_active_isa() != isa) {
    state.SkipWithError("instruction set not available on this CPU");
    return;
  }
  Operands op(M, N, K);
  settle(Lib::reslens);
  const int threads = bench_threads();
  for (auto _ : state) {
    reslens::ops::matmul_nt(M, N, K, op.a.data(), K, op.next_b(), K, op.c.data(), N, threads);
    benchmark::DoNotOptimize(op.c.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, M, N, K);
  reslens::ops::detail::set_gemm_isa_limit(GemmIsa::avx512);
}

void bm_openblas(benchmark::State& state, int64_t M, int64_t N, int64_t K) {
  Operands op(M, N, K);
  settle(Lib::openblas);
  const auto m = static_cast<int>(M);
  const auto n = static_cast<int>(N);
  const auto k = static_cast<int>(K);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, op.a.data(), k,
                op.next_b(), k, 0.0f, op.c.data(), n);
    benchmark::DoNotOptimize(op.c.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, M, N, K);
}

// Sums words [0, n) of p. Wide loads matter here (SSE2-only code reads ~20% slower on the machine
// of docs/benchmarks.md), so the loop is compiled for each vector width and picked at run time.
__attribute__((target_clones("avx512f", "avx2", "default"))) uint64_t sum_words(const uint64_t* p,
                                                                                size_t n) {
  uint64_t s = 0;
  for (size_t i = 0; i < n; ++i) s += p[i];
  return s;
}

// Memory read bandwidth: every thread sums its share of a buffer far larger than the caches, reading
// `streams` sequential streams at once (8 KiB from each in turn), as a GEMV reads several rows of B
// at once. Summing integers lets the compiler vectorise without reassociating floats.
void bm_memory_read(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const auto streams = static_cast<size_t>(state.range(1));
  constexpr size_t kChunk = 1024;                  // words read from one stream before the next
  const size_t words = size_t{512} << 20 >> 3;     // 512 MiB of uint64
  std::vector<uint64_t> buf(words);                // [words]
  for (size_t i = 0; i < words; ++i) buf[i] = i;
  std::vector<uint64_t> partial(static_cast<size_t>(threads));  // [threads]
  settle(Lib::reslens);
  for (auto _ : state) {
    reslens::parallel_for(threads, threads, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const size_t begin = words * static_cast<size_t>(t) / static_cast<size_t>(threads);
        const size_t end = words * static_cast<size_t>(t + 1) / static_cast<size_t>(threads);
        const size_t per_stream = (end - begin) / streams / kChunk * kChunk;
        uint64_t s = 0;
        for (size_t off = 0; off < per_stream; off += kChunk)
          for (size_t j = 0; j < streams; ++j) {
            s += sum_words(buf.data() + begin + j * per_stream + off, kChunk);
          }
        partial[static_cast<size_t>(t)] = s;
      }
    });
    benchmark::DoNotOptimize(partial.data());
    benchmark::ClobberMemory();
  }
  const size_t per_thread = words / static_cast<size_t>(threads) / streams / kChunk * kChunk;
  const double bytes = static_cast<double>(per_thread * streams * static_cast<size_t>(threads) * 8);
  state.counters["GB/s"] =
      benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// The tile kernel alone (see the top of the file). a_rows: rows of A one pass reads (the tile's own
// rows for l1, 128 for a_from_l2), each K = 1024 floats at a stride padded by a line, as the panels'
// scratch is.
void bm_tile_kernel(benchmark::State& state, int64_t a_rows) {
  namespace d = reslens::ops::detail;
  const d::TileSet* ts = d::gemm_best_isa() == GemmIsa::avx512 ? d::avx512_tiles()
                         : d::gemm_best_isa() == GemmIsa::avx2 ? d::avx2_tiles()
                                                                 : nullptr;
  if (ts == nullptr || ts->part[ts->rows][ts->cols[ts->rows]] == nullptr) {
    state.SkipWithError("no SIMD K-block tile kernel on this CPU");
    return;
  }
  const int64_t rm = ts->rows, rn = ts->cols[rm], K = 1024, ld = K + 16;
  const d::PartTileFn fn = ts->part[rm][rn];
  a_rows = std::max(a_rows / rm, int64_t{1}) * rm;
  // On cache lines, as the GEMM's scratch and aligned copies are (a std::vector's floats start 16 bytes
  // into a line, and loads that straddle lines cost two).
  const int64_t tiles = a_rows / rm;
  std::vector<float> a_mem(static_cast<size_t>(a_rows * ld + 16)), b_mem(static_cast<size_t>(rn * ld + 16));
  std::vector<float> acc_mem(static_cast<size_t>(tiles * rm * rn * d::kGemmLanes + 16), 0.0f);
  const auto on_line = [](std::vector<float>& v) {
    const auto skip = (64 - reinterpret_cast<std::uintptr_t>(v.data()) % 64) % 64 / sizeof(float);
    return v.data() + skip;
  };
  fill(a_mem, 1);
  fill(b_mem, 2);
  float* a = on_line(a_mem);      // [a_rows, ld]
  float* b = on_line(b_mem);      // [rn, ld]
  float* acc = on_line(acc_mem);  // [tiles][rm * rn][16]
  static const double peak = reslens::ops::measure_fma_peak(1).gflops;  // one thread, once per process
  for (auto _ : state) {
    for (int64_t t = 0; t < tiles; ++t)
      fn(K, a + t * rm * ld, ld, b, ld, acc + t * rm * rn * d::kGemmLanes, false, false, nullptr, 0, false);
    benchmark::DoNotOptimize(acc);
    benchmark::ClobberMemory();
  }
  const double flops = 2.0 * static_cast<double>(a_rows * rn * K);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_GFLOP/s"] = peak;
  state.SetLabel(std::to_string(rm) + " x " + std::to_string(rn) + " tile");
}

void register_all() {
  benchmark::RegisterBenchmark("tile_kernel/l1", bm_tile_kernel, int64_t{1})->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("tile_kernel/a_from_l2", bm_tile_kernel, int64_t{128})->Unit(benchmark::kMicrosecond);
  const int threads = bench_threads();
  for (const int64_t t : {int64_t{1}, int64_t{threads}})
    for (const int64_t streams : {1, 4})
      benchmark::RegisterBenchmark("memory_read", bm_memory_read)
          ->Args({t, streams})
          ->ArgNames({"threads", "streams"})
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
  for (const Shape& s : kShapes) {
    for (const int64_t M : kTokens) {
      const std::string suffix =
          std::string("/") + s.name + "/M:" + std::to_string(M) + "/N:" + std::to_string(s.N) +
          "/K:" + std::to_string(s.K);
      benchmark::RegisterBenchmark(("openblas" + suffix).c_str(), bm_openblas, M, s.N, s.K)
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark(("reslens" + suffix).c_str(), bm_reslens, M, s.N, s.K,
                                   reslens::ops::detail::gemm_best_isa())
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark(("reslens_avx2" + suffix).c_str(), bm_reslens, M, s.N, s.K,
                                   GemmIsa::avx2)
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

const char* isa_name(GemmIsa isa) {
  switch (isa) {
    case GemmIsa::avx512:
      return "avx512";
    case GemmIsa::avx2:
      return "avx2";
    case GemmIsa::scalar:
      break;
  }
  return "scalar";
}

}  // namespace

int main(int argc, char** argv) {
#ifdef OPENBLAS_VERSION
  openblas_set_num_threads(bench_threads());
  benchmark::AddCustomContext("openblas", std::string(OPENBLAS_VERSION) + " core " +
                                              openblas_get_corename());
#endif
  benchmark::AddCustomContext("threads", std::to_string(bench_threads()));
  // Tuning aid: plan the cache blocking for this L2 size instead of the detected one.
  if (const char* l2 = std::getenv("RESLENS_BENCH_L2_BYTES"); l2 != nullptr)
    reslens::ops::detail::set_gemm_l2_bytes(std::atoll(l2));
  benchmark::AddCustomContext("reslens_isa", isa_name(reslens::ops::detail::gemm_best_isa()));
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
