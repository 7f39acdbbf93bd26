// reslens tokenize MODEL TEXT: token ids and pieces.
#include <iostream>

#include "commands.h"
#include "common.h"

namespace reslens::cli {

void register_tokenize(CLI::App& app) {
  auto* cmd = app.add_subcommand("tokenize", "Show the token ids and pieces of a text");
  auto args = std::make_shared<ModelArgs>();
  auto prompt = std::make_shared<PromptArgs>();
  auto json = std::make_shared<bool>(false);
  args->add(*cmd);
  prompt->add(*cmd, /*text_required=*/true);
  cmd->add_flag("--json", *json, "Print JSON {\"ids\": [...], \"pieces\": [...]}");
  cmd->callback([args, prompt, json] {
    const auto model = args->load();
    const Tokenizer& tok = model->tokenizer();
    require_valid_utf8_cli(prompt->text);
    const std::vector<int32_t> ids = prompt->encode(tok);
    if (*json) {
      nlohmann::json j;
      j["ids"] = ids;
      j["pieces"] = nlohmann::json::array();
      for (int32_t id : ids) j["pieces"].push_back(json_safe(tok.piece(id)));
      print_json(j);
      return;
    }
    for (size_t i = 0; i < ids.size(); ++i) {
      std::cout << i << "\t" << ids[i] << "\t'" << printable(tok.token_text(ids[i])) << "'\n";
    }
  });
}

}  // namespace reslens::cli
