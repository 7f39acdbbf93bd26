// reslens generate MODEL TEXT -n N: greedy continuation (or seeded sampling with --temp).
#include <cmath>
#include <iostream>
#include <random>

#include "commands.h"
#include "common.h"

namespace reslens::cli {

void register_generate(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "Continue a prompt (greedy by default)");
  auto args = std::make_shared<ModelArgs>();
  auto prompt = std::make_shared<PromptArgs>();
  auto n = std::make_shared<int64_t>(32);
  auto temp = std::make_shared<double>(0.0);
  auto seed = std::make_shared<uint64_t>(0);
  auto json = std::make_shared<bool>(false);
  auto ggml_gelu = std::make_shared<bool>(false);
  args->add(*cmd);
  prompt->add(*cmd);
  cmd->add_option("-n,--n-predict", *n, "Tokens to generate")->check(CLI::NonNegativeNumber);
  cmd->add_option("--temp", *temp, "Sampling temperature (0 = greedy)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", *seed, "Random seed for sampling");
  cmd->add_flag("--json", *json, "Print JSON {prompt_ids, ids, text}");
  cmd->add_flag("--ggml-gelu", *ggml_gelu, "Emulate llama.cpp's fp16 GELU table (GPT-2 comparisons)");
  cmd->callback([=] {
    const auto model = args->load();
    const Tokenizer& tok = model->tokenizer();
    const std::vector<int32_t> tokens = prompt->tokens(*model);
    const int64_t V = model->config().d_vocab;
    Session session(*model, args->threads, *ggml_gelu);
    std::vector<float> logits = session.append(tokens);
    std::mt19937_64 rng(*seed);
    std::vector<int32_t> out;
    std::string text;
    if (!*json) std::cout << (prompt->ids.empty() ? prompt->text : tok.decode(tokens)) << std::flush;
    for (int64_t i = 0; i < *n; ++i) {
      int32_t next = 0;
      if (*temp == 0.0) {
        next = top_k(logits.data(), V, 1)[0];  // argmax, lowest id on ties (as llama.cpp)
      } else {
        std::vector<float> scaled(logits.size());
        for (size_t j = 0; j < logits.size(); ++j) scaled[j] = static_cast<float>(static_cast<double>(logits[j]) / *temp);
        const auto p = softmax(scaled.data(), V);
        std::discrete_distribution<int32_t> dist(p.begin(), p.end());
        next = dist(rng);
      }
      if (next == tok.eos_id()) break;
      out.push_back(next);
      const std::string piece = tok.token_bytes(next);
      text += piece;
      if (!*json) std::cout << piece << std::flush;
      if (session.n_past() >= model->config().n_ctx) break;
      logits = session.append(std::span<const int32_t>(&next, 1));
    }
    if (*json) {
      nlohmann::json j;
      j["prompt_ids"] = tokens;
      j["ids"] = out;
      j["text"] = json_safe(text);
      print_json(j);
    } else {
      std::cout << "\n";
    }
  });
}

}  // namespace reslens::cli
