// Aggregating the diff documents of a batch (diff_batch_summary.h).
//
// Components: layers (layer_scores [L, 2]), heads (head_scores [L, H]), FFN neurons
// (ffn_neuron_scores [L, d_mlp]) and attention neurons (attn_neuron_scores [L, H, d_head, P+1]).
// An attention neuron's source positions depend on the prompt, so across prompts the neuron is
// (layer, head, dim) and its score in one prompt the sum of its scores over the source positions.
// Per component, over the prompts compared (the rows of OUT/arrays/<group>_{a,b}.npy, which hold
// every level whole; the documents inline only levels of at most 4096 elements):
//   mean_abs_delta    mean over prompts of |B - A|
//   mean_delta        mean over prompts of B - A
//   in_top            prompts whose document lists it in changes.<level>.by_delta (the --top largest)
//   mean_rank_change  mean over prompts of rank_B - rank_A (rank 1 = highest score; ties share a rank)
#include "diff_batch_summary.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "diff_batch_arrays.h"
#include "growing_npy.h"

#include "reslens/diff.h"
#include "reslens/error.h"
#include "reslens/report.h"

namespace reslens::cli {

namespace {


}  // namespace

struct DiffBatchSummary::Group {
  std::vector<int64_t> shape;  // the component grid: the level's shape (attention: without the position axis)
  std::vector<double> sum_abs, sum_delta, sum_rank_change;
  std::vector<int64_t> in_top;
  int64_t prompts = 0;  // prompts whose arrays were added
  bool named = false;   // a document names the level (its grid is `shape`)

