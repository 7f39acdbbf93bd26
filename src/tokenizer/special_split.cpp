#include "tokenizer/special_split.h"

namespace reslens::tokenizer_detail {

std::vector<TextPart> split_special_tokens(std::string_view text,
                                           std::span<const std::pair<std::string_view, int32_t>> candidates) {
  std::vector<TextPart> parts;
  if (!text.empty()) parts.push_back({0, text.size(), -1});
  std::vector<TextPart> next;
  for (const auto& [piece, id] : candidates) {
    if (piece.empty()) continue;
    bool found = false;
    next.clear();
    for (const TextPart& part : parts) {
      if (part.token >= 0) {
        next.push_back(part);
        continue;
      }
      const std::string_view upto = text.substr(0, part.end);  // a match must end inside the part
      size_t from = part.begin;
      for (size_t at = upto.find(piece, from); at != std::string_view::npos; at = upto.find(piece, from)) {
        if (at > from) next.push_back({from, at, -1});
        next.push_back({at, at + piece.size(), id});
        from = at + piece.size();
        found = true;
      }
      if (from < part.end) next.push_back({from, part.end, -1});
    }
    if (found) parts.swap(next);
  }
  return parts;
}

}  // namespace reslens::tokenizer_detail
