// llama.cpp's byte-level BPE pre-tokenizers by name: what llama_vocab::impl::load (llama.cpp commit
// 80fb11a, src/llama-vocab.cpp) does for each `tokenizer.ggml.pre` value of a `gpt2` vocabulary that
// reslens accepts. A value missing from this table is refused by name: each one here is checked
// against llama.cpp's own ids (tests/unit/tokenizer/pre_aliases_test.cpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace reslens::tokenizer_detail {

struct LlamaCppPreTokenizer {
  std::string kind;                   ///< Tokenizer::kind(): "gpt2-bpe", "llama3-bpe", "falcon-bpe", ...
  std::vector<std::string> patterns;  ///< PCRE2 patterns, applied in order: each splits every word of
                                      ///< the one before (llama.cpp's unicode_regex_split)
  bool ignore_merges = false;         ///< a word that is itself a token is emitted whole
  bool add_bos = false;               ///< BOS added when `tokenizer.ggml.add_bos_token` is absent
};

/// The pre-tokenizer llama.cpp runs for `tokenizer.ggml.pre` = `pre` (an absent key is "default",
/// as in llama.cpp); nullopt when reslens does not support it.
std::optional<LlamaCppPreTokenizer> llamacpp_pre_tokenizer(std::string_view pre);

/// Every `tokenizer.ggml.pre` value llamacpp_pre_tokenizer accepts, for messages and tests.
const std::vector<std::string>& llamacpp_pre_tokenizer_names();

/// The split of llama.cpp's `gemma4` tokenizer model: runs of newlines and runs of anything else.
std::string gemma4_newline_pattern();

}  // namespace reslens::tokenizer_detail
