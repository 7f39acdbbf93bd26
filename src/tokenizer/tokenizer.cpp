// Tokenizer base class: vocabulary bookkeeping shared by every tokenizer, and encode's splitting of
// the special tokens written in the text.
#include "reslens/tokenizer.h"

#include <algorithm>
#include <utility>

#include "core/utf8.h"
#include "reslens/error.h"
#include "tokenizer/special_split.h"

namespace reslens {

Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos, SpecialText special) const {
  require_valid_utf8(text, "text to tokenize");
  std::vector<int32_t> out;
  if (add_bos) {
    if (bos_id_ < 0) throw InvalidArgument("this " + kind_ + " tokenizer has no BOS token to add");
    out.push_back(bos_id_);
  }
  const auto& candidates = special == SpecialText::kParse ? parse_specials_ : plain_specials_;
  for (const tokenizer_detail::TextPart& part : tokenizer_detail::split_special_tokens(text, candidates)) {
    if (part.token >= 0) {
      out.push_back(part.token);
    } else {
      encode_text(text.substr(part.begin, part.end - part.begin), part.begin, out);
    }
  }
  return out;
}

const std::string& Tokenizer::piece(int32_t id) const {
  if (id < 0 || id >= n_vocab()) {
    throw OutOfRange("token id " + std::to_string(id) + " is outside the vocabulary (0.."
                     + std::to_string(n_vocab() - 1) + ")");
  }
  return pieces_[static_cast<size_t>(id)];
}

TokenType Tokenizer::type(int32_t id) const {
  piece(id);  // range check
  return types_.empty() ? TokenType::kNormal : types_[static_cast<size_t>(id)];
}

int32_t Tokenizer::find_piece(std::string_view piece) const {
  auto it = piece_index_.find(piece);
  return it == piece_index_.end() ? -1 : it->second;
}

void Tokenizer::index_pieces() {
  piece_index_.clear();
  piece_index_.reserve(pieces_.size());
  for (size_t i = 0; i < pieces_.size(); ++i) piece_index_.emplace(pieces_[i], static_cast<int32_t>(i));
  parse_specials_.clear();
  plain_specials_.clear();
  for (size_t i = 0; i < types_.size() && i < pieces_.size(); ++i) {
    const TokenType t = types_[i];
    const bool special = t == TokenType::kControl || t == TokenType::kUnknown || t == TokenType::kUserDefined;
    if (special && !pieces_[i].empty()) parse_specials_.emplace_back(pieces_[i], static_cast<int32_t>(i));
  }
  std::stable_sort(parse_specials_.begin(), parse_specials_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  for (const auto& s : parse_specials_) {
    if (types_[static_cast<size_t>(s.second)] == TokenType::kUserDefined) plain_specials_.push_back(s);
  }
}

}  // namespace reslens
