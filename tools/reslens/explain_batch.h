// reslens explain MODEL --batch prompts.jsonl -o OUT: many explains, one JSON line each, resumable,
// over the ranks of an MPI job when started by mpirun or srun (farm.h). cmd_explain_batch.cpp.
#pragma once

#include <string>

#include "common.h"
#include "score_method_args.h"

namespace reslens::cli {

struct ExplainBatchArgs {
  std::string batch;  ///< --batch FILE
  std::string out;    ///< -o OUT (a folder)
  bool resume = false, force = false, strict = false, arrays = false, quiet = false;
  // explain's own options, applied to every prompt
  int top = 20;
  bool final_bias = false, compat_notebook = false, baselines = false;
  int query_top = 30;
  ScoreMethodArgs score;  ///< --method, --bound-tol, --no-projection-cache, --no-sketch
};

/// `margs` and `prompt` carry the model and the prompt options (--bos, --no-parse-special, --chat,
/// ...); each line's "prompt" is read with them. Throws InvalidArgument when the command line also
/// names a prompt, a target or another per-prompt option (the file holds those).
void run_explain_batch(ModelArgs& margs, const PromptArgs& prompt, const ExplainBatchArgs& b);

}  // namespace reslens::cli
