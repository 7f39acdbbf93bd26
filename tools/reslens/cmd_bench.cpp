// reslens bench MODEL: prompt-processing speed in the manner of llama-bench (model load excluded,
// median of several runs) with and without capturing every hook, each rate also as a share of the
// machine's float32 FMA peak measured in the same run (ops::measure_fma_peak), so the numbers can be
// read against the hardware. OpenBLAS sgemm is printed beside it with the core OpenBLAS chose: a
// library that does not know the CPU runs old kernels, which is no bound (docs/benchmarks.md).
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "commands.h"
#include "common.h"
#include "isa_limit.h"
#include "ops/fma_peak.h"

extern "C" void openblas_set_num_threads(int num_threads);
extern "C" char* openblas_get_corename(void);

namespace reslens::cli {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// GFLOP/s of OpenBLAS sgemm on square matrices (the best of a few runs after a warm-up).
double measure_sgemm(int threads, int64_t n) {
  openblas_set_num_threads(threads);
  std::vector<float> a(static_cast<size_t>(n * n), 0.5f), b(a), c(a);
  const auto N = static_cast<blasint>(n);
  double best = 0;
  for (int rep = 0; rep < 4; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, N, N, 1.0f, a.data(), N, b.data(), N, 0.0f,
                c.data(), N);
    const double s = seconds_since(t0);
    if (rep > 0) best = std::max(best, 2.0 * static_cast<double>(n * n * n) / s / 1e9);
  }
  return best;
}

// GB/s of reading a 512 MiB buffer (far larger than any cache) split over `threads` threads: the
// memory-bandwidth bound of a forward pass on a few tokens, which must read every weight once.
// XOR of 64-bit words: integer reductions vectorise without reordering concerns. Best of 5 runs.
double measure_read_bandwidth(int threads) {
  const size_t n = (size_t{512} << 20) / sizeof(uint64_t);
  std::vector<uint64_t> buf(n);
  for (size_t i = 0; i < n; ++i) buf[i] = i * 0x9E3779B97F4A7C15ull;  // touch every page first
  std::vector<uint64_t> out(static_cast<size_t>(threads));
  double best = 0;
  for (int rep = 0; rep < 6; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> workers;
    for (int w = 0; w < threads; ++w) {
      workers.emplace_back([&, w] {
        const size_t b = n * static_cast<size_t>(w) / static_cast<size_t>(threads);
        const size_t e = n * static_cast<size_t>(w + 1) / static_cast<size_t>(threads);
        uint64_t x0 = 0, x1 = 0, x2 = 0, x3 = 0;
        size_t i = b;
        for (; i + 4 <= e; i += 4) {
          x0 ^= buf[i];
          x1 ^= buf[i + 1];
          x2 ^= buf[i + 2];
          x3 ^= buf[i + 3];
        }
        for (; i < e; ++i) x0 ^= buf[i];
        out[static_cast<size_t>(w)] = x0 ^ x1 ^ x2 ^ x3;
      });
    }
    for (auto& t : workers) t.join();
    const double s = seconds_since(t0);
    if (rep > 0) best = std::max(best, static_cast<double>(n * sizeof(uint64_t)) / s / 1e9);
  }
  volatile uint64_t sink = 0;  // keep the reads
  for (const uint64_t v : out) sink = sink ^ v;
  return best;
}

}  // namespace

