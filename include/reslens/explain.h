// explain: the paper's residual-stream attribution (spec sections 2-4 and 6) over a finished run.
// Nothing here runs the model again, except ablate(), whose whole point is to re-run it.
//
// Conventions (spec §1, §2.2, §3.1): P is the explained position; bs(v) is the vocabulary projection
// of a residual vector with the final norm's scale frozen at the real final vector h_P^{L-1}
// (GPT-2: LayerNorm centering with v's own mean, no ln_f bias unless asked; Llama: RMSNorm); the
// importance of a vector v added to context x is log p(w|x+v) - log p(w|x) with p = softmax(bs(.)).
// All indices are 0-based. Arrays are row-major with the shape given in each comment.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "reslens/hooks.h"
#include "reslens/model.h"
#include "reslens/run.h"

namespace reslens {

/// A dense float64 array with a shape (scores are kept in double).
struct ScoreArray {
  std::vector<int64_t> shape;
  std::vector<double> values;

  ScoreArray() = default;
  explicit ScoreArray(std::vector<int64_t> s);
  double& at(std::initializer_list<int64_t> index);
  double at(std::initializer_list<int64_t> index) const;
  int64_t size() const { return static_cast<int64_t>(values.size()); }
};

/// How neuron, head and position scores are computed. Both are exact to 1e-5 of a float64
/// evaluation; they differ in cost (docs/explain.md).
enum class ScoreMethod {
  kAuto,     ///< kBounded for large vocabularies, kFull otherwise (and whenever baselines are asked)
  kFull,     ///< project every vector onto the whole vocabulary (the straightforward method)
  kBounded,  ///< certified bounds from a few dozen tokens; the whole vocabulary only when needed
};

struct ExplainOptions {
  int position = -1;        ///< query position P; -1 = the last token
  int32_t target = -1;      ///< target token w; -1 = the model's top prediction at P
  int32_t foil = -1;        ///< contrast token; -1 = none
  bool include_final_bias = false;  ///< GPT-2: add W_U ln_f.bias to every state's logits (spec A1)
  /// Reproduce the authors' notebook where it deviates from the paper (spec A3: Llama's Q1 key is the
  /// neuron's down_proj vector; A5: Q4's stale multiplier).
  bool compat_notebook = false;
  int query_top_n = 30;     ///< N of the query analyses Q1-Q3 (the notebooks use 30 and 100)
  int set_size = 300;       ///< size of the value/query neuron sets of Q5 (spec cells 10, 12, 17)
  bool baselines = false;   ///< also compute the alternative scores of spec §3.3 for every FFN neuron
  int lens_top_k = 10;      ///< tokens listed per logit-lens point
  ScoreMethod method = ScoreMethod::kAuto;
  /// kBounded: tokens of each state's distribution handled exactly; 0 = 16 when the projection cache
  /// is used (it certifies what the tail bound misses cheaply), else 64 (a tighter tail bound).
  int head_size = 0;
  double bound_tol = 8e-6;  ///< kBounded: largest accepted error of a bounded score (floats add < 1e-7)
  /// kBounded: use the model's precomputed projection cache (precompute_projections()) when it exists.
  bool projection_cache = true;
  /// kBounded without a projection cache: certify what the bounds leave from int8 sketches of the
  /// vectors' projections before projecting the rest exactly (docs/explain.md, "The sketched projection").
  bool projection_sketch = true;
  /// kBounded: the head size of the extended split (a larger head of each context's most likely
  /// tokens) that the vectors the first bound leaves are tried against before the sketch; 0 = none;
  /// -1 = auto: none for a model narrower than 2048 (d_model) whose sketch runs on AMX (there the
  /// sketch is cheaper than the split's float products), else 2048 (docs/explain.md, "The bounded
  /// method").
  /// Scores agree within bound_tol whatever it is; the same value gives the same bytes on every CPU.
  int extended_head = -1;
  int n_threads = 0;
};

/// The precision and speed knobs (method, bound_tol, projection_cache, projection_sketch, extended_head) are set
/// from the command line, the server's JSON and Python keywords; these are the one rule all three
/// check them by (docs/explain.md, "Precision and speed knobs").
/// "auto", "full" or "bounded": the name every front door spells `method` with.
const char* to_string(ScoreMethod method);
/// The method `name` spells; InvalidArgument "method must be 'auto', 'full' or 'bounded', not 'exact'".
ScoreMethod parse_score_method(std::string_view name);
/// InvalidArgument "bound_tol must be a positive finite number, not nan" unless `bound_tol` is one
/// (explain() takes any double, and nan, inf or <= 0 would make every bound fail or pass blindly).
void check_bound_tol(double bound_tol);
/// InvalidArgument "extended_head must be -1 (auto), 0 (none) or a number of tokens, not -2" unless
/// `extended_head` is one of those (up to 2^20 tokens).
void check_extended_head(int64_t extended_head);

/// One point of the logit lens / distribution change (spec §2.3): the residual stream at the
/// embedding ("emb"), after layer l's attention ("a{l}") and after its FFN ("f{l}").
struct LensPoint {
  std::string label;
  int64_t rank = 0;  ///< of the target, 1 = top
  double prob = 0;
  double log_prob = 0;
  std::vector<int32_t> top_ids;
  std::vector<double> top_probs;
};

/// Query-layer attribution (spec §4.3 Q1/Q2): slot 0 = embedding, 2j+1 = attention layer j,
/// 2j+2 = FFN layer j.
struct QueryLayers {
  std::string key;           ///< "up", "gate", "c_fc", "notebook" (Q1) or "v" (Q2)
  std::vector<double> slots;
};

/// The alternative scores of spec §3.3 in the paper's Table 2 order (spec A8 defines them): the keys
/// of Explanation::baselines, the `baseline_<name>.npy` files, the JSON's "baselines", Python's
/// `ex.baselines` and the experiments' `score:<name>` rows. (Until 0.2, "logprob_increase" and
/// "logprob" were the first two; docs/naming.md lists the old names kept as aliases.)
inline constexpr const char* kBaselineScores[] = {"log_prob_increase", "log_prob", "prob_increase", "norm",
                                                  "coef",              "rank",     "m_norm",        "m_rank"};

struct Explanation {
  int position = 0;
  int32_t target = -1;
  int32_t foil = -1;
  int64_t n_positions = 0;  ///< P + 1: positions 0..P can be sources

