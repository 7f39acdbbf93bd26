// generate(): a prompt continued through a Session's KV cache (reslens/generate.h). The sampler is
// the one `reslens generate` has always used, moved here so that explain --generate shares it.
#include "reslens/generate.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <string_view>

#include "reslens/error.h"
#include "reslens/run.h"

namespace reslens {

const char* to_string(GenerationStop stop) {
  switch (stop) {
    case GenerationStop::kEndOfTurn: return "end_of_turn";
    case GenerationStop::kMaxTokens: return "max_tokens";
    case GenerationStop::kContext: return "context";
  }
  return "max_tokens";
}

std::vector<int32_t> end_of_generation_tokens(const Tokenizer& tok) {
  std::vector<int32_t> ids;
  if (tok.eos_id() >= 0) ids.push_back(tok.eos_id());
  // The turn ends of the chat layouts reslens/chat.h writes (and llama.cpp's EOG list): a model
  // tuned for chat ends its reply with one of these, which is often not its EOS.
  constexpr std::string_view kTurnEnds[] = {"<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>",
                                            "<|endoftext|>", "<|eom_id|>"};
  for (const std::string_view piece : kTurnEnds) {
    const int32_t id = tok.find_piece(piece);
    // Only a special token: an ordinary token that happens to spell the marker is text.
    if (id >= 0 && (tok.type(id) == TokenType::kControl || tok.type(id) == TokenType::kUserDefined)) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

namespace {

// The argmax of a logit row, the lowest id on ties (as llama.cpp's greedy sampler).
int32_t argmax(const std::vector<float>& logits) {
  int32_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[static_cast<size_t>(best)]) best = static_cast<int32_t>(i);
  }
  return best;
}

// One draw from softmax(logits / temperature), the probabilities in double.
int32_t sample(const std::vector<float>& logits, double temperature, std::mt19937_64& rng) {
  // [V] the scaled logits rounded to float first, as the sampler always did, then exp in double.
  std::vector<float> scaled(logits.size());
  for (size_t j = 0; j < logits.size(); ++j) scaled[j] = static_cast<float>(static_cast<double>(logits[j]) / temperature);
  double mx = -std::numeric_limits<double>::infinity();
  for (const float v : scaled) mx = std::max(mx, static_cast<double>(v));
  std::vector<double> p(scaled.size());
  double sum = 0;
  for (size_t j = 0; j < scaled.size(); ++j) sum += (p[j] = std::exp(static_cast<double>(scaled[j]) - mx));
  for (double& v : p) v /= sum;
  std::discrete_distribution<int32_t> dist(p.begin(), p.end());
  return dist(rng);
}

}  // namespace

Generation generate(const Model& model, std::span<const int32_t> prompt, const GenerateOptions& options,
                    const std::function<void(int32_t)>& on_token) {
  if (options.max_tokens < 0) throw InvalidArgument("the number of tokens to generate is negative");
  if (!(options.temperature >= 0) || !std::isfinite(options.temperature)) {
    throw InvalidArgument("the sampling temperature must be a finite number >= 0 (0 = greedy)");
  }
  const std::vector<int32_t> stops = end_of_generation_tokens(model.tokenizer());
  Session session(model, options.n_threads, options.ggml_gelu);
  std::vector<float> logits = session.append(prompt);  // [d_vocab] after the prompt's last token
  std::mt19937_64 rng(options.seed);
  Generation out;
  for (int64_t i = 0; i < options.max_tokens; ++i) {
    const int32_t next = options.temperature == 0.0 ? argmax(logits) : sample(logits, options.temperature, rng);
    if (std::binary_search(stops.begin(), stops.end(), next)) {
      out.stop = GenerationStop::kEndOfTurn;
      out.stop_token = next;
      return out;
    }
    out.tokens.push_back(next);
    if (on_token) on_token(next);
    if (static_cast<int64_t>(out.tokens.size()) == options.max_tokens) break;
    if (session.n_past() >= model.config().n_ctx) {
      out.stop = GenerationStop::kContext;
      return out;
    }
    logits = session.append(std::span<const int32_t>(&next, 1));
  }
  out.stop = GenerationStop::kMaxTokens;
  return out;
}

}  // namespace reslens
