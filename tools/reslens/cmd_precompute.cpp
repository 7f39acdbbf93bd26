// reslens precompute MODEL: builds the model's projection cache (every neuron direction projected
// onto the vocabulary once, int8 with certified error bounds), which makes explain's bounded method
// score the vectors its cheap bounds cannot certify without projecting them (docs/explain.md).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "common.h"

namespace reslens::cli {

namespace {

std::string gigabytes(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GB", static_cast<double>(bytes) / 1e9);
  return buf;
}

}  // namespace

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
      const bool tty = ::isatty(2) == 1;
      const auto t0 = std::chrono::steady_clock::now();
      int last_pct = -1;
      info = precompute_projections(*model, args->threads, [&](int64_t done, int64_t total) {
        if (*quiet) return;
        const int pct = static_cast<int>(100 * done / total);
        if (pct == last_pct || (!tty && pct / 10 == last_pct / 10 && done != total)) return;
        last_pct = pct;
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double eta = done > 0 ? s * static_cast<double>(total - done) / static_cast<double>(done) : 0;
        char buf[160];
        std::snprintf(buf, sizeof buf, "%sprojecting directions: %lld/%lld (%d%%), ETA %.0f s%s",
                      tty ? "\r" : "", static_cast<long long>(done), static_cast<long long>(total), pct, eta,
                      tty && done != total ? "  " : "\n");
        std::cerr << buf << std::flush;
      });
    }
    if (*json) {
      print_json({{"path", info.path.string()}, {"present", info.present}, {"bytes", info.bytes}});
      return;
    }
    if (info.path.empty()) {
      std::cout << "no cache directory (set RESLENS_CACHE_DIR)\n";
    } else if (info.present) {
      std::cout << "projection cache: " << info.path.string() << " (" << gigabytes(info.bytes) << ")\n";
    } else {
      std::cout << "no projection cache yet; `reslens precompute` would write " << info.path.string() << " ("
                << gigabytes(info.bytes) << ")\n";
    }
  });
}

}  // namespace reslens::cli
