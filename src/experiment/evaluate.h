// The evaluation of one sentence, with the token resolver and the scaled counts prepared once per
// run rather than once per sentence. Internal.
#pragma once

#include "reslens/token_names.h"
#include "reslens/experiment.h"
#include "reslens/run.h"

namespace reslens::experiment_impl {

/// The filter alone (spec §5.2): tokens, one run, the target's stats, and status kKept,
/// kNotInTopK or kBelowCompetitor. With `capture`, the run holds what explain() needs. Throws on
/// the sentence's own problems (evaluate() turns them into kError).
struct Screened {
  SentenceResult result;
  std::vector<int32_t> tokens;
  RunResult run;
};
Screened screen(const Model& model, const TokenResolver& resolver, const ExperimentSentence& sentence,
                const ExperimentOptions& options, bool capture);

SentenceResult evaluate(const Model& model, const TokenResolver& resolver, const ExperimentCounts& counts,
                        const ExperimentSentence& sentence, const ExperimentOptions& options);

}  // namespace reslens::experiment_impl
