// The precision and speed knobs of `reslens explain` (single, answers, --generate and --batch),
// `reslens diff` (and its --batch) and `reslens graph`: --method, --bound-tol, --no-projection-cache
// --no-sketch and --extended-head, as ExplainOptions takes them, checked by the library's rule (parse_score_method,
// check_bound_tol in reslens/explain.h) as the server and Python check them; docs/explain.md,
// "Precision and speed knobs".
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "reslens/explain.h"

namespace reslens::cli {

struct ScoreMethodArgs {
  std::string method = "auto";                    ///< --method auto|full|bounded
  double bound_tol = ExplainOptions{}.bound_tol;  ///< --bound-tol: a positive finite number
  bool no_projection_cache = false;               ///< --no-projection-cache
  bool no_sketch = false;                         ///< --no-sketch
  int extended_head = ExplainOptions{}.extended_head;  ///< --extended-head: -1 (auto) or a head size
  /// Adds the five options to `cmd`; CLI11 refuses a bad --method, --bound-tol or --extended-head (exit 2,
  /// one line).
  void add(CLI::App& cmd);
  /// Sets method, bound_tol, projection_cache, projection_sketch and extended_head of `o`.
  void apply(ExplainOptions& o) const;
  /// The knobs that differ from the defaults, for a batch's settings (a resume must use the same
  /// ones; a batch begun before these options existed, all defaults, still resumes).
  nlohmann::json changed() const;
};

}  // namespace reslens::cli
