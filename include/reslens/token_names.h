// Tokens named as text: how `--target`, `--foil`, the web API and datasets turn "Paris" into a token
// id. A name matches the token that reads exactly as written and the one that reads as the text
// after a space (SentencePiece and byte-level BPE spell a word after a space that way); between
// several, callers pick the one the model finds likelier. When no token reads so, the text's first
// token is used (leading space-only tokens skipped: " dog" on a SentencePiece model starts with
// '▁do', not with the '▁' its encoding begins with), and the caller learns the text was several
// tokens.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "reslens/tokenizer.h"

namespace reslens {

class TokenResolver {
 public:
  explicit TokenResolver(const Tokenizer& tokenizer);

  struct Resolved {
    std::vector<int32_t> candidates;  ///< one or two ids
    int64_t n_tokens = 1;             ///< tokens the text encodes to when no single token reads as it
    /// When no single token reads as the text: all its tokens (leading space-only ones skipped, as
    /// for candidates[0]), the sequence a multi-token target is teacher-forced through.
    std::vector<int32_t> tokens;
  };
  /// Throws InvalidArgument when the text encodes to nothing (and for invalid UTF-8).
  Resolved resolve(const std::string& text) const;
  /// The likeliest candidate under `logits` (ties: the first).
  static int32_t pick(const Resolved& r, std::span<const float> logits);

 private:
  const Tokenizer& tokenizer_;
  std::unordered_map<std::string, int32_t> by_text_;  ///< token text -> first non-control id
};

}  // namespace reslens
