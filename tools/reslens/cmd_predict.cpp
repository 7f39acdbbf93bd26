// reslens predict MODEL (TEXT | --ids ...): the top next tokens with probabilities.
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "common.h"

namespace reslens::cli {

void register_predict(CLI::App& app) {
  auto* cmd = app.add_subcommand("predict", "Show the most likely next tokens");
  auto args = std::make_shared<ModelArgs>();
  auto prompt = std::make_shared<PromptArgs>();
  auto k = std::make_shared<int64_t>(10);
  auto json = std::make_shared<bool>(false);
  auto logits_flag = std::make_shared<bool>(false);
  args->add(*cmd);
  prompt->add(*cmd);
  cmd->add_option("-k,--top-k", *k, "How many tokens to list")->check(CLI::PositiveNumber);
  cmd->add_flag("--json", *json, "Print JSON");
  cmd->add_flag("--logits", *logits_flag, "With --json: include every vocabulary logit at the last position");
  cmd->callback([=] {
    const auto model = args->load();
    const std::vector<int32_t> tokens = prompt->tokens(*model);
    RunOptions o;
    o.n_threads = args->threads;
    const RunResult r = run(*model, tokens, o);
    const int64_t V = model->config().d_vocab;
    const float* logits = r.logits.row(0);
    const auto probs = softmax(logits, V);
    const auto top = top_k(logits, V, *k);
    const Tokenizer& tok = model->tokenizer();
    if (*json) {
      nlohmann::json j;
      j["tokens"] = nlohmann::json::array();
      for (int32_t id : tokens) j["tokens"].push_back({{"id", id}, {"text", json_safe(tok.token_text(id))}});
      j["top"] = nlohmann::json::array();
      for (int32_t id : top) {
        j["top"].push_back({{"id", id}, {"text", json_safe(tok.token_text(id))}, {"logit", logits[id]},
                            {"prob", probs[static_cast<size_t>(id)]}});
      }
      if (*logits_flag) j["logits"] = std::vector<float>(logits, logits + V);
      print_json(j);
      return;
    }
    std::cout << "prompt (" << tokens.size() << " tokens):";
    for (int32_t id : tokens) std::cout << " '" << printable(tok.token_text(id)) << "'";
    std::cout << "\n\n rank     id  prob      logit  token\n";
    for (size_t i = 0; i < top.size(); ++i) {
      const int32_t id = top[i];
      std::printf("%5zu %6d  %6.2f%% %9.4f  '%s'\n", i + 1, id, 100.0 * probs[static_cast<size_t>(id)],
                  static_cast<double>(logits[id]), printable(tok.token_text(id)).c_str());
    }
  });
}

}  // namespace reslens::cli
