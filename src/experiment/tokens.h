// Targets and competitors named as text -> token ids, by the rule `reslens explain --target` uses
// (tools/reslens/common.cpp resolve_token/pick_token): a token that reads exactly as the text, or as
// the text after a space; between several, the one the model finds likelier; when no token reads
// so, the first token of the text's encoding (and the text counts as several tokens). Two
// differences from the CLI: a number is text, not a token id (a "number" fact's target "7" is the
// token 7), and leading space-only tokens of the encoding are skipped (" dog" on a SentencePiece
// model starts with '▁do', not with the lone '▁' its encoding begins with). Internal.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "reslens/model.h"

namespace reslens::experiment_impl {

class TokenResolver {
 public:
  explicit TokenResolver(const Model& model);

  struct Resolved {
    std::vector<int32_t> candidates;
    int64_t n_tokens = 1;  ///< tokens the text encodes to when no single token reads as it
  };
  /// Throws InvalidArgument when the text encodes to nothing.
  Resolved resolve(const std::string& text) const;
  /// The likeliest candidate under `logits` (ties: the first).
  static int32_t pick(const Resolved& r, std::span<const float> logits);

 private:
  const Model& model_;
  std::unordered_map<std::string, int32_t> by_text_;  ///< token text -> first non-control id
};

}  // namespace reslens::experiment_impl
