// Small helpers on token pieces shared by the tokenizers: the SentencePiece space marker, byte
// pieces ("<0x0A>"), literal replacement, and a display form for bytes that are not valid UTF-8.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace reslens::tokenizer_detail {

/// U+2581 LOWER ONE EIGHTH BLOCK: SentencePiece writes a space as this character inside pieces.
inline constexpr std::string_view kSpmSpace = "\xE2\x96\x81";

/// `s` with every occurrence of `from` (non-empty) replaced by `to`.
std::string replace_all(std::string_view s, std::string_view from, std::string_view to);

/// The byte a SentencePiece byte piece stands for ("<0x0A>" -> 10; either hex case), or -1 when
/// `piece` is not of that exact form.
int parse_byte_piece(std::string_view piece);

/// The SentencePiece byte piece of `byte`: "<0x0A>" (upper-case hex, as SentencePiece writes it).
std::string byte_piece(uint8_t byte);

/// `bytes` with every byte that is not part of a valid UTF-8 sequence written as "<0xXX>", so the
/// result is valid UTF-8 (used for display of partial characters).
std::string escape_invalid_utf8(std::string_view bytes);

}  // namespace reslens::tokenizer_detail
