// Decoding and display for SentencePiece-style vocabularies, where a piece writes a space as "▁"
// and raw bytes as "<0xXX>" byte tokens. Shared by the score-based SPM tokenizer (GGUF `llama`,
// llama2.c) and the Hugging Face SentencePiece-style BPE.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "reslens/tokenizer.h"

namespace reslens::tokenizer_detail {

/// Concatenates the tokens' text: "▁" becomes a space, byte tokens become their raw byte, control
/// tokens render as nothing. With `strip_space_prefix`, the one leading space that the encoder's
/// space prefix added is removed (HF's `Strip` decoder, llama.cpp's detokenizer), so
/// decode(encode(s)) == s. Throws OutOfRange for an id outside the vocabulary.
std::string spm_decode(const Tokenizer& tokenizer, std::span<const int32_t> ids, bool strip_space_prefix);

/// One token for display: normal and user-defined pieces with "▁" shown as a space; byte, control
/// and unknown tokens show their piece ("<0x0A>", "<s>", "<unk>").
std::string spm_token_text(const Tokenizer& tokenizer, int32_t id);

}  // namespace reslens::tokenizer_detail
