#include "tokenizer/byte_level.h"

#include <array>

#include "core/utf8.h"
#include "tokenizer/pieces.h"

namespace reslens::tokenizer_detail {

namespace {

constexpr uint32_t kNoByte = 0xFFFFFFFF;
constexpr size_t kAlphabetEnd = 0x144;  // code points used by the alphabet are all below this

struct Alphabet {
  std::array<std::string, 256> byte_to_utf8;        // byte -> its character, UTF-8 encoded
  std::array<uint32_t, kAlphabetEnd> cp_to_byte{};  // code point -> byte, or kNoByte

  Alphabet() {
    cp_to_byte.fill(kNoByte);
    // GPT-2's bytes_to_unicode(): the printable ranges '!'..'~', '¡'..'¬', '®'..'ÿ' map to
    // themselves; the remaining bytes, in increasing order, get 256, 257, ...
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const uint32_t cp = printable ? b : next++;
      append_utf8(byte_to_utf8[b], cp);
      cp_to_byte[cp] = b;
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet instance;
  return instance;
}

// Decodes the UTF-8 character at `s[i]` (input known valid); advances i.
uint32_t next_code_point(std::string_view s, size_t& i) {
  const auto lead = static_cast<uint8_t>(s[i]);
  const size_t len = std::min(utf8_sequence_length(lead), s.size() - i);
  uint32_t cp = len == 1 ? lead : len == 2 ? (lead & 0x1Fu) : len == 3 ? (lead & 0x0Fu) : (lead & 0x07u);
  for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3Fu);
  i += len;
  return cp;
}

}  // namespace

void append_byte_level(std::string& out, std::string_view bytes) {
  const Alphabet& a = alphabet();
  for (const char c : bytes) out += a.byte_to_utf8[static_cast<uint8_t>(c)];
}

void append_byte_level_decoded(std::string& out, std::string_view piece) {
  const Alphabet& a = alphabet();
  for (size_t i = 0; i < piece.size();) {
    const size_t start = i;
    const uint32_t cp = next_code_point(piece, i);
    const uint32_t byte = cp < kAlphabetEnd ? a.cp_to_byte[cp] : kNoByte;
    if (byte != kNoByte) {
      out += static_cast<char>(byte);
    } else {
      out.append(piece.substr(start, i - start));
    }
  }
}

std::string byte_level_decode(const Tokenizer& tokenizer, std::span<const int32_t> ids) {
  std::string out;
  for (const int32_t id : ids) {
    const std::string& piece = tokenizer.piece(id);
    switch (tokenizer.type(id)) {
      case TokenType::kControl: break;
      case TokenType::kUserDefined:
      case TokenType::kUnknown: out += piece; break;
      default: append_byte_level_decoded(out, piece); break;
    }
  }
  return out;
}

std::string byte_level_token_text(const Tokenizer& tokenizer, int32_t id) {
  const std::string& piece = tokenizer.piece(id);
  switch (tokenizer.type(id)) {
    case TokenType::kControl:
    case TokenType::kUserDefined:
    case TokenType::kUnknown: return escape_invalid_utf8(piece);
    default: {
      std::string bytes;
      append_byte_level_decoded(bytes, piece);
      return escape_invalid_utf8(bytes);
    }
  }
}

}  // namespace reslens::tokenizer_detail
