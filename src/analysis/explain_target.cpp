// explain_target(): a target (and foil) of several tokens by teacher forcing (reslens/explain_target.h).
// The names become token sequences before any run; one pass over the prompt and the target's
// tokens but its last holds every step's position, and each step is explain() there; a foil that
// parts from the target gets a pass of its own for its later steps; then target_sums.cpp adds them.
#include "reslens/explain_target.h"

#include <algorithm>

#include "analysis/explain_internal.h"
#include "analysis/target_sums.h"
#include "analysis/target_tightening.h"
#include "core/memory.h"
#include "reslens/error.h"
#include "reslens/token_names.h"

namespace reslens {

TokenSequenceCandidates token_sequence(const Model& model, const TokenName& name, const char* what) {
  if (name.id >= 0 || name.text.empty()) return {token_candidates(model, name, what).ids, {}, ""};
  const Tokenizer& tok = model.tokenizer();
  const TokenResolver::Resolved r = TokenResolver(tok).resolve(name.text);
  if (r.tokens.size() <= 1) return {r.candidates, {}, ""};
  TokenSequenceCandidates s{{r.tokens.front()}, {r.tokens.begin() + 1, r.tokens.end()}, ""};
  s.note = std::string("the ") + what + " '" + name.text + "' is " + std::to_string(r.tokens.size()) + " tokens:";
  // A long target (a whole reply) is listed by its first tokens only: the note stays one readable line.
  constexpr size_t kListed = 16;
  for (size_t i = 0; i < r.tokens.size() && i < kListed; ++i) s.note += " '" + tok.token_text(r.tokens[i]) + "'";
  if (r.tokens.size() > kListed) s.note += " ...";
  s.note += "; each is explained after the ones before it (teacher forcing) and the scores summed";
  return s;
}

std::vector<int32_t> continuation_tokens(const Model& model, std::span<const int32_t> prompt,
                                         std::span<const int32_t> joint, const std::string& text) {
  if (text.empty()) throw InvalidArgument("the continuation is empty: give the answer's text");
  const Tokenizer& tok = model.tokenizer();
  // The prompt's tokens must come first, unchanged: a token merged across the boundary would make
  // the model read another prompt than the one explained.
  size_t i = 0;
  while (i < prompt.size() && i < joint.size() && prompt[i] == joint[i]) ++i;
  if (i < prompt.size()) {
    const std::string got = i < joint.size() ? "'" + tok.token_text(joint[i]) + "'" : "nothing";
    throw InvalidArgument("the continuation '" + text + "' does not start at a token boundary: the prompt's token " +
                          std::to_string(i) + " '" + tok.token_text(prompt[i]) + "' reads as " + got +
                          " with the continuation after it; end the prompt where a token ends, or give the answer's "
                          "token ids with --target");
  }
  std::vector<int32_t> answer(joint.begin() + static_cast<std::ptrdiff_t>(prompt.size()), joint.end());
  if (answer.empty()) throw InvalidArgument("the continuation '" + text + "' adds no tokens to the prompt");
  // Round trip: the answer's tokens must spell the text given, so that what is explained is that text.
  const std::string whole = tok.decode(joint), head = tok.decode(prompt);
  if (whole.size() < head.size() || whole.compare(0, head.size(), head) != 0 || whole.substr(head.size()) != text) {
    const std::string spelled = whole.compare(0, head.size(), head) == 0 ? whole.substr(head.size()) : tok.decode(answer);
    throw InvalidArgument("the continuation '" + text + "' does not survive tokenization: its " +
                          (answer.size() == 1 ? std::string("1 token decodes") : std::to_string(answer.size()) + " tokens decode") +
                          " to '" + spelled + "'");
  }
  return answer;
}

namespace {

// The request's target or foil as a sequence: a name, or ids (each checked against the vocabulary).
std::optional<TokenSequenceCandidates> sequence_of(const Model& model, const std::optional<TokenName>& name,
                                                   const std::vector<int32_t>& ids, const char* what) {
  if (name && !ids.empty()) {
    throw InvalidArgument(std::string("the ") + what + " is given both as a name and as token ids: give one");
  }
  if (name) return token_sequence(model, *name, what);
  if (ids.empty()) return std::nullopt;
  for (const int32_t id : ids) token_candidates(model, TokenName{id, ""}, what);  // OutOfRange outside the vocabulary
  return TokenSequenceCandidates{{ids.front()}, {ids.begin() + 1, ids.end()}, ""};
}

// A and B of one token each: explain()'s own result, so the numbers and notes are today's.
ExplainedTarget single_token(const Model& model, const ExplainRequest& request) {
  ExplainedPrompt one = explain(model, request);
  ExplainedTarget out;
  out.position = one.options.position;
  out.prompt.assign(one.tokens.begin(), one.tokens.begin() + out.position + 1);
  out.target = {one.options.target >= 0 ? one.options.target : one.explanation.target};
  if (one.options.foil >= 0) {
    out.foil = {one.options.foil};
    out.contrast_step = 0;
  }
  out.first_foil_step = 1;
  TargetStep step;
  step.token = one.explanation.target;
  step.position = out.position;
  step.options = one.options;
  step.explanation = std::move(one.explanation);
  out.target_pass.tokens = std::move(one.tokens);
  out.target_pass.run = std::move(one.run);
  out.target_pass.steps.push_back(std::move(step));
  if (request.on_step_explained) request.on_step_explained(out.target_pass, 0);
  out.notes = std::move(one.notes);
  // log p(foil) at P, for the sums (the single explanation reports only the target's).
  const double foil_log_prob =
      out.foil.empty() ? 0.0
                       : target_stats(logits_at(model, *out.target_pass.run, out.position, out.target_pass.tokens.size()),
                                      out.foil.front()).log_prob;
  out.summed = analysis::sum_target_steps(out, request.options.set_size, foil_log_prob);
  if (request.on_step) request.on_step(1, 1);
  return out;
}

// The prompt, then `sequence` but its last token: the tokens whose positions predict every token of
// `sequence` (position P + t predicts sequence[t]).
std::vector<int32_t> teacher_forced_tokens(const std::vector<int32_t>& prompt, const std::vector<int32_t>& sequence) {
  std::vector<int32_t> t = prompt;
  t.insert(t.end(), sequence.begin(), sequence.end() - 1);
  return t;
}

// The steps are explained at positions P.. (the last token of `tokens` and the P - 1 before it), so
// only their attention rows are kept.
std::shared_ptr<const RunResult> run_pass(const Model& model, const std::vector<int32_t>& tokens, int P,
                                          const ExplainRequest& request) {
  const auto T = static_cast<int64_t>(tokens.size());
  require_memory_for_prompt(model, T, T - P, request.options.n_threads);
  RunOptions ro;
  ro.capture = explain_capture();
  for (int64_t q = P; q < T; ++q) ro.pattern_rows.push_back(q);
  ro.all_logits = true;  // every step reads its own position's logits
  ro.n_threads = request.options.n_threads;
  analysis::report_progress(&request.on_progress, "forward", 0, 1);
  auto result = std::make_shared<const RunResult>(run(model, tokens, ro));
  analysis::report_progress(&request.on_progress, "forward", 1, 1);
  return result;
}

// The steps' shared exact projections (analysis/shared_projections.h) may take half of the memory
// the system can give beyond 2 GB (1 GB when it does not say); past that, steps project again.
std::unique_ptr<analysis::SharedProjections> shared_projections(const Model& model) {
  constexpr int64_t kGB = int64_t{1} << 30;
  const int64_t available = memory_available();
  const int64_t budget = available < 0 ? kGB : std::max<int64_t>(0, available - 2 * kGB) / 2;
  return std::make_unique<analysis::SharedProjections>(model.config(), budget);
}

// Step t of a pass: `token` explained at position P + t with the request's options, so exactly as
// the single-position explain of its prefix. `shared` carries the exact projections of weight
// directions from step to step (the same scores, bit for bit, without it); `widths` receives the
// certified half-widths of its bounded scores, for the sums' error budget.
TargetStep explain_step(const Model& model, const TeacherForcedPass& pass, const ExplainRequest& request, int position,
                        int32_t token, int32_t foil, analysis::SharedProjections* shared, analysis::ScoreWidths& widths) {
  TargetStep step;
  step.token = token;
  step.position = position;
  step.options = request.options;
  step.options.position = position;
  step.options.target = token;
  step.options.foil = foil;
  step.explanation =
      analysis::explain_sharing(model, *pass.run, pass.tokens, step.options, shared, &widths, request.should_stop,
                                request.on_progress);
  return step;
}

// Between steps: a caller that no longer wants the answer (ExplainRequest::should_stop) gets
// Cancelled before anything more is computed (the next step, the foil's pass or the sums).
void stop_if_asked(const ExplainRequest& request, size_t done, size_t total) {
  if (request.should_stop && request.should_stop()) {
    throw Cancelled("stopped after " + std::to_string(done) + " of " + std::to_string(total) +
                    " explained steps: the request was cancelled");
  }
}

// A sequence's positions must fit the model: the prompt and every token but the last.
void check_context(const Model& model, size_t n_prompt, size_t m, const char* what) {
  const int64_t need = static_cast<int64_t>(n_prompt + m) - 1, n_ctx = model.config().n_ctx;
  if (n_ctx > 0 && need > n_ctx) {
    throw InvalidArgument(std::string("the ") + what + " has " + std::to_string(m) + " tokens: after the prompt's " +
                          std::to_string(n_prompt) + " that needs " + std::to_string(need) +
                          " positions, more than the model's context window of " + std::to_string(n_ctx));
  }
}

}  // namespace

ExplainedTarget explain_target(const Model& model, const ExplainRequest& request) {
  // The names become sequences before any run, so a bad name fails before the model runs.
  const std::optional<TokenSequenceCandidates> target_seq =
      sequence_of(model, request.target, request.target_tokens, "target");
  const std::optional<TokenSequenceCandidates> foil_seq = sequence_of(model, request.foil, request.foil_tokens, "foil");
  const bool several = (target_seq && !target_seq->rest.empty()) || (foil_seq && !foil_seq->rest.empty());
  if (!several) return single_token(model, request);

  ExplainedTarget out;
  const std::vector<int32_t> prompt = prompt_tokens(model, request);
  const int P = resolve_position(request.position, prompt.size());
  if (P != static_cast<int>(prompt.size()) - 1) {
    throw InvalidArgument("a target or foil of several tokens continues the prompt, so it is explained after the last "
                          "position (" + std::to_string(prompt.size() - 1) + "), not at position " + std::to_string(P) +
                          ": cut the prompt there instead");
  }
  out.prompt = prompt;
  out.position = P;
  if (target_seq) check_context(model, prompt.size(), 1 + target_seq->rest.size(), "target");
  if (foil_seq) check_context(model, prompt.size(), 1 + foil_seq->rest.size(), "foil");

  // The target's pass. Only a one-token name has two spellings, so a longer target's tokens are
  // known before the run; a one-token target's pass is the prompt itself.
  out.target_pass.tokens = prompt;
  if (target_seq && !target_seq->rest.empty()) {
    out.target.push_back(target_seq->first.front());
    out.target.insert(out.target.end(), target_seq->rest.begin(), target_seq->rest.end());
    out.target_pass.tokens = teacher_forced_tokens(prompt, out.target);
  }
  out.target_pass.run = run_pass(model, out.target_pass.tokens, P, request);
  const RunResult& run0 = *out.target_pass.run;
  const std::span<const float> first_logits = logits_at(model, run0, P, out.target_pass.tokens.size());
  if (out.target.empty()) {  // one token: its likelier spelling at P, or the top prediction
    out.target = {target_seq ? pick_token(model, {target_seq->first, target_seq->note}, first_logits, "target", out.notes)
                             : target_stats(first_logits, 0).top1};
  } else if (!target_seq->note.empty()) {
    out.notes.push_back(target_seq->note);
  }
  if (foil_seq) {
    out.foil = {pick_token(model, {foil_seq->first, foil_seq->note}, first_logits, "foil", out.notes)};
    out.foil.insert(out.foil.end(), foil_seq->rest.begin(), foil_seq->rest.end());
    if (out.foil == out.target) throw InvalidArgument("the foil is the target itself: nothing to contrast");
  }

  // Where the sequences part: the first step whose tokens differ, read in one context (the
  // contrast step) unless one sequence ends first; the foil's later steps need their own pass.
  const size_t m = out.target.size(), k = out.foil.size();
  size_t common = 0;
  while (common < std::min(m, k) && out.target[common] == out.foil[common]) ++common;
  if (k > 0 && common < std::min(m, k)) out.contrast_step = static_cast<int>(common);
  out.first_foil_step = static_cast<int>(out.contrast_step >= 0 ? common + 1 : common);

  // Every step is explained at the request's bound_tol (each is its prefix's explain, bit for bit)
  // and records its bounded scores' certified widths; a summed score adds one per step, so after
  // the sums the components whose widths add up to more than bound_tol are tightened: their widest
  // steps' scores recomputed exactly (analysis/target_tightening.h, docs/explain.md).
  const size_t n_foil_own = k > static_cast<size_t>(out.first_foil_step) ? k - static_cast<size_t>(out.first_foil_step) : 0;
  const std::unique_ptr<analysis::SharedProjections> shared = shared_projections(model);
  std::vector<analysis::ScoreWidths> target_widths(m), foil_widths(n_foil_own);
  for (size_t t = 0; t < m; ++t) {
    const int32_t foil = static_cast<int>(t) == out.contrast_step ? out.foil[t] : -1;
    out.target_pass.steps.push_back(explain_step(model, out.target_pass, request, P + static_cast<int>(t), out.target[t],
                                                 foil, shared.get(), target_widths[t]));
    if (request.on_step_explained) request.on_step_explained(out.target_pass, t);
    if (request.on_step) request.on_step(static_cast<int>(t) + 1, static_cast<int>(m));
    stop_if_asked(request, t + 1, m + n_foil_own);
  }
  // log p(foil): its steps before the parting are the target's (same token, same context), the
  // parting step reads the target pass's logits, the later ones their own pass.
  double foil_log_prob = 0;
  for (size_t t = 0; t < k && static_cast<int>(t) < out.first_foil_step; ++t) {
    foil_log_prob += static_cast<int>(t) == out.contrast_step
                         ? target_stats(logits_at(model, run0, P + static_cast<int>(t), out.target_pass.tokens.size()),
                                        out.foil[t]).log_prob
                         : out.target_pass.steps[t].explanation.real_log_prob;
  }
  if (n_foil_own > 0) {
    out.foil_pass.tokens = teacher_forced_tokens(prompt, out.foil);
    out.foil_pass.run = run_pass(model, out.foil_pass.tokens, P, request);
    for (size_t t = static_cast<size_t>(out.first_foil_step); t < k; ++t) {
      out.foil_pass.steps.push_back(explain_step(model, out.foil_pass, request, P + static_cast<int>(t), out.foil[t], -1,
                                                 shared.get(), foil_widths[t - static_cast<size_t>(out.first_foil_step)]));
      foil_log_prob += out.foil_pass.steps.back().explanation.real_log_prob;
      stop_if_asked(request, m + out.foil_pass.steps.size(), m + n_foil_own);
    }
  }
  out.summed = analysis::sum_target_steps(out, request.options.set_size, foil_log_prob);
  analysis::report_progress(&request.on_progress, "tightening", 0, 1);
  analysis::tighten_target_sums(model, out, target_widths, foil_widths, request.options.bound_tol,
                                request.options.set_size, shared.get());
  analysis::report_progress(&request.on_progress, "tightening", 1, 1);
  return out;
}

}  // namespace reslens
