// The parallel runner: sentences are independent, so workers take them one at a time from a shared
// counter. Parallelism is across sentences only; each worker's model calls run on one thread, which
// keeps every number independent of the worker count (tested).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <thread>

#include "experiment/evaluate.h"
#include "reslens/error.h"
#include "reslens/run.h"

namespace reslens {

std::vector<SentenceResult> run_experiment(const Model& model, std::span<const ExperimentSentence> sentences,
                                           const ExperimentOptions& options, const SentenceResultFn& on_result,
                                           const ExperimentProgressFn& on_progress) {
  const ExperimentCounts counts = experiment_counts(model.config(), options);  // validates the options
  const TokenResolver resolver(model.tokenizer());
  const auto n = static_cast<int64_t>(sentences.size());
  std::vector<SentenceResult> results(sentences.size());
  const int64_t workers = std::min<int64_t>(options.n_threads > 0 ? options.n_threads : default_threads(), n);
  const auto start = std::chrono::steady_clock::now();

  std::atomic<int64_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex mutex;  // guards the callbacks, the counters and `error`
  std::exception_ptr error;
  int64_t done = 0, kept = 0;
  auto work = [&] {
    while (!stop.load()) {
      const int64_t i = next.fetch_add(1);
      if (i >= n) return;
      try {
        SentenceResult r = experiment_impl::evaluate(model, resolver, counts, sentences[static_cast<size_t>(i)], options);
        const std::lock_guard<std::mutex> lock(mutex);
        if (stop.load()) return;  // another worker failed: report nothing more
        ++done;
        kept += r.status == SentenceStatus::kKept ? 1 : 0;
        if (on_result) on_result(r);
        if (on_progress) {
          const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - start;
          on_progress({done, n, kept, dt.count()});
        }
        results[static_cast<size_t>(i)] = std::move(r);
      } catch (...) {
        const std::lock_guard<std::mutex> lock(mutex);
        if (!error) error = std::current_exception();
        stop.store(true);
        return;
      }
    }
  };
  if (workers <= 1) {
    work();
  } else {
    std::vector<std::thread> threads;
    for (int64_t w = 0; w < workers; ++w) threads.emplace_back(work);
    for (auto& t : threads) t.join();
  }
  if (error) std::rethrow_exception(error);
  std::sort(results.begin(), results.end(), [](const SentenceResult& a, const SentenceResult& b) { return a.index < b.index; });
  return results;
}

ExperimentResult experiment(const Model& model, const Dataset& dataset, const ExperimentOptions& options,
                            const ExperimentProgressFn& on_progress) {
  if (options.shard.count < 1 || options.shard.index < 1 || options.shard.index > options.shard.count) {
    throw InvalidArgument("bad shard " + options.shard.str() + ": the index must be between 1 and the count");
  }
  ExperimentResult out;
  out.info = experiment_info(model, dataset, options);
  out.skipped = dataset.skipped;
  std::vector<ExperimentSentence> mine;
  for (const auto& s : dataset.sentences) {
    if (options.shard.contains(s.index)) mine.push_back(s);
  }
  out.sentences = run_experiment(model, mine, options, {}, on_progress);
  out.summary = summarize(out.info, out.sentences);
  return out;
}

ExperimentResult experiment(const Model& model, const std::filesystem::path& dataset, const ExperimentOptions& options,
                            const ExperimentProgressFn& on_progress) {
  return experiment(model, read_dataset(dataset, options.strict), options, on_progress);
}

}  // namespace reslens
