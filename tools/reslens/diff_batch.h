// reslens diff MODEL_A MODEL_B --batch prompts.jsonl -o OUT: the diff of every line of a JSONL file
// (explain --batch's line format), one JSON line each in OUT/diffs.jsonl, and OUT/summary.json: the
// components that changed most over all prompts. Resumable, and over the ranks of an MPI job when
// started by mpirun or srun (farm.h). cmd_diff_batch.cpp, docs/diff.md.
#pragma once

#include <string>

#include "common.h"
#include "score_method_args.h"

namespace reslens::cli {

struct DiffBatchArgs {
  std::string batch;  ///< --batch FILE
  std::string out;    ///< -o OUT (a folder)
  bool resume = false, force = false, strict = false, quiet = false;
  // diff's own options, applied to every prompt
  int top = 20, split_top = 20;
  bool final_bias = false;
  ScoreMethodArgs score;  ///< --method, --bound-tol, --no-projection-cache, --no-sketch
};

/// `model_a` is model A's path; `margs` carries model B (the second positional) and the load
/// options; `prompt` the prompt options (--bos, --no-parse-special, --chat, ...) each line's
/// "prompt" is read with.
void run_diff_batch(const std::string& model_a, ModelArgs& margs, const PromptArgs& prompt, const DiffBatchArgs& b);

}  // namespace reslens::cli
