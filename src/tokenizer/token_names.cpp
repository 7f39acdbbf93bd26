// Token names -> ids (include/reslens/token_names.h).
#include "reslens/token_names.h"

#include <algorithm>

#include "core/utf8.h"

#include "reslens/error.h"

namespace reslens {

TokenResolver::TokenResolver(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {
  // One pass over the vocabulary instead of one per name: a dataset names thousands of competitors.
  const Tokenizer& tok = tokenizer_;
  for (int32_t id = 0; id < tok.n_vocab(); ++id) {
    if (tok.type(id) != TokenType::kControl) by_text_.emplace(tok.token_text(id), id);
  }
}

TokenResolver::Resolved TokenResolver::resolve(const std::string& text) const {
  require_valid_utf8(text, "the token name '" + text + "'");
  Resolved r;
  const std::string spaced = !text.empty() && text[0] == ' ' ? text : " " + text;
  for (const std::string& want : {text, spaced}) {
    if (const auto it = by_text_.find(want); it != by_text_.end()) {
      if (std::find(r.candidates.begin(), r.candidates.end(), it->second) == r.candidates.end()) {
        r.candidates.push_back(it->second);
      }
    }
  }
  if (!r.candidates.empty()) return r;
  const Tokenizer& tok = tokenizer_;
  std::vector<int32_t> ids = tok.encode(text, false);
  if (ids.empty()) throw InvalidArgument("'" + text + "' has no tokens");
  // Leading tokens that are only spaces are an artefact of the tokenizer's own space prefix: " dog"
  // encodes as '▁' '▁do' 'g' on a SentencePiece model, where the word after a space is '▁do' 'g';
  // on a vocabulary that glues the space to the previous word ("a▁" "dog"), the word is 'dog'.
  const auto blank = [&](int32_t id) { return tok.token_text(id).find_first_not_of(' ') == std::string::npos; };
  size_t first = 0;
  while (first + 1 < ids.size() && blank(ids[first])) ++first;
  ids.erase(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(first));
  r.candidates = {ids[0]};
  r.n_tokens = static_cast<int64_t>(ids.size());
  r.tokens = std::move(ids);
  return r;
}

int32_t TokenResolver::pick(const Resolved& r, std::span<const float> logits) {
  int32_t best = r.candidates.front();
  for (const int32_t id : r.candidates) {
    best = logits[static_cast<size_t>(id)] > logits[static_cast<size_t>(best)] ? id : best;
  }
  return best;
}

}  // namespace reslens
