// The one rule the CLI, the server and Python check explain's precision knobs by (reslens/explain.h,
// docs/explain.md "Precision and speed knobs"), so a value refused at one front door is refused at all.
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>

#include "reslens/error.h"
#include "reslens/explain.h"

namespace reslens {

const char* to_string(ScoreMethod method) {
  switch (method) {
    case ScoreMethod::kAuto: return "auto";
    case ScoreMethod::kFull: return "full";
    case ScoreMethod::kBounded: return "bounded";
  }
  return "auto";
}

ScoreMethod parse_score_method(std::string_view name) {
  for (const ScoreMethod m : {ScoreMethod::kAuto, ScoreMethod::kFull, ScoreMethod::kBounded}) {
    if (name == to_string(m)) return m;
  }
  throw InvalidArgument("method must be 'auto', 'full' or 'bounded', not '" + std::string(name) + "'");
}

void check_bound_tol(double bound_tol) {
  if (std::isfinite(bound_tol) && bound_tol > 0) return;
  std::ostringstream v;  // "nan", "inf", "-1e-05", "0": as the user's value reads
  v << bound_tol;
  throw InvalidArgument("bound_tol must be a positive finite number, not " + v.str());
}

void check_extended_head(int64_t extended_head) {
  if (extended_head >= -1 && extended_head <= (int64_t{1} << 20)) return;
  throw InvalidArgument("extended_head must be -1 (auto), 0 (none) or a number of tokens up to 1048576, not " +
                        std::to_string(extended_head));
}

}  // namespace reslens