  // The real model output at P.
  double real_logit = 0, real_log_prob = 0, real_prob = 0;
  int64_t real_rank = 0;
  // The frozen final norm: GPT-2 sigma_f = std of h_P^{L-1} (+eps); Llama sqrt(mean square + eps).
  double frozen_scale = 0;
  double bs_log_prob_final = 0;      ///< log p(w | bs(h_P^{L-1}))
  double bs_log_prob_embedding = 0;  ///< log p(w | bs(h_P^{-1}))

  std::vector<LensPoint> lens;  ///< 2L + 1 points

  std::vector<double> attn_layer;  ///< [L] Imp(A^l | h^{l-1})
  std::vector<double> ffn_layer;   ///< [L] Imp(F^l | r^l)
  ScoreArray head;                 ///< [L, H]
  ScoreArray head_position;             ///< [L, H, P+1] one head's share from one source position
  ScoreArray attn_weight;          ///< [L, H, P+1] attention of position P to each source
  ScoreArray ffn_neuron;           ///< [L, N]
  ScoreArray ffn_coef;             ///< [L, N] coefficient m at P
  /// Mixture-of-experts models: [L, n_experts] each expert's output vector (its neurons' subvalues
  /// summed, router weight included) scored in the FFN's context; empty for dense models. FFN neuron
  /// k is expert k / d_expert's neuron k % d_expert.
  ScoreArray expert;
  ScoreArray attn_neuron;          ///< [L, H, d_head, P+1] (layer, head, dim, source position)
  ScoreArray attn_coef;            ///< [L, H, d_head, P+1] alpha_{P,p} v_{p,n}

  std::vector<QueryLayers> ffn_value_query_layers;     ///< per key variant
  QueryLayers attn_value_query_layers;
  double attn_value_query_avg_layer = 0;
  ScoreArray query_ffn_neuron;                   ///< [L, N] query FFN neurons of the top attention neurons
  std::vector<int64_t> query_only_per_layer;   ///< [L] counts
  std::vector<int64_t> query_value_per_layer;  ///< [L] counts

  /// The alternative scores of spec §3.3 (A8's definitions), each [L, N], named as kBaselineScores
  /// lists them. Empty unless asked.
  std::map<std::string, ScoreArray> baselines;

