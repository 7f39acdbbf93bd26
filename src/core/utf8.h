// UTF-8 helpers shared by the tokenizers and the CLI: validation with the byte offset of the first
// bad sequence, and code point encoding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace reslens {

/// One character decoded: its code point and byte length; len 0 when the bytes at the offset are not a
/// valid UTF-8 sequence (overlong, surrogate, past U+10FFFF, cut short).
struct Utf8Char {
  uint32_t cp = 0;
  size_t len = 0;
};
Utf8Char decode_utf8_at(std::string_view text, size_t offset);

/// Byte offset of the first invalid UTF-8 sequence (overlong forms, surrogates and code points past
/// U+10FFFF are invalid), or std::string_view::npos when `text` is valid.
size_t find_invalid_utf8(std::string_view text);

/// Throws InvalidArgument("<what> is not valid UTF-8 (byte offset N)") when `text` is invalid.
void require_valid_utf8(std::string_view text, std::string_view what);

/// Length of the UTF-8 sequence that starts with byte `lead` (1 for continuation/invalid bytes).
size_t utf8_sequence_length(uint8_t lead);

/// Appends the UTF-8 encoding of code point `cp`.
void append_utf8(std::string& out, uint32_t cp);

}  // namespace reslens
