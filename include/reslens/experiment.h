// experiment: the paper's dataset-level evaluation (spec §5.2, §3.3, A7, A8) on any model.
//
// A dataset is JSONL, one sentence a line: {"prompt", "target", "type", optional "competitors"}.
// Each sentence is kept when its target is in the model's top-k at the last position and above
// every same-type competitor (the line's own list, else every other target of that type in the
// dataset). For a kept sentence: every attribution score (explain()), parameter-level
// interventions on the top neurons and on random neurons of the same size, and the eight FFN
// scores of spec §3.3 compared by zeroing each one's top neurons. Summaries per knowledge type:
// MRR, probability and log-probability before and after, layer and head importance, and how many
// top neurons a type's sentences share.
//
// Each sentence is a pure function of (model, sentence, options): the runner evaluates sentences in
// parallel, each with single-threaded model calls, and random neurons are drawn from a seed and the
// sentence's index with a portable generator, so results do not depend on the thread count, the
// shard, or the machine. The library never prints: progress and results arrive through callbacks.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "reslens/explain.h"
#include "reslens/model.h"

namespace reslens {

// ---------------------------------------------------------------------------------------------
// Dataset

/// The summaries' aggregate row over every type; no dataset type may have this name.
inline constexpr std::string_view kAllTypes = "all";

struct ExperimentSentence {
  int64_t index = 0;  ///< 0-based among the dataset's valid lines; shards and random draws follow it
  int64_t line = 0;   ///< 1-based line in the file (0: not read from a file)
  std::string prompt, target, type;
  /// Same-type competitors: the line's own list, or (competitors_given false) every other target of
  /// the same type in the dataset, filled in by parse_dataset().
  std::vector<std::string> competitors;
  bool competitors_given = false;
};

struct DatasetProblem {
  int64_t line = 0;  ///< 1-based
  std::string message;
};

struct Dataset {
  std::string name;                         ///< path or label, for messages
  std::vector<ExperimentSentence> sentences;
  std::vector<DatasetProblem> skipped;      ///< malformed lines (reported, not evaluated)
  int64_t n_lines = 0;
  uint64_t fingerprint = 0;                 ///< FNV-1a 64 of the bytes: shards and resumes check it
};

/// Parses JSONL. A malformed line (not a JSON object, a missing or empty prompt/target/type, a
/// competitors value that is not a list of strings) is skipped and listed in `skipped`, or, with
/// `strict`, throws FormatError naming the line. Blank lines are ignored. Extra keys are allowed.
/// Throws FormatError when no sentence is left ("empty dataset"), and, strict or not, for a sentence
/// whose type is kAllTypes ("all", reserved for the summaries' aggregate row), naming the file, the
/// line and the type.
Dataset parse_dataset(std::string_view text, const std::string& name, bool strict = false);
/// parse_dataset() of a file (IoError when it cannot be read).
Dataset read_dataset(const std::filesystem::path& path, bool strict = false);

/// A share of a dataset for one machine: sentences whose index % count == index - 1.
struct Shard {
  int index = 1;  ///< 1-based
  int count = 1;
  bool contains(int64_t sentence_index) const { return sentence_index % count == index - 1; }
  std::string str() const { return std::to_string(index) + "/" + std::to_string(count); }
};
/// "i/n" with 1 <= i <= n; InvalidArgument otherwise ("3/2", "0/4", "a/b").
Shard parse_shard(std::string_view spec);

// ---------------------------------------------------------------------------------------------
// Options and the scaled neuron counts

struct ExperimentOptions {
  int filter_top_k = 10;   ///< keep a sentence when the target ranks in the top k
  // The paper's counts (spec §5.2, A6), before scaling to the model (see experiment_counts()).
  int ffn_top = 10;        ///< top FFN value neurons (Table 2), also each §3.3 score's top neurons
  int attn_top = 200;      ///< with attn_ffn_top: attention + FFN value neurons zeroed together
  int attn_ffn_top = 100;
  int query_top = 1000;    ///< top query FFN neurons (Q3 scores)
  int shared_set = 300;    ///< per-sentence top value / query neurons for the shared-neuron rate
  /// Scaling for small models: each count is capped at this fraction of the neurons of its kind
  /// (FFN neurons L*N, attention neurons L*H*d_head), and is at least 1.
  double max_fraction = 0.05;
  int query_value_neurons = 30;  ///< attention value neurons the Q3 scores start from (README: 30)
  bool baselines = true;   ///< compare the eight scores of spec §3.3
  bool random = true;      ///< random interventions of the same sizes
  uint64_t seed = 0;
  std::optional<bool> add_bos;  ///< nullopt: the model's own setting
  bool parse_special = true;    ///< special tokens written in a prompt are those tokens (Tokenizer::encode)
  int n_threads = 0;       ///< sentences evaluated at once (0: every hardware thread)
  bool strict = false;     ///< malformed dataset lines are fatal (experiment() over a path)
  Shard shard;             ///< experiment(): only this share of the dataset
};

struct ExperimentCounts {
  int64_t ffn_neurons = 0;   ///< L * d_mlp
  int64_t attn_neurons = 0;  ///< L * n_heads * d_head (parameter-level: W_O columns)
  int ffn_top = 0, attn_top = 0, attn_ffn_top = 0, query_top = 0, shared_set = 0;
  double max_fraction = 0;
  std::string rule;  ///< the scaling rule and its result, in words (every output states it)
};
ExperimentCounts experiment_counts(const ModelConfig& config, const ExperimentOptions& options);

/// What a set of results was computed from: everything that must match for two runs (shards, or a
/// run and its resumption) to be combined. The thread count is deliberately not part of it.
struct ExperimentInfo {
  std::string model;        ///< path as given (display only)
  std::string model_id;     ///< architecture and dimensions, compared when combining runs
  int64_t n_layers = 0, n_heads = 0, d_head = 0, d_mlp = 0, d_vocab = 0;
  std::string dataset;      ///< path or label (display only)
  uint64_t dataset_fingerprint = 0;
  int64_t dataset_sentences = 0;
  int64_t dataset_skipped_lines = 0;
  ExperimentOptions options;  ///< n_threads and shard are not compared
  ExperimentCounts counts;
};
ExperimentInfo experiment_info(const Model& model, const Dataset& dataset, const ExperimentOptions& options);
std::string experiment_info_json(const ExperimentInfo& info);
ExperimentInfo parse_experiment_info(std::string_view json);
/// Empty when `a` and `b` can be combined, else what differs ("dataset fingerprint", "seed", ...).
std::string experiment_info_mismatch(const ExperimentInfo& a, const ExperimentInfo& b);

// ---------------------------------------------------------------------------------------------
// One sentence

struct InterventionOutcome {
  std::string name;         ///< "ffn_top", "ffn_random", "attn_ffn_top", ..., "score:<baseline>"
  int64_t n_ffn = 0, n_attn = 0;  ///< neurons zeroed (parameter level)
  TargetStats after;
  /// Which: FFN neurons as l * d_mlp + k, attention neurons (W_O columns) as (l * H + h) * d_head + n,
  /// so any result can be checked with `reslens ablate` or the float64 reference.
  std::vector<int64_t> ffn, attn;
};

enum class SentenceStatus { kKept, kNotInTopK, kBelowCompetitor, kError };
const char* to_string(SentenceStatus s);

struct SentenceResult {
  int64_t index = 0, line = 0;
  std::string type, prompt, target;
  SentenceStatus status = SentenceStatus::kError;
  std::string detail;            ///< why it was dropped (the competitor that beat it, the error)
  int32_t target_id = -1;
  std::string target_token;      ///< the token's text
  int64_t target_n_tokens = 0;   ///< >1: the target text is several tokens and the first is used
  int64_t n_prompt_tokens = 0;
  int64_t n_competitors = 0;     ///< competitor tokens compared (the target's own token excluded)
  TargetStats before;
  // Kept sentences only:
  std::vector<InterventionOutcome> interventions;
  std::vector<double> attn_layer, ffn_layer;  ///< [L]
  std::vector<double> head;                   ///< [L * H]
  double attn_neuron_sum = 0, attn_neuron_pos_sum = 0;  ///< all / positive attention-neuron Imp
  double ffn_neuron_sum = 0, ffn_neuron_pos_sum = 0;
  std::vector<int64_t> value_set;  ///< top shared_set FFN value neurons, flat l * d_mlp + k
  std::vector<int64_t> query_set;  ///< top shared_set query FFN neurons (Q3 > 0)
};

/// Evaluates one sentence (its competitors already filled in). Model calls are single-threaded.
/// Problems of the sentence itself (a prompt longer than the context) give status kError.
SentenceResult evaluate_sentence(const Model& model, const ExperimentSentence& sentence,
                                 const ExperimentOptions& options);

/// One line of JSON (no newline) and back; the round trip is exact.
std::string sentence_result_json(const SentenceResult& r);
SentenceResult parse_sentence_result(std::string_view json);

// ---------------------------------------------------------------------------------------------
// Many sentences

struct ExperimentProgress {
  int64_t done = 0, total = 0, kept = 0;
  double elapsed_s = 0;
};
using ExperimentProgressFn = std::function<void(const ExperimentProgress&)>;
using SentenceResultFn = std::function<void(const SentenceResult&)>;

/// Evaluates `sentences` on options.n_threads workers. `on_result` (e.g. append to a file) and
/// `on_progress` are called once per sentence, one call at a time, in completion order. Returns the
/// results sorted by index. An error that is not the sentence's own (out of memory, a bug, an
/// exception from a callback) stops the workers and is rethrown; results already passed to
/// `on_result` stay valid.
std::vector<SentenceResult> run_experiment(const Model& model, std::span<const ExperimentSentence> sentences,
                                           const ExperimentOptions& options, const SentenceResultFn& on_result = {},
                                           const ExperimentProgressFn& on_progress = {});

struct MetricMeans {
  double mrr = 0, prob = 0, log_prob = 0;
};

struct InterventionRow {
  std::string name, label;
  double mean_ffn = 0, mean_attn = 0;  ///< neurons zeroed per sentence (on average)
  MetricMeans after;
  /// (before - after) / |before| * 100 of the means: positive = the intervention lowered it.
  double mrr_decrease = 0, prob_decrease = 0, logprob_decrease = 0;
};

struct RankedItem {
  std::string label;
  double score = 0;
};

struct TypeSummary {
  std::string type;  ///< a knowledge type, or "all"
  int64_t n_sentences = 0, n_kept = 0, n_not_in_top_k = 0, n_below_competitor = 0, n_error = 0;
  int64_t n_multi_token_targets = 0;
  MetricMeans before;  ///< kept sentences, no intervention
  std::vector<InterventionRow> interventions;
  // Importance (Table 3, Fig 4-5), means over kept sentences.
  std::vector<double> attn_layer, ffn_layer;  ///< [L]
  double attn_layer_sum = 0, ffn_layer_sum = 0;
  double attn_neuron_sum = 0, attn_neuron_pos_sum = 0, ffn_neuron_sum = 0, ffn_neuron_pos_sum = 0;
  std::vector<double> head;  ///< [L * H]
  std::vector<RankedItem> top_layers, top_heads;  ///< 10 each
  /// Share of a sentence's top value / query neurons that more than half of its type's sentences
  /// also have in theirs (mean over sentences; "all" weighs each sentence against its own type).
  double value_shared_rate = 0, query_shared_rate = 0;
};

struct ExperimentSummary {
  ExperimentInfo info;
  std::vector<TypeSummary> types;  ///< "all" first, then the types in name order
};

/// Aggregates results (any order; each index once). Deterministic: the same results give the same
/// bytes from every writer.
ExperimentSummary summarize(const ExperimentInfo& info, std::vector<SentenceResult> results);
std::string summary_json(const ExperimentSummary& s);
std::string summary_csv(const ExperimentSummary& s);       ///< tidy: table,type,row,column,value
std::string summary_markdown(const ExperimentSummary& s);

/// Everything in one call (what the CLI does, without files): read, shard, run, summarize.
struct ExperimentResult {
  ExperimentInfo info;
  std::vector<DatasetProblem> skipped;
  std::vector<SentenceResult> sentences;
  ExperimentSummary summary;
  std::string json() const { return summary_json(summary); }
};
ExperimentResult experiment(const Model& model, const Dataset& dataset, const ExperimentOptions& options = {},
                            const ExperimentProgressFn& on_progress = {});
ExperimentResult experiment(const Model& model, const std::filesystem::path& dataset,
                            const ExperimentOptions& options = {}, const ExperimentProgressFn& on_progress = {});

}  // namespace reslens
