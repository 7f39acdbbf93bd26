// GPT-2's byte-level alphabet: every byte 0..255 is written as one printable Unicode character
// (printable Latin-1 bytes stand for themselves, the other 68 become U+0100..U+0143, so a space is
// "Ġ" U+0120 and a newline "Ċ" U+010A). Byte-level BPE vocabularies (GPT-2, Llama 3, Qwen2) spell
// their pieces in this alphabet.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "reslens/tokenizer.h"

namespace reslens::tokenizer_detail {

/// Appends `bytes` written in the byte-level alphabet.
void append_byte_level(std::string& out, std::string_view bytes);

/// Appends the bytes that the byte-level string `piece` stands for. A character outside the
/// alphabet is copied as its UTF-8 (no vocabulary we know has one; llama.cpp marks it instead).
void append_byte_level_decoded(std::string& out, std::string_view piece);

/// Decoding for byte-level vocabularies: normal tokens give their bytes, user-defined (added)
/// tokens their piece as written, control tokens nothing. Throws OutOfRange for a bad id.
std::string byte_level_decode(const Tokenizer& tokenizer, std::span<const int32_t> ids);

/// One token for display: its bytes, with bytes that are not valid UTF-8 on their own shown as
/// "<0xE6>"; control and user-defined tokens show their piece.
std::string byte_level_token_text(const Tokenizer& tokenizer, int32_t id);

}  // namespace reslens::tokenizer_detail
