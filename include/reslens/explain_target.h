// Multi-token targets (issue 19; docs/explain.md, "Targets of several tokens"). A target w_1..w_m
// is scored by teacher forcing, log p(target) = sum_t log p(w_t | prompt, w_<t): one forward pass
// over the prompt and w_1..w_{m-1} holds every step's position, and step t is explain() at position
// P + t for w_{t+1} (0-based t), with that position's own frozen final norm and contexts; it is
// exactly the single-position explanation of the prompt and w_<=t at its last position, with the
// request's options (the default bound_tol included). TargetSums adds the steps' scores: a neuron
// or head is one parameter at every step, so its summed score is its part in the whole target's
// log-probability. Under the bounded method a sum's certified error is the sum of its steps'
// certified widths; where that exceeds bound_tol the widest steps' scores are recomputed from the
// whole vocabulary for the sum only (the sums' error budget, docs/explain.md), so every summed score
// is within bound_tol as one score is, while the steps keep their single-explain values.
//
// A foil of several tokens is teacher-forced through its own pass (its steps after the two
// sequences part read different contexts); the summed contrast is the contrast of the sequences'
// log-probabilities, log p(target) - log p(foil) (docs/explain.md gives the step-by-step terms).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "reslens/explain.h"
#include "reslens/explain_request.h"
#include "reslens/generate.h"

namespace reslens {

/// One teacher-forced step: a token explained at its position of a pass.
struct TargetStep {
  int32_t token = -1;        ///< the token this step predicts (w_{t+1} of the target, or of the foil)
  int position = 0;          ///< P + t in the pass's tokens
  ExplainOptions options;    ///< as explain() used them (the request's, with this position, target, foil)
  Explanation explanation;   ///< explain(model, pass.run, pass.tokens, options)
};

/// One forward pass over the prompt and a sequence's tokens but its last, with its steps.
struct TeacherForcedPass {
  std::vector<int32_t> tokens;           ///< [P + 1 + m - 1] the prompt, then w_1..w_{m-1}
  std::shared_ptr<const RunResult> run;  ///< explain_capture()'s hooks, logits at every position; pattern rows of the steps only
  std::vector<TargetStep> steps;
};

/// The scores of a target summed over its steps (docs/explain.md). Arrays with a source-position
/// axis span the last step's positions, n = P + m; a step's array adds into its first P + t + 1
/// entries (a later position is no source of an earlier step: its share there is 0).
struct TargetSums {
  int n_steps = 0;
  int64_t n_positions = 0;     ///< n = P + m, the last step's position + 1
  double log_prob = 0;         ///< sum_t log p(w_t | prompt, w_<t) under the real model
  double bs_log_prob_final = 0;      ///< sum_t of the steps' log p(w | bs(h^{L-1}))
  double bs_log_prob_embedding = 0;  ///< sum_t of the steps' log p(w | bs(h^{-1}))

  std::vector<double> attn_layer;  ///< [L]
  std::vector<double> ffn_layer;   ///< [L]
  ScoreArray head;                 ///< [L, H]
  ScoreArray head_position;        ///< [L, H, n]
  ScoreArray ffn_neuron;           ///< [L, N]
  ScoreArray expert;               ///< [L, n_experts (+1 shared)]; empty for dense models
  ScoreArray attn_neuron;          ///< [L, H, d_head, n]
  /// Queries: each step's Q1 and Q2 slots and Q3 scores summed; Q5's counts from the summed
  /// rankings (the top set_size of the summed FFN neuron and Q3 scores), as a step counts its own.
  std::vector<QueryLayers> ffn_value_query_layers;  ///< per key variant, [2L+1] slots
  QueryLayers attn_value_query_layers;              ///< [2L+1] slots
  ScoreArray query_ffn_neuron;                      ///< [L, N]
  std::vector<int64_t> query_only_per_layer;        ///< [L]
  std::vector<int64_t> query_value_per_layer;       ///< [L]

  /// With a foil: the same scores for log p(target) - log p(foil) of the two sequences.
  bool has_contrast = false;
  double foil_log_prob = 0;        ///< sum_t log p(f_t | prompt, f_<t)
  std::vector<double> contrast_attn_layer, contrast_ffn_layer;  ///< [L] each
  ScoreArray contrast_head;        ///< [L, H]
  ScoreArray contrast_ffn_neuron;  ///< [L, N]
  ScoreArray contrast_attn_neuron; ///< [L, H, d_head, n_c], n_c = P + max(m, k)
  ScoreArray contrast_expert;      ///< [L, E]; empty for dense models

