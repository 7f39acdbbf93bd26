// reslens lens MODEL TEXT: the logit lens with the paper's frozen final norm (spec 2.3): the target's
// rank and probability, and the top tokens, at every residual point of a position.
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "common.h"

namespace reslens::cli {

void register_lens(CLI::App& app) {
  auto* cmd = app.add_subcommand("lens", "Logit lens: the target's rank and probability at every residual point");
  auto args = std::make_shared<ModelArgs>();
  auto prompt = std::make_shared<PromptArgs>();
  auto target = std::make_shared<std::string>();
  auto position = std::make_shared<int>(-1);
  auto k = std::make_shared<int>(5);
  auto json = std::make_shared<bool>(false);
  args->add(*cmd);
  prompt->add(*cmd);
  cmd->add_option("--target", *target, "Target token: text or id (default: the top prediction)");
  cmd->add_option("-p,--position", *position, "Position (0-based; -1 = last)");
  cmd->add_option("-k,--top-k", *k, "Tokens listed per point")->check(CLI::PositiveNumber);
  cmd->add_flag("--json", *json, "Print JSON");
  cmd->callback([=] {
    const auto model = args->load();
    ExplainRequest req;
    req.tokens = prompt->tokens(*model);
    req.position = *position;
    req.target = token_name(*target);
    req.options.lens_top_k = *k;
    req.options.n_threads = args->threads;
    req.all_logits = true;
    const ExplainedPrompt done = explain(*model, req);
    print_notes(done.notes);
    const Explanation& ex = done.explanation;
    const Tokenizer& tok = model->tokenizer();
    if (*json) {
      nlohmann::json j;
      j["position"] = ex.position;
      j["target"] = {{"id", ex.target}, {"text", json_safe(tok.token_text(ex.target))}};
      j["points"] = nlohmann::json::array();
      for (const LensPoint& p : ex.lens) {
        nlohmann::json top = nlohmann::json::array();
        for (size_t i = 0; i < p.top_ids.size(); ++i) {
          top.push_back({{"id", p.top_ids[i]}, {"text", json_safe(tok.token_text(p.top_ids[i]))}, {"prob", p.top_probs[i]}});
        }
        j["points"].push_back({{"label", p.label}, {"rank", p.rank}, {"prob", p.prob}, {"log_prob", p.log_prob}, {"top", top}});
      }
      print_json(j);
      return;
    }
    std::printf("target '%s' (id %d) at position %d\n\n  point    rank        p   log p   top tokens\n",
                printable(tok.token_text(ex.target)).c_str(), ex.target, ex.position);
    for (const LensPoint& p : ex.lens) {
      std::string tops;
      for (size_t i = 0; i < p.top_ids.size(); ++i) tops += " '" + printable(tok.token_text(p.top_ids[i])) + "'";
      std::printf("  %-6s %6lld  %6.2f%%  %7.3f %s\n", p.label.c_str(), static_cast<long long>(p.rank), 100.0 * p.prob,
                  p.log_prob, tops.c_str());
    }
  });
}

}  // namespace reslens::cli
