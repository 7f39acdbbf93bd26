// diff: one prompt explained under two models of the same architecture and shape (F16 vs Q8_0 of
// one model, a base model and its fine-tune, two checkpoints), every level of the explanation side
// by side with its difference, the components whose score moved most, and for the neurons that
// moved most how much of the move comes from their weights and how much from their activation
// (docs/diff.md).
//
// Both models explain the same token ids at the same position for the same target (by default
// model A's top prediction), with the same options, through explain(model, ExplainRequest). So each
// side is bit for bit the explanation `reslens explain` prints for that model and target, and the
// difference of a model with itself is exactly zero.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "reslens/explain.h"
#include "reslens/explain_request.h"
#include "reslens/model.h"
#include "reslens/report.h"

namespace reslens {

/// One level of the explanation (an `--out` array of explain: "layer_scores", "head_scores",
/// "ffn_neuron_scores", ...) under both models, and B - A element by element. [shape]
struct LevelDiff {
  std::string name;
  ScoreArray a, b, delta;
};

/// One component (a layer, head or neuron) whose score moved: its scores and ranks (1 = highest
/// score) under each model.
struct ComponentChange {
  std::string label;             ///< "L3 ffn", "L3H1", "L3N200", "L3H1D7@4" (report.h's labels)
  std::vector<int64_t> index;    ///< into the level's array
  double a = 0, b = 0, delta = 0;
  int64_t rank_a = 0, rank_b = 0;
};

/// A neuron's change of score split in two parts that add up to it (docs/diff.md):
///   weights    = Imp_A(c_A w_B) - Imp_A(c_A w_A)   B's value vector with A's coefficient, in A's context
///   activation = delta - weights                    what the coefficient and the context add
/// where w is the neuron's value vector (FFN: W_out's column k; attention: W_O's column h*d_head+n),
/// c its coefficient at the explained position (m_k; alpha v_n from source position p) and Imp_A
/// the log-probability increase in model A's context of the neuron (r^l for FFN neurons, h^{l-1} for
/// attention neurons) under A's vocabulary projection. Identical value vectors give weights = 0.
struct NeuronSplit {
  ComponentChange change;
  bool ffn = true;                 ///< FFN neuron {l, k}; else attention neuron {l, h, n, p}
  double coef_a = 0, coef_b = 0;   ///< c under each model
  double weight_norm = 0;          ///< ||w_B - w_A||_2
  double weights = 0, activation = 0;
};

/// Every score's rank: 1 + how many scores are larger (1 = the highest; ties share a rank), as the
/// ranked changes (rank_a, rank_b) and diff --batch's summary count them. [n]
std::vector<int64_t> score_ranks(const std::vector<double>& scores);

/// Components ranked by how much they moved: by |delta| (largest first) and by |rank_b - rank_a|.
struct RankedChanges {
  std::vector<ComponentChange> by_delta, by_rank;
};

struct DiffOptions {
  int top = 20;          ///< entries per ranked list
  int split_top = 20;    ///< FFN and attention neurons (each) whose change is split (the top by |delta|)
};

struct ModelDiff {
  ExplainedPrompt a, b;  ///< each model's explanation (B's target is A's)
  std::string path_a, path_b;
  int32_t prediction_a = -1, prediction_b = -1;  ///< each model's top token at the position
  std::vector<LevelDiff> levels;                 ///< in explain's `--out` order
  RankedChanges layers, heads, ffn_neurons, attn_neurons;
  std::vector<NeuronSplit> splits;               ///< FFN neurons first, then attention neurons
  /// Largest |delta| over every level: exactly 0 for a model and itself.
  double max_abs_delta = 0;
};

/// UnsupportedError naming both shapes when the models differ in architecture, any dimension, the
/// final-logit softcap, or their vocabularies (size or any token's text): then no score of one
/// means the same as the other's.
void require_same_shape(const Model& a, const Model& b);

/// Explains `request` under A, then under B with A's resolved tokens, position, target and foil.
ModelDiff diff(const Model& a, const Model& b, const ExplainRequest& request, const DiffOptions& options = {});

/// "gpt2 L=2 d_model=64 H=4 kv=4 d_head=16 d_mlp=256 vocab=512": what require_same_shape compares.
std::string shape_text(const Model& m);

// Reports of a diff (report module).

/// One JSON document: both predictions and target log-probabilities, every level's A, B and delta
/// summary, the ranked changes, the neuron splits (docs/diff.md).
std::string diff_json(const Model& a, const Model& b, const ModelDiff& d, const ReportOptions& ro = {});
/// The terminal report.
std::string diff_text(const Model& a, const Model& b, const ModelDiff& d, const ReportOptions& ro = {});
/// A self-contained HTML page (static, no script): both models side by side at every level that fits a
/// page (predictions, layers, the logit lens, heads), the ranked changes and the splits, with the
/// diff_json() document in <script type="application/json" id="reslens-diff">.
std::string diff_html(const Model& a, const Model& b, const ModelDiff& d, const ReportOptions& ro = {});
/// DIR/a/<name>.npy, DIR/b/<name>.npy (explain's arrays of each model) and DIR/delta/<name>.npy (B - A),
/// DIR/splits.npy [n, 5] (coef_a, coef_b, weight_norm, weights, activation). Creates DIR.
void write_diff_arrays(const std::filesystem::path& dir, const ModelDiff& d);

}  // namespace reslens
