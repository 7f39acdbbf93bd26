// reslens trace MODEL TEXT --out DIR: every captured tensor as DIR/<hook name>.npy, the logits at
// every position as DIR/logits.npy, and DIR/index.json describing them.
#include <filesystem>
#include <fstream>
#include <iostream>

#include "commands.h"
#include "common.h"
#include "io/npy.h"

namespace reslens::cli {

void register_trace(CLI::App& app) {
  auto* cmd = app.add_subcommand("trace", "Record the residual stream (every hook) as .npy files");
  auto args = std::make_shared<ModelArgs>();
  auto prompt = std::make_shared<PromptArgs>();
  auto out = std::make_shared<std::string>();
  auto hooks = std::make_shared<std::vector<std::string>>();
  auto ggml_gelu = std::make_shared<bool>(false);
  args->add(*cmd);
  prompt->add(*cmd);
  cmd->add_option("-o,--out", *out, "Output folder (created if missing)")->required();
  cmd->add_option("--hooks", *hooks, "Hook names or patterns to record (default: all), e.g. 'blocks.*.hook_resid_pre'")
      ->delimiter(',');
  cmd->add_flag("--ggml-gelu", *ggml_gelu, "Emulate llama.cpp's fp16 GELU table (GPT-2 comparisons)");
  cmd->callback([=] {
    const auto model = args->load();
    const std::vector<int32_t> tokens = prompt->tokens(*model);
    RunOptions o;
    o.capture = hooks->empty() ? HookFilter::all() : HookFilter::from_patterns(*hooks);
    o.all_logits = true;
    o.n_threads = args->threads;
    o.ggml_gelu = *ggml_gelu;
    const RunResult r = run(*model, tokens, o);

    const std::filesystem::path dir(*out);
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec || !std::filesystem::is_directory(dir)) {
      throw IoError(dir.string() + ": cannot create the output folder" + (ec ? ": " + ec.message() : ""));
    }
    nlohmann::json index;
    index["model"] = model->path().string();
    index["tokens"] = tokens;
    index["token_text"] = nlohmann::json::array();
    for (int32_t id : tokens) index["token_text"].push_back(json_safe(model->tokenizer().token_text(id)));
    index["hooks"] = nlohmann::json::array();
    for (const HookName& name : r.cache.names()) {
      const Tensor& t = r.cache.at(name);
      const std::string file = name.to_string() + ".npy";
      write_npy(dir / file, t.data(), t.shape());
      index["hooks"].push_back({{"name", name.to_string()}, {"file", file}, {"shape", t.shape()}});
    }
    write_npy(dir / "logits.npy", r.logits.data(), r.logits.shape());
    // Logits last, listed like a hook so readers treat every array the same way.
    index["hooks"].push_back({{"name", "logits"}, {"file", "logits.npy"}, {"shape", r.logits.shape()}});
    write_text_file(dir / "index.json", index.dump(2) + "\n");
    std::cerr << "wrote " << r.cache.size() << " hooks and logits for " << tokens.size() << " tokens to "
              << dir.string() << "\n";
  });
}

}  // namespace reslens::cli
