// explain_generated(): the model's own answer explained token by token (reslens/explain_target.h).
// The answer is generated through a Session's KV cache (reslens/generate.h), then it is a target
// like any other: explain_target() teacher-forces it in one pass and explains every step, so a
// generated answer and the same tokens given as --target give the same numbers.
#include <sstream>
#include <string>

#include "analysis/progress.h"
#include "reslens/error.h"
#include "reslens/explain_target.h"

namespace reslens {

ExplainedTarget explain_generated(const Model& model, const ExplainRequest& request, const GenerateOptions& options) {
  if (request.target || !request.target_tokens.empty()) {
    throw InvalidArgument("a generated answer is the model's own: give either a target or a number of tokens to "
                          "generate, not both");
  }
  if (request.foil || !request.foil_tokens.empty()) {
    throw InvalidArgument("a foil is not taken with a generated answer: generate first, then explain the answer with "
                          "--target and --foil");
  }
  if (options.ggml_gelu) {
    throw InvalidArgument("llama.cpp's fp16 GELU table is for generation comparisons; the explained pass uses the "
                          "exact GELU, so the answer would not be the one explained");
  }
  if (options.max_tokens < 1) {
    throw InvalidArgument("the number of tokens to generate is " + std::to_string(options.max_tokens) +
                          ": give 1 or more");
  }
  const std::vector<int32_t> prompt = prompt_tokens(model, request);
  const int P = resolve_position(request.position, prompt.size());
  if (P != static_cast<int>(prompt.size()) - 1) {
    throw InvalidArgument("a generated answer continues the prompt, so it is explained after the last position (" +
                          std::to_string(prompt.size() - 1) + "), not at position " + std::to_string(P) +
                          ": cut the prompt there instead");
  }
  // The teacher-forced pass holds the prompt and every answer token but the last.
  const int64_t n_ctx = model.config().n_ctx;
  const int64_t need = static_cast<int64_t>(prompt.size()) + options.max_tokens - 1;
  if (n_ctx > 0 && need > n_ctx) {
    throw InvalidArgument("generating " + std::to_string(options.max_tokens) + " tokens after the prompt's " +
                          std::to_string(prompt.size()) + " needs " + std::to_string(need) +
                          " positions, more than the model's context window of " + std::to_string(n_ctx) +
                          ": ask for at most " + std::to_string(n_ctx - static_cast<int64_t>(prompt.size()) + 1));
  }

  GenerateOptions go = options;
  go.n_threads = request.options.n_threads;
  // A caller that cancels while the answer is generated stops it after the token being chosen.
  int64_t generated = 0;
  analysis::report_progress(&request.on_progress, "generate", 0, options.max_tokens);
  const Generation answer = generate(model, prompt, go, [&request, &generated, &options](int32_t) {
    analysis::report_progress(&request.on_progress, "generate", ++generated, options.max_tokens);
    if (request.should_stop && request.should_stop()) {
      throw Cancelled("stopped while generating the answer: the request was cancelled");
    }
  });
  if (answer.tokens.empty()) {
    throw InvalidArgument("the model ended its turn at once (its first token is '" +
                          model.tokenizer().token_text(answer.stop_token) + "'): no answer to explain");
  }

  ExplainRequest forced = request;
  forced.tokens = prompt;
  forced.prompt.clear();
  forced.target_tokens = answer.tokens;
  ExplainedTarget out = explain_target(model, forced);
  out.generated = GeneratedAnswer{go, answer.stop, answer.stop_token};
  std::string note = "generated " + std::to_string(answer.tokens.size()) + " token" +
                     (answer.tokens.size() == 1 ? "" : "s") +
                     (go.temperature == 0.0 ? std::string(" greedily")
                                             : " sampled at temperature " + (std::ostringstream() << go.temperature).str() +
                                                   " with seed " + std::to_string(go.seed));
  if (answer.stop == GenerationStop::kEndOfTurn) {
    note += ", until the model ended its turn with '" + model.tokenizer().token_text(answer.stop_token) + "'";
  } else if (answer.stop == GenerationStop::kContext) {
    note += ", until the context window was full";
  }
  out.notes.push_back(note + "; each is explained after the ones before it (teacher forcing)");
  return out;
}

}  // namespace reslens
