// The part of a `--batch` command that does not depend on what each prompt computes: the output
// folder (refused when it holds results unless --resume or --force), resuming after the readable
// prefix of the results file, the task farm (threads here, ranks under mpirun), writing each result
// line in input order as soon as every earlier one is done, the settings file with "complete", and
// the warnings about skipped lines. `explain --batch` and `diff --batch` are this plus their line.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

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

/// Binary output that travels beside the result lines (diff --batch's per-prompt arrays): a task's
/// result may carry a payload after its line (batch_result()), and rank 0 hands each payload to the
/// sidecar in input order, just before the line is written. So the sidecar never holds fewer
/// prompts than the results file, and resuming cuts it back to the lines kept.
class BatchSidecar {
 public:
  virtual ~BatchSidecar() = default;
  /// Before anything is computed. `kept`: the result lines kept from an earlier run (none on a fresh
  /// run). Cuts the sidecar back to them, or throws FormatError naming a file that does not match.
  virtual void begin(const std::filesystem::path& out, const std::vector<std::string>& kept) = 0;
  /// One result, in input order: its line and its payload (empty for a line without one).
  virtual void append(const std::string& line, const std::string& payload) = 0;
};

/// A task's result: its line, then (when not empty) '\n' and a binary payload for the sidecar. A
/// line never holds a raw newline (JSON dumped on one line escapes them).
std::string batch_result(const std::string& line, const std::string& payload);

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
/// `sidecar` (may be null) receives each result's payload (BatchSidecar).
BatchRunOutcome run_batch_coordinator(Farm& farm, const BatchRunSpec& spec, const BatchPrompts& in,
                                      const nlohmann::json& settings, const TaskFn& work, int threads,
                                      BatchSidecar* sidecar = nullptr);

/// What one `--batch` command adds to the driver; run_batch_command() does the rest (the folder
/// checks, the farm, the settings, resuming, the ordered writing, the warnings).
struct BatchCommand {
  BatchRunSpec spec;
  std::string protocol;  ///< the first line of the farm's fingerprint, e.g. "reslens diff batch farm 1"
  int threads = 0;       ///< -t: threads per prompt (0: the default, shared by the ranks of a node)
  bool strict = false;   ///< --strict: a malformed input line is fatal
  /// Every rank, before the prompts are read: loads the model(s) and refuses what the command line
  /// gets wrong. Its exception ends the job on every rank (Farm::ready).
  std::function<void()> load;
  /// The settings that the settings file records and resuming and the ranks compare.
  std::function<nlohmann::json(const BatchPrompts&)> settings;
  /// One prompt's result (batch_result()), on any rank, on `threads` threads.
  std::function<std::string(const BatchPrompt&, int threads)> line;
  BatchSidecar* sidecar = nullptr;  ///< rank 0's, or null
};

/// Runs the command's batch: on rank 0 returns what was done (and `in` holds the prompts read); on
/// a worker rank returns nothing once rank 0 says stop (the worker then returns quietly).
std::optional<BatchRunOutcome> run_batch_command(const BatchCommand& c, BatchPrompts& in);

/// The closing messages on stderr: how many prompts could not be `failed_verb` ("explained"), and
/// unless --quiet the "done: ..." line, `extra` appended to it.
void report_batch_done(const BatchRunSpec& spec, const BatchRunOutcome& done, size_t prompts,
                       const std::string& failed_verb, const std::string& extra = "");

/// InvalidArgument when the command line names a prompt TEXT: --batch reads its prompts from the file.
void refuse_batch_text(bool text_given, const std::string& text);

/// A prompt that could not be computed: {"batch": tag, "error": message}, one line.
std::string batch_error_line(const nlohmann::ordered_json& tag, const std::string& message);

/// A result line of a batch: `document` (a JSON text, its own key order kept) with "batch": tag added
/// as its last key, on one line.
std::string batch_document_line(const std::string& document, const nlohmann::ordered_json& tag);

/// The whole of a file (IoError when it cannot be read).
std::string read_whole_file(const std::filesystem::path& p);

}  // namespace reslens::cli
