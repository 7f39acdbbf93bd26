// Reporting how far an explain is (ExplainProgress, include/reslens/explain.h) from the analysis
// code that does the work: the phases, and the model's bounds and the sketch's Grams when built.
#pragma once

#include <cstdint>
#include <string_view>

#include "reslens/explain.h"

namespace reslens::analysis {

/// Tells `fn` (when not null and set) that `done` of `total` units of `phase` are finished. Called
/// on the thread that runs the explain only, never inside a parallel_for.
inline void report_progress(const ExplainProgressFn* fn, std::string_view phase, int64_t done, int64_t total) {
  if (fn != nullptr && *fn) (*fn)(ExplainProgress{phase, done, total});
}

}  // namespace reslens::analysis
