// Unicode normalization forms (NFC, NFD, NFKC, NFKD) of UTF-8 text, for tokenizer.json normalizers
// (Qwen2's and GPT-NeoX's tokenizers compose with NFC before pre-tokenizing). The tables come from
// Debian's libutf8proc; no header here exposes it.
#pragma once

#include <string>
#include <string_view>

namespace reslens::tokenizer_detail {

enum class UnicodeForm { kNFC, kNFD, kNFKC, kNFKD };

/// `text` (valid UTF-8) in normalization form `form`. Throws InvalidArgument when the library
/// rejects the text (invalid UTF-8, or an unassigned code point it cannot map).
std::string unicode_normalize(std::string_view text, UnicodeForm form);

}  // namespace reslens::tokenizer_detail