  std::string label(int g, size_t i) const {
    const auto k = static_cast<int64_t>(i);
    if (g == 0) return label_layer(k / 2, k % 2 == 1);
    if (g == 1) return label_head(k / shape[1], k % shape[1]);
    if (g == 2) return label_ffn_neuron(k / shape[1], k % shape[1]);
    const int64_t n = k % shape[2], h = (k / shape[2]) % shape[1], l = k / (shape[2] * shape[1]);
    return label_head(l, h) + "D" + std::to_string(n);
  }
  std::vector<int64_t> index(size_t i) const {
    std::vector<int64_t> idx(shape.size());
    auto k = static_cast<int64_t>(i);
    for (size_t d = shape.size(); d-- > 0;) {
      idx[d] = k % shape[d];
      k /= shape[d];
    }
    return idx;
  }
  // The level as one document names it, and the components it lists among its top changes.
  void add_listed(const std::vector<int64_t>& grid, const std::vector<size_t>& top_listed) {
    if (!named) {
      shape = grid;
      size_t n = 1;
      for (int64_t d : grid) n *= static_cast<size_t>(d);
      sum_abs.assign(n, 0.0);
      sum_delta.assign(n, 0.0);
      sum_rank_change.assign(n, 0.0);
      in_top.assign(n, 0);
      named = true;
    } else if (grid != shape) {
      throw FormatError("diff --batch: a document's level has another shape than the earlier prompts'");
    }
    for (size_t i : top_listed) ++in_top.at(i);
  }
  // One prompt's scores of this level: A and B, in the component grid.
  void add(const std::vector<double>& a, const std::vector<double>& b) {
    const std::vector<int64_t> ra = score_ranks(a), rb = score_ranks(b);
    for (size_t i = 0; i < a.size(); ++i) {
      const double d = b[i] - a[i];
      sum_abs[i] += std::abs(d);
      sum_delta[i] += d;
      sum_rank_change[i] += static_cast<double>(rb[i] - ra[i]);
    }
    ++prompts;
  }
};

DiffBatchSummary::DiffBatchSummary(int top) : top_(top) {
  for (auto& g : groups_) g = std::make_shared<Group>();
}

void DiffBatchSummary::add_line(const std::string& line) {
  const nlohmann::json j = nlohmann::json::parse(line);
  if (j.contains("error")) {
    ++failed_;
    return;
  }
  ++done_;
  const double lp = j.at("target_log_prob_delta").get<double>();
  sum_lp_delta_ += lp;
  sum_abs_lp_delta_ += std::abs(lp);
  if (j.at("model_a").at("prediction").at("id") != j.at("model_b").at("prediction").at("id")) ++prediction_changed_;
  for (int g = 0; g < 4; ++g) {
    const nlohmann::json* level = nullptr;
    for (const auto& lv : j.at("levels")) {
      if (lv.at("name") == kDiffGroupLevels[g]) level = &lv;
    }
    if (level == nullptr) continue;  // the model's explanation has no such level
    const std::vector<int64_t> grid = diff_group_grid(g, level->at("shape").get<std::vector<int64_t>>());
    // Components the document lists among its top changes, once per prompt (an attention neuron's
    // index has its source position last, dropped here).
    std::vector<size_t> listed;
    for (const auto& c : j.at("changes").at(kDiffGroups[g]).at("by_delta")) {
      const auto idx = c.at("index").get<std::vector<int64_t>>();
      size_t flat = 0;
      for (size_t d = 0; d < grid.size(); ++d) flat = flat * static_cast<size_t>(grid[d]) + static_cast<size_t>(idx.at(d));
      if (std::find(listed.begin(), listed.end(), flat) == listed.end()) listed.push_back(flat);
    }
    groups_[g]->add_listed(grid, listed);
  }
}

void DiffBatchSummary::add_arrays(const std::filesystem::path& arrays_dir) {
  for (int g = 0; g < 4; ++g) {
    Group& grp = *groups_[g];
    if (!grp.named) continue;
    GrowingNpy a = GrowingNpy::open_existing(diff_group_file(arrays_dir, g, 'a'), "<f8");
    GrowingNpy b = GrowingNpy::open_existing(diff_group_file(arrays_dir, g, 'b'), "<f8");
    for (const GrowingNpy* f : {&a, &b}) {
      if (f->rows() != done_ || f->row_shape() != grp.shape) {
        throw FormatError(f->path().string() + ": holds " + std::to_string(f->rows()) + " prompt(s) of " +
                          std::to_string(f->row_elements()) + " scores, diffs.jsonl " + std::to_string(done_) +
                          " of " + std::to_string(grp.sum_abs.size()));
      }
    }
    std::vector<double> ra(grp.sum_abs.size()), rb(grp.sum_abs.size());
    for (int64_t i = 0; i < done_; ++i) {  // one prompt at a time: a 7B model's level is 352k scores
      a.read(i, ra.data());
      b.read(i, rb.data());
      grp.add(ra, rb);
    }
  }
}

nlohmann::ordered_json DiffBatchSummary::json(int64_t skipped_lines) const {
  nlohmann::ordered_json j;
  j["kind"] = "diff_batch_summary";
  j["prompts"] = {{"done", done_}, {"failed", failed_}, {"skipped_lines", skipped_lines}};
  const double n = done_ > 0 ? static_cast<double>(done_) : 1.0;
  j["target_log_prob_delta"] = {{"mean", sum_lp_delta_ / n}, {"mean_abs", sum_abs_lp_delta_ / n}};
  j["prediction_changed"] = prediction_changed_;
  j["top"] = top_;
  for (int g = 0; g < 4; ++g) {
    const Group& grp = *groups_[g];
    nlohmann::ordered_json e;
    e["prompts"] = grp.prompts;
    e["shape"] = grp.shape;
    e["top"] = nlohmann::ordered_json::array();
    if (grp.prompts > 0) {
      const auto m = static_cast<double>(grp.prompts);
      // Components that changed in some prompt, by mean |delta| (ties: array order).
      std::vector<size_t> order;
      for (size_t i = 0; i < grp.sum_abs.size(); ++i) {
        if (grp.sum_abs[i] != 0 || grp.sum_rank_change[i] != 0 || grp.in_top[i] != 0) order.push_back(i);
      }
      std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return grp.sum_abs[x] > grp.sum_abs[y]; });
      if (order.size() > static_cast<size_t>(top_)) order.resize(static_cast<size_t>(top_));
      for (size_t i : order) {
        e["top"].push_back({{"label", grp.label(g, i)},
                            {"index", grp.index(i)},
                            {"mean_abs_delta", grp.sum_abs[i] / m},
                            {"mean_delta", grp.sum_delta[i] / m},
                            {"in_top", grp.in_top[i]},
                            {"mean_rank_change", grp.sum_rank_change[i] / m}});
      }
    }
    j[kDiffGroups[g]] = e;
  }
  return j;
}

}  // namespace reslens::cli
