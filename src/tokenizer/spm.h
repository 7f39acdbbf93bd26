// SentencePiece-style BPE driven by token scores, exactly as llama.cpp's `llm_tokenizer_spm` (the
// tokenizer of GGUF model `llama`) and llama2.c's `encode` do it:
//   1. prefix a space (when enabled and the text is non-empty), write every space as "▁";
//   2. split into UTF-8 characters;
//   3. repeatedly merge the adjacent pair whose concatenation is a token with the highest score
//      (ties: the leftmost pair), using a priority queue of candidate bigrams;
//   4. emit each final symbol's token; a character that is not a token becomes its `<0xXX>` byte
//      tokens, or, when the vocabulary lacks one of those, `<unk>` (a run of such characters gives
//      one `<unk>`, as Hugging Face's `fuse_unk` does; llama.cpp would throw here).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "reslens/tokenizer.h"

namespace reslens::tokenizer_detail {

/// Everything an SpmTokenizer is built from (filled by the GGUF and llama2.c loaders).
struct SpmVocab {
  std::vector<std::string> pieces;  ///< SentencePiece form: "▁Once", "<0x0A>", "<s>"
  std::vector<float> scores;        ///< same length as pieces; higher merges first
  std::vector<TokenType> types;     ///< same length as pieces
  int32_t bos_id = -1;
  int32_t eos_id = -1;
  int32_t unk_id = -1;
  bool add_bos = true;
  bool add_space_prefix = true;
  std::string kind = "llama-spm";
};

class SpmTokenizer final : public Tokenizer {
 public:
  /// Throws InternalError when the arrays disagree in length (loaders validate files first).
  explicit SpmTokenizer(SpmVocab vocab);

  std::string decode(std::span<const int32_t> ids) const override;
  std::string token_text(int32_t id) const override;
  std::string token_bytes(int32_t id) const override;

  /// The merge score of token `id` (OutOfRange outside the vocabulary).
  float score(int32_t id) const;
  bool add_space_prefix() const { return add_space_prefix_; }

 private:
  void encode_text(std::string_view text, size_t offset, std::vector<int32_t>& out) const override;
  /// Emits the tokens of one final symbol that is not itself a token (step 4 above); false when
  /// the vocabulary can represent it neither by bytes nor by <unk>.
  bool emit_unknown_symbol(std::string_view symbol, bool& previous_was_unk, std::vector<int32_t>& out) const;

  std::vector<float> scores_;
  bool add_space_prefix_ = true;
  /// Token of each byte value: its "<0xXX>" piece, else (as llama.cpp's byte_to_token falls back)
  /// the one-byte piece; -1 when neither exists.
  std::array<int32_t, 256> byte_ids_{};
};

}  // namespace reslens::tokenizer_detail
