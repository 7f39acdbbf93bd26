// Pieces of explain() shared between its files. Internal.
#pragma once

#include <functional>

#include <vector>

#include "analysis/bounds.h"
#include "analysis/projection_cache.h"
#include "analysis/projection_sketch.h"
#include "analysis/progress.h"
#include "analysis/projector.h"
#include "analysis/shared_projections.h"
#include "analysis/trace_view.h"
#include "reslens/explain.h"

namespace reslens::analysis {

/// The certified half-widths of a bounded explain's scores, entry for entry of the Explanation's
/// arrays of the same names: |score - exact| <= width (0: computed over the whole vocabulary).
/// A multi-token target sums them over its steps to decide which summed scores need tightening
/// (analysis/target_tightening.h). Filled only when ExplainContext::widths is set.
struct ScoreWidths {
  ScoreArray head;           ///< [L, H]
  ScoreArray head_position;  ///< [L, H, P+1]
  ScoreArray ffn_neuron;     ///< [L, N]
  ScoreArray attn_neuron;    ///< [L, H, d_head, P+1]
  /// [2L] the head/tail splits of points 0..2L-1 (ExplainContext::tails), kept for the tightening's
  /// sketch: L2 doubles each (GPT-2 124M: 150 KB a step; Llama 7B: 2 MB).
  std::vector<KeptSplit> tails;
};

/// Everything the scoring steps share: the model, the trace, the projector, the explained
/// position and target, and the distribution of each residual point at P.
struct ExplainContext {
  const Model& model;
  const TraceView& trace;
  const VocabProjector& proj;
  const ExplainOptions& opts;
  int64_t P = 0;
  int32_t w = 0;                          ///< target
  int32_t foil = -1;
  std::vector<Distribution> points;       ///< 2L+1: emb, then a0, f0, a1, f1, ...
  int threads = 1;
  /// kBounded: the model's weight-only bounds and the head/tail split of points 0..2L-1 (the final
  /// point is no vector's context).
  std::shared_ptr<const ModelBounds> bounds;
  std::vector<TailSplit> tails;
  /// kBounded: the model's cached projections when present (used for vectors whose bounds fail).
  std::shared_ptr<const ProjectionCache> projections;
  /// kBounded: exact projections of weight directions shared with other explains of the model (the
  /// steps of a target), or nullptr.
  SharedProjections* shared = nullptr;
  /// kBounded: where to record each bounded score's certified half-width, or nullptr.
  ScoreWidths* widths = nullptr;
  /// kBounded: the int8 sketch of W_U that certifies vectors before the exact pass, or nullptr
  /// (ExplainOptions::projection_sketch).
  std::shared_ptr<const ProjectionSketch> sketch;
  /// ExplainRequest::on_progress, or nullptr: told how far the phases are (report()).
  const ExplainProgressFn* progress = nullptr;

