// The part of a `--batch` command that does not depend on what each prompt computes: the output
// folder (refused when it holds results unless --resume or --force), resuming after the readable
// prefix of the results file, the task farm (threads here, ranks under mpirun), writing each result
// line in input order as soon as every earlier one is done, the settings file with "complete", and
// the warnings about skipped lines. `explain --batch` and `diff --batch` are this plus their line.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "batch_prompts.h"
#include "farm.h"

namespace reslens::cli {

struct BatchRunSpec {
  std::string command;                ///< "explain --batch", for messages
  std::string batch_file;             ///< --batch FILE, for messages
  std::filesystem::path out;          ///< -o OUT
  std::string results_name;           ///< "explanations.jsonl", "diffs.jsonl"
  std::string settings_name;          ///< "batch.json"
  bool resume = false, force = false, quiet = false;
};

/// Rank 0, before loading anything: InvalidArgument when OUT is a file, or holds results and neither
/// --resume nor --force was given, or has no settings file to resume from; or both flags are given.
void check_batch_out(const BatchRunSpec& spec);

struct BatchRunOutcome {
  size_t already = 0;   ///< lines kept from an earlier run (--resume)
  size_t computed = 0;  ///< lines computed this run
  int64_t errors = 0;   ///< of those, lines {"batch", "error"}
};

/// Rank 0, after farm.ready(): keeps the readable prefix of OUT/results_name when resuming (the same
/// settings, paths aside, or InvalidArgument), computes the rest with `work` over the farm and appends
/// each line in input order. The settings file records `settings` and "complete": true at the end.
BatchRunOutcome run_batch_coordinator(Farm& farm, const BatchRunSpec& spec, const BatchPrompts& in,
                                      const nlohmann::json& settings, const TaskFn& work, int threads);

/// A prompt that could not be computed: {"batch": tag, "error": message}, one line.
std::string batch_error_line(const nlohmann::ordered_json& tag, const std::string& message);

/// A result line of a batch: `document` (a JSON text, its own key order kept) with "batch": tag added
/// as its last key, on one line.
std::string batch_document_line(const std::string& document, const nlohmann::ordered_json& tag);

/// The whole of a file (IoError when it cannot be read).
std::string read_whole_file(const std::filesystem::path& p);

}  // namespace reslens::cli
