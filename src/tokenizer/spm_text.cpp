#include "tokenizer/spm_text.h"

#include "tokenizer/pieces.h"

namespace reslens::tokenizer_detail {

std::string spm_decode(const Tokenizer& tokenizer, std::span<const int32_t> ids, bool strip_space_prefix) {
  std::string out;
  for (const int32_t id : ids) {
    const std::string& piece = tokenizer.piece(id);  // range check first
    switch (tokenizer.type(id)) {
      case TokenType::kControl: break;
      case TokenType::kByte: {
        const int byte = parse_byte_piece(piece);
        if (byte >= 0) {
          out += static_cast<char>(byte);
        } else {
          out += piece;  // a byte-typed token with an unusual piece: show it as written
        }
        break;
      }
      default: out += replace_all(piece, kSpmSpace, " "); break;
    }
  }
  if (strip_space_prefix && !out.empty() && out.front() == ' ') out.erase(0, 1);
  return out;
}

std::string spm_token_text(const Tokenizer& tokenizer, int32_t id) {
  const std::string& piece = tokenizer.piece(id);
  switch (tokenizer.type(id)) {
    case TokenType::kNormal:
    case TokenType::kUserDefined:
    case TokenType::kUnused: return escape_invalid_utf8(replace_all(piece, kSpmSpace, " "));
    default: return escape_invalid_utf8(piece);
  }
}

}  // namespace reslens::tokenizer_detail
