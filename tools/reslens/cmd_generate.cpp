// reslens generate MODEL TEXT -n N: greedy continuation (or seeded sampling with --temp), stopping at the
// end of the model's turn; the loop and the sampler are the library's generate() (reslens/generate.h).
#include <iostream>

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
    std::string text;
    if (!*json) std::cout << (prompt->ids.empty() ? prompt->text : tok.decode(tokens)) << std::flush;
    GenerateOptions go;
    go.max_tokens = *n;
    go.temperature = *temp;
    go.seed = *seed;
    go.n_threads = args->threads;
    go.ggml_gelu = *ggml_gelu;
    // Each token is printed as soon as it is chosen (generate() calls back before the next step).
    const Generation done = generate(*model, tokens, go, [&](int32_t next) {
      const std::string piece = tok.token_bytes(next);
      text += piece;
      if (!*json) std::cout << piece << std::flush;
    });
    const std::vector<int32_t>& out = done.tokens;
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