void register_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Measure prompt-processing speed (tokens/s) with and without capture");
  auto args = std::make_shared<ModelArgs>();
  auto sizes = std::make_shared<std::string>("8,32,128");
  auto reps = std::make_shared<int>(5);
  auto json = std::make_shared<bool>(false);
  auto with_explain = std::make_shared<bool>(false);
  auto full_max = std::make_shared<int64_t>(8);
  auto no_sketch = std::make_shared<bool>(false);
  args->add(*cmd);
  cmd->add_flag("--explain", *with_explain,
                "Also time a whole explain (all levels, all neurons, queries) with the bounded and the full method");
  cmd->add_option("--full-max-tokens", *full_max, "Time the full (straightforward) method only up to this length");
  cmd->add_flag("--no-sketch", *no_sketch,
                "With --explain: the bounded method without the sketched projection (what the bounds leave is "
                "projected exactly), to time what the sketch saves");
  cmd->add_option("-p,--tokens", *sizes, "Prompt lengths, comma-separated");
  cmd->add_option("-r,--repetitions", *reps, "Runs per measurement (the median is reported)")->check(CLI::PositiveNumber);
  cmd->add_flag("--json", *json, "Print JSON");
  cmd->callback([=] {
    const auto model = args->load();
    const ModelConfig& c = model->config();
    const int threads = args->threads > 0 ? args->threads : default_threads();
    const auto lengths = parse_int_list(*sizes, "prompt length");
    std::mt19937 rng(42);
    std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(std::min<int64_t>(c.d_vocab, 1 << 30) - 1));
    nlohmann::json results = nlohmann::json::array();
    // The FMA peak is measured before and after the runs and the larger counts: on a machine shared
    // with other work, a thread that loses its core lowers one measurement (the runs themselves are
    // medians). The table is printed once both are known.
    const double peak_before = ops::measure_fma_peak(threads).gflops;
    const ActiveKernels kernels = active_kernels();
    if (!*json) {
      std::printf("model: %s (%s, %lld params, %s)\nthreads: %d\n", model->path().string().c_str(),
                  to_string(c.architecture), static_cast<long long>(model->n_params()), c.dtype.c_str(), threads);
      std::fflush(stdout);
    }
    for (int64_t n : lengths) {
      if (n <= 0 || n > c.n_ctx) {
        throw InvalidArgument("prompt length " + std::to_string(n) + " is outside 1.." + std::to_string(c.n_ctx));
      }
      std::vector<int32_t> tokens(static_cast<size_t>(n));
      for (auto& t : tokens) t = pick(rng);
      for (const bool capture : {false, true}) {
        RunOptions o;
        o.n_threads = threads;
        if (capture) o.capture = HookFilter::all();
        run(*model, tokens, o);  // warm-up: page in the weights
        std::vector<double> times;
        for (int r = 0; r < *reps; ++r) {
          const auto t0 = std::chrono::steady_clock::now();
          const RunResult res = run(*model, tokens, o);
          times.push_back(seconds_since(t0));
        }
        const double s = median(times);
        const double tps = static_cast<double>(n) / s;
        const double gflops = 2.0 * static_cast<double>(model->n_params()) * static_cast<double>(n) / s / 1e9;
        results.push_back({{"tokens", n}, {"capture", capture}, {"tokens_per_s", tps}, {"ms_per_run", s * 1e3},
                           {"gflops", gflops}});
      }
    }
    const double peak_after = ops::measure_fma_peak(threads).gflops;
    const double peak = std::max(peak_before, peak_after);
    for (auto& r : results) r["fraction_of_fma_peak"] = r["gflops"].get<double>() / peak;
    if (!*json) {
      std::printf("float32 FMA peak (%s register loop, %d threads at once): %.1f GFLOP/s (%.1f before the runs, %.1f "
                  "after)\n\n",
                  kernels.gemm.c_str(), threads, peak, peak_before, peak_after);
      std::printf("%8s %8s %12s %12s %10s %8s\n", "tokens", "capture", "tokens/s", "ms/run", "GFLOP/s", "% peak");
      for (const auto& r : results)
        std::printf("%8lld %8s %12.1f %12.2f %10.1f %7.1f%%\n", static_cast<long long>(r["tokens"].get<int64_t>()),
                    r["capture"].get<bool>() ? "all" : "none", r["tokens_per_s"].get<double>(),
                    r["ms_per_run"].get<double>(), r["gflops"].get<double>(), 100 * r["fraction_of_fma_peak"].get<double>());
    }
    // A whole explain against the plain forward pass, bounded and (up to --full-max-tokens) full.
    nlohmann::json explains = nlohmann::json::array();
    std::vector<std::string> phase_lines;  // per length: the median ms of each phase
    if (*with_explain) {
      // With a projection cache (reslens precompute), the explain is timed with it and without it.
      const ProjectionCacheInfo cache = projection_cache_info(*model);
      if (!*json) {
        std::printf("\nexplain, bounded method; projection cache: %s\n",
                    cache.present ? cache.path.string().c_str() : "none (`reslens precompute MODEL` builds it)");
        std::printf("%8s %12s %14s %12s %14s %10s %16s %16s\n", "tokens", "forward ms", "explain ms", "x forward",
                    "no-cache ms", "full ms", "cached vectors", "full vectors");
      }
      for (int64_t n : lengths) {
        std::vector<int32_t> tokens(static_cast<size_t>(n));
        for (auto& t : tokens) t = pick(rng);
        RunOptions plain;
        plain.n_threads = threads;
        RunOptions cap;
        cap.n_threads = threads;
        cap.capture = explain_capture();
        cap.all_logits = false;  // an explanation of the last position needs its logits only
        cap.pattern_rows = {n - 1};  // and its attention rows only, as explain(ExplainRequest) keeps
        ExplainOptions eo;
        eo.n_threads = threads;
        eo.method = ScoreMethod::kBounded;
        eo.projection_sketch = !*no_sketch;
        explain(*model, run(*model, tokens, cap), tokens, eo);  // warm-up, and the per-model bounds cache
        std::vector<double> fwd, exp_times;
        // Per phase, every repetition's ms: the explain's own forward pass, then explain()'s phases.
        std::vector<std::pair<std::string, std::vector<double>>> phases;
        auto add_phase = [&phases](const std::string& name, double ms) {
          auto it = std::find_if(phases.begin(), phases.end(), [&](const auto& p) { return p.first == name; });
          if (it == phases.end()) it = phases.insert(phases.end(), {name, {}});
          it->second.push_back(ms);
        };
        Explanation last;
        for (int r = 0; r < *reps; ++r) {
          auto t0 = std::chrono::steady_clock::now();
          run(*model, tokens, plain);
          fwd.push_back(seconds_since(t0));
          t0 = std::chrono::steady_clock::now();
          const RunResult rr = run(*model, tokens, cap);  // the explain's own forward pass counts
          add_phase("forward", seconds_since(t0) * 1e3);
          last = explain(*model, rr, tokens, eo);
          exp_times.push_back(seconds_since(t0));
          for (const auto& [name, ms] : last.phase_ms) add_phase(name, ms);
        }
        nlohmann::json phase_json = nlohmann::json::object();
        std::string phase_line;
        for (auto& [name, times] : phases) {
          const double ms = median(times);
          phase_json[name] = ms;
          char cell[64];
          std::snprintf(cell, sizeof cell, "  %s %.1f", name.c_str(), ms);
          phase_line += cell;
        }
        char head[32];
        std::snprintf(head, sizeof head, "%8lld tokens:", static_cast<long long>(n));
        phase_lines.push_back(head + phase_line);
        int64_t full_vectors = 0, all_vectors = 0, cached_vectors = 0;
        for (const auto& [k, v] : last.method_counts) {
          all_vectors += v;
          if (k.find("full") != std::string::npos) full_vectors += v;
          if (k.find("cached") != std::string::npos) cached_vectors += v;
        }
        double no_cache_ms = -1;
        if (cache.present) {
          ExplainOptions off = eo;
          off.projection_cache = false;
          explain(*model, run(*model, tokens, cap), tokens, off);  // warm-up
          std::vector<double> t;
          for (int r = 0; r < *reps; ++r) {
            const auto t0 = std::chrono::steady_clock::now();
            explain(*model, run(*model, tokens, cap), tokens, off);
            t.push_back(seconds_since(t0));
          }
          no_cache_ms = median(t) * 1e3;
        }
        double full_ms = -1;
        if (n <= *full_max) {
          eo.method = ScoreMethod::kFull;
          const auto t0 = std::chrono::steady_clock::now();
          explain(*model, run(*model, tokens, cap), tokens, eo);
          full_ms = seconds_since(t0) * 1e3;
        }
        const double f = median(fwd) * 1e3, e = median(exp_times) * 1e3;
        auto opt_ms = [](double v) { return v < 0 ? nlohmann::json(nullptr) : nlohmann::json(v); };
        explains.push_back({{"tokens", n}, {"forward_ms", f}, {"explain_ms", e}, {"ratio", e / f},
                            {"projection_cache", cache.present}, {"no_cache_ms", opt_ms(no_cache_ms)},
                            {"full_ms", opt_ms(full_ms)}, {"vectors_cached", cached_vectors},
                            {"vectors_full", full_vectors}, {"vectors_total", all_vectors},
                            {"phases_ms", phase_json}});
        if (!*json) {
          auto cell = [](double v) { return v < 0 ? std::string("-") : std::to_string(static_cast<int64_t>(v)); };
          std::printf("%8lld %12.1f %14.1f %12.1f %14s %10s %16lld %9lld/%lld\n", static_cast<long long>(n), f, e, e / f,
                      cell(no_cache_ms).c_str(), cell(full_ms).c_str(), static_cast<long long>(cached_vectors),
                      static_cast<long long>(full_vectors), static_cast<long long>(all_vectors));
        }
      }
      if (!*json) {
        std::printf("\nexplain phases, ms (median of the repetitions; the explain's forward pass with capture first):\n");
        for (const std::string& line : phase_lines) std::printf("%s\n", line.c_str());
      }
    }
    const double sgemm = measure_sgemm(threads, 1536);
    const char* core = openblas_get_corename();
    const std::string sgemm_core = core != nullptr ? core : "unknown";
    const double bandwidth = measure_read_bandwidth(threads);
    // A forward pass reads each weight once as held in memory: in the file's encoding (mapped) or
    // as float32 where the loader converted or copied it (a tied W_E/W_U is one matrix, read once).
    const double weight_bytes = static_cast<double>(model->mapped_bytes() + model->owned_bytes());
    const double bound_ms = weight_bytes / (bandwidth * 1e9) * 1e3;
    if (*json) {
      nlohmann::json j = {{"model", model->path().string()}, {"n_params", model->n_params()}, {"threads", threads},
                          {"results", results}, {"fma_peak_gflops", peak}, {"fma_peak_isa", kernels.gemm},
                          {"fma_peak_before_gflops", peak_before}, {"fma_peak_after_gflops", peak_after},
                          {"sgemm_gflops", sgemm}, {"sgemm_core", sgemm_core}, {"read_bandwidth_gbps", bandwidth},
                          {"weight_read_bound_ms", bound_ms},
                          {"kernels", {{"gemm", kernels.gemm}, {"dequantize", kernels.dequantize}, {"int8", kernels.int8}}}};
      if (*with_explain) j["explain"] = explains;
      print_json(j);
    } else {
      std::printf("\nsgemm (OpenBLAS, core %s, 1536^3, %d threads): %.1f GFLOP/s, %.1f%% of the FMA peak%s\n",
                  sgemm_core.c_str(), threads, sgemm, 100 * sgemm / peak,
                  sgemm_core == "Prescott" ? " (OpenBLAS did not recognise this CPU and runs its SSE3 kernels: no bound)" : "");
      std::printf("memory read bandwidth (%d threads): %.1f GB/s; reading the %.0f MB of weights once "
                  "takes %.1f ms (the bound for a few tokens)\n",
                  threads, bandwidth, weight_bytes / 1e6, bound_ms);
      std::printf("kernels: GEMM %s, dequantize %s, int8 %s (RESLENS_ISA caps them)\n", kernels.gemm.c_str(),
                  kernels.dequantize.c_str(), kernels.int8.c_str());
    }
  });
}

}  // namespace reslens::cli