  /// Identities measured (max |error|): "telescoping" (the summed layer scores against the summed
  /// bs log-probability increases), "steps_telescoping" and every other key of the steps' own checks
  /// as "steps_<key>" (the largest over the steps).
  std::map<std::string, double> checks;
  /// The error budget (docs/explain.md): how many step scores were recomputed over the whole
  /// vocabulary for the sums, per level ("ffn_tightened", "attention_tightened", "head_tightened",
  /// "head_position_tightened"), and how many summed scores needed it ("ffn_sums_tightened", ...).
  /// Empty for one step, and without bounded scores.
  std::map<std::string, int64_t> method_counts;
};

/// How an explained answer was generated (explain_generated()).
struct GeneratedAnswer {
  GenerateOptions options;  ///< as asked: max_tokens, temperature, seed
  GenerationStop stop = GenerationStop::kMaxTokens;
  int32_t stop_token = -1;  ///< the end-of-generation token the model chose, or -1
};

/// A target (and foil) of one or more tokens, explained step by step and summed.
struct ExplainedTarget {
  std::vector<int32_t> prompt;  ///< the prompt's ids, cut after the explained position P
  int position = 0;             ///< P: the first step's position
  std::vector<int32_t> target;  ///< [m] w_1..w_m
  std::vector<int32_t> foil;    ///< [k] f_1..f_k; empty without a foil
  TeacherForcedPass target_pass;  ///< m steps
  /// The foil's own steps once it parts from the target (steps >= `first_foil_step` of the foil),
  /// in a second pass; empty when the foil has none (it is no longer than where they part).
  TeacherForcedPass foil_pass;
  /// The step at which target and foil first differ, read in the same context (their common prefix
  /// length); its explanation carries the one-position contrast. -1: they never differ inside both
  /// sequences (one is a prefix of the other) or there is no foil.
  int contrast_step = -1;
  int first_foil_step = 0;  ///< index into the foil of foil_pass.steps[0]
  TargetSums summed;
  std::vector<std::string> notes;  ///< how the names were read
  /// Set by explain_generated(): the target is the model's own answer, generated from the prompt.
  std::optional<GeneratedAnswer> generated;
  /// True when target and foil are one token each: the result is then exactly explain(model,
  /// request)'s, and the reports print the single-position document.
  bool single() const { return target.size() == 1 && foil.size() <= 1; }
};

/// The tokens a target or foil name stands for, for explain_target(): an id, or a one-token text
/// (with its candidate spellings, picked at the first step as explain() picks), or every token of
/// a longer text (TokenResolver's sequence; `note` says how it was split).
struct TokenSequenceCandidates {
  std::vector<int32_t> first;  ///< candidates for the first token (one, or two spellings)
  std::vector<int32_t> rest;   ///< the tokens after the first
  std::string note;
};
TokenSequenceCandidates token_sequence(const Model& model, const TokenName& name, const char* what);

/// A given answer's tokens (`reslens explain --continuation TEXT`, issue 19): `joint` is the prompt's
/// text and `text` encoded together, as the model would read them; its first tokens must be
/// `prompt`'s (the answer starts at a token boundary) and the tokens after them must decode back to
/// exactly `text` (nothing normalised, dropped or replaced by an unknown token). Returns those tokens,
/// the target to teacher-force. InvalidArgument, naming the first token that differs or the text the
/// tokens decode to, when either fails or `text` is empty.
std::vector<int32_t> continuation_tokens(const Model& model, std::span<const int32_t> prompt,
                                         std::span<const int32_t> joint, const std::string& text);

/// Runs the prompt and the target by teacher forcing and explains every step; with a foil, also
/// the foil's own steps, then sums both (TargetSums). The request's `target`/`foil` name the
/// sequences (a text is all its tokens), or `target_tokens`/`foil_tokens` give ids. A target of
/// several tokens continues the prompt: the explained position must be the last (InvalidArgument
/// otherwise), and the prompt and every token but the last must fit the context (InvalidArgument
/// naming the counts). A target and foil of one token each give explain(model, request)'s numbers
/// and notes, bit for bit.
ExplainedTarget explain_target(const Model& model, const ExplainRequest& request);

/// The model's own answer explained (`reslens explain --generate N`, issue 19): generate() continues
/// the prompt (greedy, or sampled as `options` say; `options.n_threads` is taken from the request)
/// until the end of its turn or N tokens, then the answer is explain_target()'s target, so every
/// generated token is explained at its position by the one teacher-forced pass, and the steps are
/// summed. The answer's tokens are exactly generate()'s (and `reslens generate`'s) for the same
/// prompt and options; the end-of-generation token is not part of it. InvalidArgument (one line)
/// when the request names a target or foil, explains a position other than the last, N < 1, the
/// prompt and N - 1 tokens would not fit the context window, or the model ends its turn at once.
ExplainedTarget explain_generated(const Model& model, const ExplainRequest& request, const GenerateOptions& options);

}  // namespace reslens
