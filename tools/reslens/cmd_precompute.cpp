// reslens precompute MODEL: builds the model's projection cache (every neuron direction projected
// onto the vocabulary once, int8 with certified error bounds), which makes explain's bounded method
// score the vectors its cheap bounds cannot certify without projecting them (docs/explain.md).
#include <iostream>
#include <memory>

#include "commands.h"
#include "common.h"
#include "progress.h"

namespace reslens::cli {

void register_precompute(CLI::App& app) {
  auto* cmd = app.add_subcommand("precompute",
                                 "Build the model's projection cache, which makes explain faster (see docs/explain.md)");
  auto args = std::make_shared<ModelArgs>();
  auto status = std::make_shared<bool>(false);
  auto json = std::make_shared<bool>(false);
  auto quiet = std::make_shared<bool>(false);
  args->add(*cmd);
  cmd->add_flag("--status", *status, "Only say whether the cache exists, where, and its size");
  cmd->add_flag("--json", *json, "Print the result as JSON");
  cmd->add_flag("-q,--quiet", *quiet, "No progress output");
  cmd->callback([=] {
    const auto model = args->load();
    ProjectionCacheInfo info = projection_cache_info(*model);
    if (!*status) {
      // The size first: a 7B model's cache is ~20 GB (the build refuses when the disk lacks it).
      if (!*quiet && !info.path.empty()) {
        std::cerr << "writing the projection cache " << info.path.string() << " (" << size_text(info.bytes) << ")\n";
      }
      std::unique_ptr<ProgressDisplay> progress;  // made at the first report, which gives the total
      info = precompute_projections(*model, args->threads, [&](int64_t done, int64_t total) {
        if (!progress) progress = std::make_unique<ProgressDisplay>("directions", "dir", 0, total, *quiet);
        progress->update(done);
      });
    }
    if (*json) {
      print_json({{"path", info.path.string()}, {"present", info.present}, {"bytes", info.bytes}});
      return;
    }
    if (info.path.empty()) {
      std::cout << "no cache directory (set RESLENS_CACHE_DIR)\n";
    } else if (info.present) {
      std::cout << "projection cache: " << info.path.string() << " (" << size_text(info.bytes) << ")\n";
    } else {
      std::cout << "no projection cache yet; `reslens precompute` would write " << info.path.string() << " ("
                << size_text(info.bytes) << ")\n";
    }
  });
}

}  // namespace reslens::cli
