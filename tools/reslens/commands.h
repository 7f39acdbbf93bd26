// Every CLI command registers itself here (one file per command).
#pragma once

#include <CLI/CLI.hpp>

namespace reslens::cli {

void register_inspect(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_predict(CLI::App& app);
void register_generate(CLI::App& app);
void register_trace(CLI::App& app);
void register_bench(CLI::App& app);
void register_explain(CLI::App& app);
void register_lens(CLI::App& app);
void register_ablate(CLI::App& app);
void register_experiment(CLI::App& app);
void register_serve(CLI::App& app);
void register_precompute(CLI::App& app);
void register_diff(CLI::App& app);
void register_graph(CLI::App& app);

inline void register_commands(CLI::App& app) {
  register_inspect(app);
  register_tokenize(app);
  register_predict(app);
  register_generate(app);
  register_trace(app);
  register_explain(app);
  register_lens(app);
  register_ablate(app);
  register_experiment(app);
  register_precompute(app);
  register_diff(app);
  register_graph(app);
  register_bench(app);
  register_serve(app);
}

}  // namespace reslens::cli