  /// Tells the caller's progress function that `done` of `total` units of `phase` are finished.
  void report(std::string_view phase, int64_t done, int64_t total) const {
    report_progress(progress, phase, done, total);
  }
  const Distribution& before_attn(int64_t l) const { return points[static_cast<size_t>(2 * l)]; }
  const Distribution& before_ffn(int64_t l) const { return points[static_cast<size_t>(2 * l + 1)]; }
};

/// explain() whose exact passes read and keep weight directions' projections in `shared` (nullptr:
/// explain() itself). Every score is the same bit for bit with or without it. `widths` (when not
/// nullptr) receives the bounded method's certified half-widths (all 0 under the full method).
/// `should_stop` (ExplainRequest::should_stop, when set) is asked after each phase (points, bounds,
/// tails, attention, FFN neurons, checks); when it answers true, Cancelled is thrown and nothing
/// more is computed. It is called from this thread only, as is `on_progress` (ExplainProgress).
Explanation explain_sharing(const Model& model, const RunResult& run, std::span<const int32_t> tokens,
                            const ExplainOptions& opts, SharedProjections* shared, ScoreWidths* widths = nullptr,
                            const std::function<bool()>& should_stop = {}, const ExplainProgressFn& on_progress = {});

/// Layer scores (spec §3.1 rows 1-2) from the 2L+1 residual points at P (emb, then a0, f0, a1, f1,
/// ...): Imp(A^l | h^{l-1}) and Imp(F^l | r^l) as differences of the points' log p(w), and with a
/// foil (>= 0) the same for the logit difference log p(w) - log p(foil).
struct LayerScores {
  std::vector<double> attn, ffn;                    ///< [L]
  std::vector<double> contrast_attn, contrast_ffn;  ///< [L] with a foil, else empty
  double telescoping = 0;  ///< |sum of all 2L scores - (log p(w|h^{L-1}) - log p(w|h^{-1}))|
};
LayerScores layer_scores(const std::vector<Distribution>& points, int32_t w, int32_t foil);
/// layer_scores of ctx.points stored into `ex` (with its "telescoping" check and, with a foil,
/// has_contrast, which the later steps read).
void score_layers(const ExplainContext& ctx, Explanation& ex);

/// Shared steps of both attention methods: the score arrays, the coefficients alpha_{P,p} v_{p,n} of
/// layer l, and the identities (heads + b_O = A^l; neurons over dims and positions = heads).
void init_attention_arrays(const ExplainContext& ctx, Explanation& ex);
void fill_attention_coefficients(const ExplainContext& ctx, Explanation& ex, int64_t l);
void check_attention_identities(const ExplainContext& ctx, Explanation& ex);
/// The neurons (+ b_out) rebuild F^l at P.
void check_ffn_identities(const ExplainContext& ctx, Explanation& ex);

/// Floats added to the rows of buffers that the small products (ops::matmul_nn_accumulate_small)
/// read many rows of: at a stride of a power of two bytes (d_model = 4096 floats, 256 columns) those
/// rows fall into a few L1 sets and evict one another (bench_vector_ops BM_FloatProductHeadTokens, a
/// 7B layer's head projections on one AMD Zen 3 core: 21 -> 28 GMAC/s padded). Layout only.
inline constexpr int64_t kRowPad = 16;

/// Head h's columns of a decoded W_O [d_model, H*d_head] as rows: out [d_head, d_model] with row
/// stride ld (d_model + kRowPad), so that sums over a head's neurons, sum_n c_n W_O[i, h*d_head + n]
/// for every i, are one small product (each element the same chain over n in order) instead of one
/// element's chain of d_head dependent additions at a time.
void head_columns_as_rows(const MatrixView& W_O, int64_t h, int64_t d_head, int64_t ld, std::vector<float>& out);

/// Attention heads, head x position shares, attention neurons (and their contrast scores).
void score_attention(const ExplainContext& ctx, Explanation& ex);
/// FFN neurons (and their contrast scores and, when asked, the baselines of spec §3.3).
void score_ffn_neurons(const ExplainContext& ctx, Explanation& ex);
/// The same with certified bounds (kBounded), falling back to the whole vocabulary per vector.
void score_attention_bounded(const ExplainContext& ctx, Explanation& ex);
void score_ffn_neurons_bounded(const ExplainContext& ctx, Explanation& ex);
/// Mixture-of-experts models: each expert's output vector at P scored in the FFN's context.
void score_experts(const ExplainContext& ctx, Explanation& ex);
/// Query analyses Q1, Q2, Q3, Q5 (spec §4.3) from the value scores already in `ex`.
void score_queries(const ExplainContext& ctx, Explanation& ex);

/// W_out's column k (FFN neuron k's value vector fc2_k) for every k: [d_mlp, d_model].
std::vector<float> ffn_value_vectors(const Model& model, int64_t layer);
/// W_O's column h*d_head+n for every attention neuron: [n_heads*d_head, d_model].
std::vector<float> attn_value_vectors(const Model& model, int64_t layer);

}  // namespace reslens::analysis
