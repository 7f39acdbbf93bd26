// One request for every front door. The CLI, the server and Python all explain and ablate through
// these: the position resolved (negative from the end), the target and foil named by id or by text
// and the likelier spelling chosen at the position (TokenResolver's rule, reslens/token_names.h),
// the model run with explain()'s hooks, and notes that say how a name was resolved. So a prompt,
// a position and " Paris" give the same numbers and the same notes wherever they are typed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "reslens/explain.h"
#include "reslens/model.h"
#include "reslens/run.h"

namespace reslens {

/// A token as a user names it: an id, or a text ("Paris", " Paris").
struct TeacherForcedPass;  // reslens/explain_target.h

struct TokenName {
  int32_t id = -1;   ///< >= 0: this token
  std::string text;  ///< otherwise: this text, resolved by TokenResolver's rule
  /// The command line's spelling: digits only (fewer than 10) are an id, anything else a text.
  static TokenName parse(const std::string& spec);
};

/// A position of an n-token prompt: 0..n-1, or negative from the end (-1: the last). Throws
/// OutOfRange "position 9 is out of range: the prompt has 5 tokens (0..4, or -1 for the last)".
int resolve_position(int position, size_t n_tokens);

/// The tokens a name may mean: the id (OutOfRange outside the vocabulary), or the one or two tokens
/// that read as the text (InvalidArgument for an empty text). A text of several tokens means its
/// first, and `note` says so.
struct TokenCandidates {
  std::vector<int32_t> ids;
  std::string note;  ///< "" or "the target ' Parisian' is not one token (it encodes as ...); explaining ..."
};
TokenCandidates token_candidates(const Model& model, const TokenName& name, const char* what);

/// The candidate the model finds likeliest in `logits` (the position's row; ties: the first), with
/// the candidates' note and, when there were several, one that says which was used.
int32_t pick_token(const Model& model, const TokenCandidates& candidates, std::span<const float> logits,
                   const char* what, std::vector<std::string>& notes);

/// Both steps: the token a name means at a position whose logits are `logits`.
int32_t resolve_token(const Model& model, const TokenName& name, std::span<const float> logits, const char* what,
                      std::vector<std::string>& notes);

/// What explaining a prompt adds to the model's weights, in bytes (docs/benchmarks.md, "Memory per
/// prompt"; bench/prompt_memory.py checks it against measured peak RSS up to 4096 tokens).
struct PromptMemory {
  int64_t captures = 0;        ///< explain_capture()'s hooks, with the explained positions' pattern rows
  int64_t forward = 0;         ///< the forward pass's buffers and each thread's [T, T] attention scores
  int64_t explain_arrays = 0;  ///< explain()'s per-source-position float64 arrays, per explained position
  int64_t total() const { return captures + forward + explain_arrays; }
};

/// The estimate for `n_tokens` tokens of which `n_explained` positions are explained (a target of m
/// tokens: m), with `n_threads` threads (0: default_threads()).
PromptMemory explain_prompt_memory(const ModelConfig& config, int64_t n_tokens, int64_t n_explained, int n_threads);

/// UnsupportedError with the estimate and its parts when it exceeds the memory available
/// (MemAvailable, or $RESLENS_MEMORY_AVAILABLE in bytes), before anything runs, instead of the
/// kernel's OOM killer ending the process. explain() and explain_target() call it.
void require_memory_for_prompt(const Model& model, int64_t n_tokens, int64_t n_explained, int n_threads);

/// What to explain.
struct ExplainRequest {
  std::vector<int32_t> tokens;  ///< the prompt's ids; empty: `prompt` encoded with the model's BOS setting
  std::string prompt;
  int position = -1;            ///< negative: from the end
  std::optional<TokenName> target;  ///< none: the model's top prediction
  std::optional<TokenName> foil;    ///< none: no contrast
  /// A target (foil) given as ids instead of a name, for explain_target()'s sequences; set this or
  /// `target` (`foil`), not both. explain() reads its first token as it reads a text's (with a note).
  std::vector<int32_t> target_tokens, foil_tokens;
  /// Everything else explain() takes (method, baselines, query_top_n, threads, ...); its position,
  /// target and foil are set from the fields above.
  ExplainOptions options;
  /// Keep every position's logits in the run (the server and Python show them); otherwise only what
  /// the explained position needs.
  bool all_logits = false;
  /// explain_target() / explain_generated(): called after each step of the target's pass is
  /// explained, with the steps done and the steps in all (the server shows it as the job's stage).
  std::function<void(int done, int total)> on_step;
  /// explain_target() / explain_generated(): called with each step of the target's pass as soon as
  /// it is explained, before the next starts: the pass (tokens and run, for the step's documents)
  /// and the step's index in pass.steps. `reslens explain --jsonl` prints each step's line from it
  /// and `reslens serve` streams it (target_step_line()).
  std::function<void(const TeacherForcedPass& pass, size_t step)> on_step_explained;
  /// Asked after each generated token and after each explained step (after on_step_explained and
  /// on_step) of explain_target() / explain_generated(), and within every explain (explain() of one
  /// position, and each step) after its forward pass and after each of its phases (points, bounds,
  /// tails, attention, FFN neurons, checks); when it answers true, nothing more is computed and
  /// Cancelled is thrown. `reslens serve` sets it when a client cancels the job; the steps already
  /// handed to on_step_explained are all the caller gets. May be called from the thread that runs
  /// the request only.
  std::function<bool()> should_stop;
  /// How far the request is within each explain (ExplainProgress: the forward pass, the model's
  /// bounds when they are built, each phase and its layers), and "tightening" for a multi-token
  /// target's sums; called on the thread that runs the request. `reslens explain` draws it on a
  /// terminal.
  ExplainProgressFn on_progress;
};

/// An explained prompt: everything a report needs.
struct ExplainedPrompt {
  std::vector<int32_t> tokens;
  std::shared_ptr<const RunResult> run;  ///< explain_capture()'s hooks; hook_pattern holds row `position` only
  ExplainOptions options;                ///< as used: the resolved position, target and foil
  Explanation explanation;
  std::vector<std::string> notes;        ///< how the target and foil names were resolved
};

/// Runs the prompt with explain_capture(), resolves the position and the names at its logits, and
/// explains it. A target or foil of several tokens explains its first (a note says so);
/// explain_target() (reslens/explain_target.h) explains all of them.
ExplainedPrompt explain(const Model& model, const ExplainRequest& request);

/// A request's prompt as ids: `tokens`, else `prompt` encoded with the model's BOS setting.
/// InvalidArgument when that leaves none.
std::vector<int32_t> prompt_tokens(const Model& model, const ExplainRequest& request);

/// The row of the explained position in a run's logits (a run keeps only the last row unless it
/// was asked for all).
std::span<const float> logits_at(const Model& model, const RunResult& run, int position, size_t n_tokens);

/// What to ablate (spec A7), measured on a target at a position.
struct AblationRequest {
  std::vector<int32_t> tokens;  ///< empty: `prompt` encoded with the model's BOS setting
  std::string prompt;
  int position = -1;
  std::optional<TokenName> target;  ///< none: the model's top prediction at the position
  Intervention zeroed;              ///< its `position` is set from `activation`
  bool activation = false;          ///< zero only at the position (activation level), not the parameters
  std::optional<uint64_t> random_seed;  ///< also zero a random set of the same size drawn with this seed
  int n_threads = 0;
};

struct RandomBaseline {
  uint64_t seed = 0;
  Intervention zeroed;  ///< what was drawn
  AblationResult result;
};

struct AblationReport {
  std::vector<int32_t> tokens;
  int position = 0;
  int32_t target = -1;
  bool activation = false;
  AblationResult result;
  std::optional<RandomBaseline> random;
  std::vector<std::string> notes;
};

AblationReport ablate(const Model& model, const AblationRequest& request);

/// The random baseline's components: as many FFN neurons, heads and attention neurons as `like`
/// has, each kind drawn uniformly over the model without repeats by splitmix64 from `seed` (the same
/// draws on every platform). Attention neurons are drawn without source positions.
Intervention random_intervention(const ModelConfig& config, const Intervention& like, uint64_t seed);

}  // namespace reslens
