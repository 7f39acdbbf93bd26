// OUT/arrays/ of `reslens diff A B --batch FILE -o OUT`: every compared prompt's scores under both
// models at the four levels the summary ranks, whole (docs/diff.md, "Over a dataset"), as .npy
// arrays with a prompt axis:
//   lines.npy               int64 [n]          the input line of each row (prompts that failed have none)
//   layers_{a,b}.npy        float64 [n, L, 2]  layer_scores (attention, FFN)
//   heads_{a,b}.npy         float64 [n, L, H]  head_scores
//   ffn_neurons_{a,b}.npy   float64 [n, L, d_mlp] ffn_neuron_scores
//   attn_neurons_{a,b}.npy  float64 [n, L, H, d_head] attn_neuron_scores summed over source positions
// A level the model's explanation lacks has no files. The per-prompt documents of diffs.jsonl
// inline a level's arrays only up to 4096 elements; these files hold every level of every model,
// and summary.json is computed from them.
//
// Why float64: the scores are doubles (explain computes and `diff --out` writes them as float64),
// and the summary's means must be numpy's over exactly those values; float32 would halve the disk
// (32 x 11008 x 8 B x 2 = 5.6 MB a prompt for a 7B model's FFN neurons) at the cost of the summary
// no longer matching the single diff's arrays.
//
// A worker encodes its prompt's arrays as one binary record (diff_arrays_record) that travels with
// the line through the farm (batch_result); rank 0 appends the records in input order.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "batch_run.h"
#include "growing_npy.h"
#include "reslens/diff.h"

namespace reslens::cli {

/// The summary's groups and the explain levels they come from, in this order everywhere.
inline constexpr const char* kDiffGroups[4] = {"layers", "heads", "ffn_neurons", "attn_neurons"};
inline constexpr const char* kDiffGroupLevels[4] = {"layer_scores", "head_scores", "ffn_neuron_scores",
                                                    "attn_neuron_scores"};

/// Group g's component grid from its level's shape: attention neurons drop the source-position axis.
std::vector<int64_t> diff_group_grid(int g, std::vector<int64_t> level_shape);

/// Sums the last axis of a flat [.., n] array: attention neurons over their source positions. [size / n]
std::vector<double> sum_last_axis(const std::vector<double>& v, int64_t n);

/// The record of one compared prompt: its input line and, per group present, the grid and A's and B's
/// scores in it.
std::string diff_arrays_record(int64_t line, const ModelDiff& d);

/// The sidecar of diff --batch: OUT/arrays/, written by rank 0 (BatchSidecar).
class DiffBatchArrays final : public BatchSidecar {
 public:
  void begin(const std::filesystem::path& out, const std::vector<std::string>& kept) override;
  void append(const std::string& line, const std::string& payload) override;

 private:
  void open_groups(const std::vector<std::vector<int64_t>>& grids);  // creates the files of a fresh run
  std::filesystem::path dir_;
  std::unique_ptr<GrowingNpy> lines_;
  std::vector<std::vector<int64_t>> grids_;  // per group; empty: not present (or not known yet)
  std::unique_ptr<GrowingNpy> a_[4], b_[4];
  bool known_ = false;  // grids_ set (from the first record, or the kept lines)
};

/// OUT/arrays/<group>_a.npy or _b.npy.
std::filesystem::path diff_group_file(const std::filesystem::path& arrays_dir, int g, char side);

}  // namespace reslens::cli
