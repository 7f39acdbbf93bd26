// The front doors' one request (reslens/explain_request.h): positions, token names, and explain().
#include "reslens/explain_request.h"

#include <algorithm>

#include "analysis/explain_internal.h"
#include "reslens/error.h"
#include "reslens/token_names.h"

namespace reslens {

TokenName TokenName::parse(const std::string& spec) {
  TokenName n;
  if (!spec.empty() && spec.size() < 10 && spec.find_first_not_of("0123456789") == std::string::npos) {
    n.id = std::stoi(spec);
  } else {
    n.text = spec;
  }
  return n;
}

int resolve_position(int position, size_t n_tokens) {
  const auto n = static_cast<int64_t>(n_tokens);
  const int64_t p = position < 0 ? n + position : position;
  if (p < 0 || p >= n) {
    throw OutOfRange("position " + std::to_string(position) + " is out of range: the prompt has " + std::to_string(n) +
                     " tokens (0.." + std::to_string(n - 1) + ", or -1 for the last)");
  }
  return static_cast<int>(p);
}

TokenCandidates token_candidates(const Model& model, const TokenName& name, const char* what) {
  if (name.id >= 0 || name.text.empty()) {
    if (name.id < 0) throw InvalidArgument(std::string("the ") + what + " is empty: name a token");
    if (name.id >= model.config().d_vocab) {
      throw OutOfRange(std::string(what) + " token id " + std::to_string(name.id) + " is outside the vocabulary (0.." +
                       std::to_string(model.config().d_vocab - 1) + ")");
    }
    return {{name.id}, ""};
  }
  const Tokenizer& tok = model.tokenizer();
  const TokenResolver::Resolved r = TokenResolver(tok).resolve(name.text);
  TokenCandidates c{r.candidates, ""};
  if (r.n_tokens > 1) {
    const std::vector<int32_t> ids = tok.encode(name.text, false);
    c.note = std::string("the ") + what + " '" + name.text + "' is not one token (it encodes as " +
             std::to_string(ids.size()) + " tokens:";
    for (const int32_t id : ids) c.note += " '" + tok.token_text(id) + "'";
    c.note += "); explaining '" + tok.token_text(r.candidates[0]) + "'";
  }
  return c;
}

int32_t pick_token(const Model& model, const TokenCandidates& candidates, std::span<const float> logits,
                   const char* what, std::vector<std::string>& notes) {
  if (candidates.ids.empty()) throw InvalidArgument(std::string("no candidate tokens for the ") + what);
  int32_t best = candidates.ids.front();
  for (const int32_t id : candidates.ids) {
    if (id < 0 || id >= model.config().d_vocab) {
      throw OutOfRange(std::string(what) + " token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                       std::to_string(model.config().d_vocab - 1) + ")");
    }
    best = logits[static_cast<size_t>(id)] > logits[static_cast<size_t>(best)] ? id : best;
  }
  if (!candidates.note.empty()) notes.push_back(candidates.note);
  if (candidates.ids.size() > 1) {
    const Tokenizer& tok = model.tokenizer();
    std::string n = std::string("the ") + what + " matches tokens";
    for (const int32_t id : candidates.ids) n += " '" + tok.token_text(id) + "' (" + std::to_string(id) + ")";
    notes.push_back(n + "; using '" + tok.token_text(best) + "', the more likely here (pass an id to choose)");
  }
  return best;
}

int32_t resolve_token(const Model& model, const TokenName& name, std::span<const float> logits, const char* what,
                      std::vector<std::string>& notes) {
  return pick_token(model, token_candidates(model, name, what), logits, what, notes);
}

std::span<const float> logits_at(const Model& model, const RunResult& run, int position, size_t n_tokens) {
  const auto V = static_cast<size_t>(model.config().d_vocab);
  const bool all = run.logits.dim(0) == static_cast<int64_t>(n_tokens);
  if (!all && position != static_cast<int>(n_tokens) - 1) {
    throw InvalidArgument("logits_at: the run kept only the last position's logits");
  }
  return {run.logits.row(all ? position : run.logits.dim(0) - 1), V};
}

std::vector<int32_t> prompt_tokens(const Model& model, const ExplainRequest& request) {
  if (!request.tokens.empty()) return request.tokens;
  const Tokenizer& tok = model.tokenizer();
  std::vector<int32_t> ids = tok.encode(request.prompt, tok.add_bos_default());
  if (ids.empty()) throw InvalidArgument("the prompt has no tokens: nothing to explain");
  return ids;
}

namespace {

// A name, or ids (explain_target()'s sequences): of several ids, the first, as of a text of several
// tokens.
std::optional<TokenCandidates> named_candidates(const Model& model, const std::optional<TokenName>& name,
                                                const std::vector<int32_t>& ids, const char* what) {
  if (name && !ids.empty()) {
    throw InvalidArgument(std::string("the ") + what + " is given both as a name and as token ids: give one");
  }
  if (name) return token_candidates(model, *name, what);
  if (ids.empty()) return std::nullopt;
  TokenCandidates c = token_candidates(model, TokenName{ids.front(), ""}, what);
  if (ids.size() > 1) {
    c.note = std::string("the ") + what + " is " + std::to_string(ids.size()) + " tokens; explaining the first, '" +
             model.tokenizer().token_text(ids.front()) + "'";
  }
  return c;
}

}  // namespace

ExplainedPrompt explain(const Model& model, const ExplainRequest& request) {
  ExplainedPrompt out;
  out.tokens = prompt_tokens(model, request);
  const int P = resolve_position(request.position, out.tokens.size());
  // The names resolve to candidates before the run, so a bad name fails before the model runs.
  const std::optional<TokenCandidates> target = named_candidates(model, request.target, request.target_tokens, "target");
  const std::optional<TokenCandidates> foil = named_candidates(model, request.foil, request.foil_tokens, "foil");
  out.options = request.options;
  out.options.position = P;
  require_memory_for_prompt(model, static_cast<int64_t>(out.tokens.size()), 1, request.options.n_threads);
  RunOptions ro;
  ro.capture = explain_capture();
  ro.pattern_rows = {P};  // explain() reads the explained position's attention row only
  // Logits at P only are needed; every other position costs a d_vocab-wide GEMM row.
  ro.all_logits = request.all_logits || P != static_cast<int>(out.tokens.size()) - 1;
  ro.n_threads = request.options.n_threads;
  analysis::report_progress(&request.on_progress, "forward", 0, 1);
  out.run = std::make_shared<const RunResult>(run(model, out.tokens, ro));
  analysis::report_progress(&request.on_progress, "forward", 1, 1);
  const std::span<const float> logits = logits_at(model, *out.run, P, out.tokens.size());
  out.options.target = target ? pick_token(model, *target, logits, "target", out.notes) : -1;
  out.options.foil = foil ? pick_token(model, *foil, logits, "foil", out.notes) : -1;
  if (request.should_stop && request.should_stop()) {
    throw Cancelled("explain stopped after its forward pass: the request was cancelled");
  }
  out.explanation =
      analysis::explain_sharing(model, *out.run, out.tokens, out.options, nullptr, nullptr, request.should_stop,
                                request.on_progress);
  return out;
}

}  // namespace reslens
