// Generation: continue a prompt one token at a time through a Session (its KV cache), greedy or
// sampled with a seed, stopping at the end of the model's turn. `reslens generate` and
// `reslens explain --generate` (reslens/explain_target.h, explain_generated) both call generate(),
// so an explained answer is exactly the answer `generate` prints for the same prompt and options.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "reslens/model.h"

namespace reslens {

struct GenerateOptions {
  int64_t max_tokens = 32;  ///< at most this many tokens (0: none)
  /// 0: greedy (the argmax, the lowest id on ties, as llama.cpp). Otherwise each token is drawn from
  /// softmax(logits / temperature) (in double) by std::discrete_distribution over std::mt19937_64
  /// seeded with `seed`: the same draws for the same build of the standard library.
  double temperature = 0;
  uint64_t seed = 0;
  int n_threads = 0;
  bool ggml_gelu = false;  ///< llama.cpp's fp16 GELU table (GPT-2 comparisons), as Session takes it
};

/// Why generation stopped.
enum class GenerationStop : uint8_t {
  kEndOfTurn,  ///< the model chose an end-of-generation token (not part of the answer)
  kMaxTokens,  ///< max_tokens were generated
  kContext,    ///< the context window is full
};
const char* to_string(GenerationStop stop);  ///< "end_of_turn", "max_tokens", "context"

struct Generation {
  std::vector<int32_t> tokens;  ///< the answer, without the end-of-generation token
  GenerationStop stop = GenerationStop::kMaxTokens;
  int32_t stop_token = -1;  ///< the end-of-generation token chosen (kEndOfTurn), else -1
};

/// The tokens that end a turn, as llama.cpp's end-of-generation set: the tokenizer's EOS and every
/// control or user-defined token whose piece is a chat template's turn end ("<|im_end|>",
/// "<|eot_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>", "<|eom_id|>"); sorted, no repeats.
std::vector<int32_t> end_of_generation_tokens(const Tokenizer& tok);

/// Continues `prompt`: after each token chosen, `on_token(id)` (if set) is called before the next
/// step runs, so a caller can print the answer as it grows. InvalidArgument for a negative
/// max_tokens or temperature, or a temperature that is not finite.
Generation generate(const Model& model, std::span<const int32_t> prompt, const GenerateOptions& options,
                    const std::function<void(int32_t)>& on_token = {});

}  // namespace reslens
