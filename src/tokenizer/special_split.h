// Splitting the special tokens written in a text out of it before the text is encoded (a chat
// prompt's "<|im_start|>", a literal "<s>", GPT-NeoX's whitespace-run tokens).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace reslens::tokenizer_detail {

/// A stretch of the text: ordinary text [begin, end) when token < 0, else one special token.
struct TextPart {
  size_t begin = 0;
  size_t end = 0;
  int32_t token = -1;
};

/// The parts of `text` once every occurrence of each candidate's piece is split out. Candidates
/// are (piece, id), non-empty pieces in the order to match them: llama.cpp's
/// tokenizer_st_partition takes the longest first and splits each one's occurrences out of what is
/// still ordinary text, left to right; so does this. Ordinary parts are never empty.
std::vector<TextPart> split_special_tokens(std::string_view text,
                                           std::span<const std::pair<std::string_view, int32_t>> candidates);

}  // namespace reslens::tokenizer_detail