  /// With a foil: the same scores for log p(target) - log p(foil) (a logit difference).
  bool has_contrast = false;
  std::vector<double> contrast_attn_layer, contrast_ffn_layer;
  ScoreArray contrast_head, contrast_ffn_neuron, contrast_attn_neuron, contrast_expert;

  /// Identities measured on this explanation (see docs/explain.md): max |errors|.
  std::map<std::string, double> checks;

  /// How the scores were computed: "bounded" (certified from the head tokens), "cached" (certified
  /// from the projection cache) and "full" (over the whole vocabulary) counts of neuron, head and
  /// position scores.
  std::map<std::string, int64_t> method_counts;

  /// Wall time of explain()'s phases in milliseconds, in the order they ran: "points" (the
  /// residual points' projections and lens), then with the bounded method "bounds" and "tails"
  /// (the model bounds and the head/tail splits), "attention", "ffn", "checks", "queries". For
  /// benchmarks (`reslens bench --explain`); no output of the tool depends on it.
  std::vector<std::pair<std::string, double>> phase_ms;
};

/// How far an explain is, for a progress display (a 7B model's explain takes 20-60 s on two cores,
/// and its first one also builds the model's weight-only bounds, 4-14 minutes more).
/// Each phase reports done = 0 when it starts and done = 1..total as its units finish. The phases,
/// in the order they run (those of the bounded method only when it is used; "bounds" and "sketch"
/// only when the model's bounds or the sketch's Gram matrices are built, not read from the cache):
///   "generate"        explain --generate's answer, total = the most tokens asked for
///   "forward"         the run with the hooks explain needs (ExplainRequest only), total 1
///   "points"          the residual points' projections and the logit lens, total 1
///   "bounds"          the model's weight-only bounds, once per model, total = layers
///   "sketch"          the int8 sketch's Gram matrices, once per model, total = blocks of 4096 W_U rows
///   "tails"           the head/tail splits of every state, total 1
///   "attention"       heads, positions and attention neurons, total = layers (bounded method:
///                     layers + 1, the last unit what the layers' bounds left)
///   "attention_exact" what every bound left, projected onto the whole vocabulary, total = vectors
///   "ffn"             FFN neurons, as "attention"
///   "ffn_exact"       as "attention_exact", for FFN neurons
///   "checks"          the decomposition identities, total 1
///   "queries"         the query-neuron analyses, total 1
///   "tightening"      a multi-token target's sums, after its steps, total 1
/// A multi-token target repeats "points" to "queries" for each step.
struct ExplainProgress {
  std::string_view phase;
  int64_t done = 0;
  int64_t total = 0;
};
/// Called on the thread that runs the explain, between units of work (never from a worker thread).
using ExplainProgressFn = std::function<void(const ExplainProgress&)>;

/// The hooks explain() needs in the RunResult's cache.
HookFilter explain_capture();

/// Every score of the paper for one position. `run` must hold the hooks of explain_capture() and
/// logits at every position (RunOptions::all_logits), or only the last position's when that is the
/// one explained. Throws OutOfRange for a bad position or token, InvalidArgument when hooks or
/// logits are missing or activations are not finite.
Explanation explain(const Model& model, const RunResult& run, std::span<const int32_t> tokens,
                    const ExplainOptions& options = {});
/// The same, asking `should_stop` after each phase but the last (points, bounds, tails, attention,
/// FFN neurons, checks: seconds each on a 7B model) and throwing Cancelled when it answers true;
/// `reslens serve` passes a cancelled job's flag (ExplainRequest::should_stop does the same for
/// the request-level explain()). `on_progress`, when set, hears how far it is (ExplainProgress).
Explanation explain(const Model& model, const RunResult& run, std::span<const int32_t> tokens,
                    const ExplainOptions& options, const std::function<bool()>& should_stop,
                    const ExplainProgressFn& on_progress = {});

/// The projection cache: every FFN and attention neuron direction projected onto the vocabulary once,
/// stored quantized with certified error bounds (FFN rows as int8 codes, attention rows as int16, a
/// head's rows contiguous; src/analysis/projection_cache.h) under $RESLENS_CACHE_DIR (else
/// $XDG_CACHE_HOME/reslens, else ~/.cache/reslens) in a file named by the weights' fingerprint:
/// n_layers * (d_mlp + 2 * n_heads * d_head) * d_vocab bytes plus a small header. With it, the bounded
/// method scores the vectors its cheap bounds cannot certify from the cached rows instead of
/// projecting them (docs/explain.md). Scores are the same within 1e-5 with or without it.
struct ProjectionCacheInfo {
  std::filesystem::path path;  ///< where the model's cache is or would be (empty: no cache dir)
  bool present = false;        ///< a valid cache for these weights exists
  int64_t bytes = 0;           ///< its size (the size it would have when absent)
};
ProjectionCacheInfo projection_cache_info(const Model& model);

/// Builds the model's projection cache (atomically replacing any previous one); `progress` gets
/// (directions done, directions in all). Throws IoError naming the path when it cannot be written.
ProjectionCacheInfo precompute_projections(const Model& model, int n_threads = 0,
                                           const std::function<void(int64_t, int64_t)>& progress = {});

/// Top-k / bottom-k token ids of bs(v) for a vector v (no softmax: the vocabulary projection).
struct TokenList {
  std::vector<int32_t> top, bottom;
  std::vector<double> top_values, bottom_values;
};
TokenList project_tokens(const Model& model, const RunResult& run, const ExplainOptions& options,
                         std::span<const float> v, int k);

/// Cell 7 of the notebooks for one head: per source position p, the three token views.
struct PositionView {
  int64_t position = 0;
  double imp = 0, attn = 0;
  std::vector<int32_t> layer_input_top;  ///< top of bs(h_p^{l-1})
  std::vector<int32_t> key_top;          ///< top of bs(sum of earlier attention outputs at p)
  std::vector<int32_t> value_top;        ///< top of bs(alpha_{P,p} v_p W_O^h)
};
std::vector<PositionView> head_position_views(const Model& model, const RunResult& run,
                                              const Explanation& ex, const ExplainOptions& options,
                                              int layer, int head, int k);

/// What a neuron writes, projected to the vocabulary: raw value vector and signed (times its
/// coefficient at P). FFN neuron: fc2_k; attention neuron: W_O column h*d_head+n.
struct NeuronView {
  TokenList raw;
  TokenList signed_;  ///< the projection of the actual subvalue (spec A14)
  double coef = 0;
};
NeuronView ffn_neuron_view(const Model& model, const RunResult& run, const Explanation& ex,
                           const ExplainOptions& options, int layer, int neuron, int k);
NeuronView attn_neuron_view(const Model& model, const RunResult& run, const Explanation& ex,
                            const ExplainOptions& options, int layer, int head, int dim, int pos, int k);
/// The same for several neurons, {layer, neuron} / {layer, head, dim, pos} each, in one projection
/// (a report's views cost one pass over W_U, not one per neuron).
std::vector<NeuronView> ffn_neuron_views(const Model& model, const RunResult& run, const Explanation& ex,
                                         const ExplainOptions& options, const std::vector<std::array<int, 2>>& neurons,
                                         int k);
std::vector<NeuronView> attn_neuron_views(const Model& model, const RunResult& run, const Explanation& ex,
                                          const ExplainOptions& options, const std::vector<std::array<int, 4>>& neurons,
                                          int k);

/// Q3/Q4: query FFN neurons [L, N] of one attention neuron (layer, head, dim, source position),
/// multiplied by `multiplier` (its own Imp by default; spec A5's stale value in compat mode).
ScoreArray query_ffn_neurons(const Model& model, const RunResult& run, int layer, int head, int dim,
                             int pos, double multiplier);

/// Cell 19: an FFN neuron's value vector passed through head (layer, head)'s norm, V and O, then
/// projected to the vocabulary.
TokenList hidden_view(const Model& model, const RunResult& run, const ExplainOptions& options,
                      int ffn_layer, int neuron, int attn_layer, int head, int k);

/// Interventions (spec A7): run the tokens with `zeroed` removed and report the target's
/// probability, log-probability, rank and reciprocal rank before and after.
struct TargetStats {
  double prob = 0, log_prob = 0, rr = 0;
  int64_t rank = 0;
  int32_t top1 = -1;
};
struct AblationResult {
  TargetStats before, after;
};
AblationResult ablate(const Model& model, std::span<const int32_t> tokens, int32_t target,
                      const Intervention& zeroed, int position = -1, int n_threads = 0);

/// The target's stats in a row of logits.
TargetStats target_stats(std::span<const float> logits, int32_t target);

}  // namespace reslens
