// The steps of a multi-token target summed into TargetSums (reslens/explain_target.h), and the
// sequence contrast with a foil. Internal to the analysis module: explain_target() calls it.
#pragma once

#include "reslens/explain_target.h"

namespace reslens::analysis {

/// Sums `done`'s steps; `done.summed` is not read. With a foil (`done.foil` not empty): the
/// contrast of the sequences, term by term (docs/explain.md): steps before the two sequences part
/// add 0 (the same token in the same context), `done.contrast_step` adds its one-position contrast,
/// the target's later steps add their scores and the foil's own steps (`done.foil_pass`) subtract
/// theirs. `foil_log_prob`: log p(foil) of the whole foil sequence. `set_size`: Q5's set size.
TargetSums sum_target_steps(const ExplainedTarget& done, int set_size, double foil_log_prob);

/// Q5 of the summed scores: the top `set_size` summed query FFN neurons, counted per layer by
/// whether they are also among the top `set_size` summed value neurons (query_scores.cpp's rule).
/// sum_target_steps() calls it; again after the sums are tightened (analysis/target_tightening.h).
void count_query_sets(TargetSums& s, int set_size);

}  // namespace reslens::analysis
