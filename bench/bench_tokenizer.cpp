// bench_tokenizer: encoding throughput of each tokenizer family on ~100 KB of varied English text
// (the GPT-2 prompt test vectors, numbered so words keep changing): byte-level BPE (GPT-2, from a
// GGUF), SentencePiece-style BPE (stories260K's GGUF vocabulary) and a Hugging Face tokenizer.json
// (TinyStories-656K). Models come from ../shared/models ($RESLENS_SHARED_DIR to override).
//
// The tests check that large texts round-trip; how fast they encode is measured here, not asserted.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "reslens/model.h"

namespace {

std::filesystem::path shared_dir() {
  const char* env = std::getenv("RESLENS_SHARED_DIR");
  return env != nullptr ? std::filesystem::path(env) : std::filesystem::path("../shared");
}

std::string sample_text() {
  std::ifstream in(shared_dir() / "tokenizers/testvectors/ggml-prompts-gpt-2.txt");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  if (lines.empty()) lines.push_back("Once upon a time, there was a little girl named Lily.");
  std::string text;
  for (size_t i = 0; text.size() < 100 * 1024; ++i) {
    text += lines[i % lines.size()] + " (" + std::to_string(i * 7919) + ")\n";
  }
  return text;
}

void encode(benchmark::State& state, const char* model_path) {
  const auto path = shared_dir() / model_path;
  if (!std::filesystem::exists(path)) {
    state.SkipWithError(("missing " + path.string() + " (set RESLENS_SHARED_DIR)").c_str());
    return;
  }
  const auto model = reslens::Model::load(path);
  const std::string text = sample_text();
  size_t n_tokens = 0;
  for (auto _ : state) {
    const auto ids = model->tokenizer().encode(text, false);
    n_tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(text.size()));
  state.counters["tokens"] = static_cast<double>(n_tokens);
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(n_tokens), benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK_CAPTURE(encode, gpt2_bpe, "models/random-gpt2/random-gpt2-test.gguf")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(encode, llama_spm, "models/stories260K/stories260K.gguf")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(encode, hf_tokenizer_json, "models/TinyStories-656K")->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
