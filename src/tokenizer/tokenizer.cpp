// Tokenizer base class: vocabulary bookkeeping shared by every tokenizer.
#include "reslens/tokenizer.h"

#include "reslens/error.h"

namespace reslens {

Tokenizer::~Tokenizer() = default;

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
}

}  // namespace reslens
