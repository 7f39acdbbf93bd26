// OUT/summary.json of `reslens diff A B --batch FILE -o OUT`: over every prompt of diffs.jsonl, which
// layers, heads, FFN neurons and attention neurons changed most between the two models
// (docs/diff.md, "Over a dataset").
//
// It is computed from the files alone: the counts and each prompt's top-change lists from the lines
// of diffs.jsonl, the means and rank changes from OUT/arrays/ (every level whole, whatever its size:
// diff_batch_arrays.h). So a resumed run, an MPI run and a plain run give the same summary, and
// anyone can recompute it with numpy from those files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace reslens::cli {

/// Accumulates the diff documents of a batch, one line at a time, in input order.
class DiffBatchSummary {
 public:
  explicit DiffBatchSummary(int top);
  /// One line of diffs.jsonl: a diff document with its "batch" key, or {"batch", "error"}.
  void add_line(const std::string& line);
  /// After every line: the arrays of OUT/arrays/ (arrays_dir), one row per compared prompt. FormatError
  /// naming the file when a level the documents name has no file, or its rows or grid differ from theirs.
  void add_arrays(const std::filesystem::path& arrays_dir);
  /// The summary (docs/diff.md): counts, then per level the top `top` components by mean |delta|.
  nlohmann::ordered_json json(int64_t skipped_lines) const;

 private:
  struct Group;  // one level: layers, heads, FFN neurons or attention neurons
  int top_;
  int64_t done_ = 0, failed_ = 0, prediction_changed_ = 0;
  double sum_lp_delta_ = 0, sum_abs_lp_delta_ = 0;
  std::shared_ptr<Group> groups_[4];
};

}  // namespace reslens::cli
