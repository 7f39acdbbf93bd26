#include "tokenizer/pretokenize.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/utf8.h"
#include "reslens/error.h"

namespace reslens::tokenizer_detail {

namespace {

// Unicode White_Space: U+0009..U+000D, U+0085 and the Z categories (U+0020, U+00A0, U+1680,
// U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000). Used inside character classes.
constexpr std::string_view kWhiteSpace = R"(\t\n\x0B\f\r\x{85}\p{Z})";

// Expands the placeholders "{ws}" (white space, for use inside [...]) in a pattern.
std::string expand(std::string_view pattern) {
  std::string out;
  for (size_t i = 0; i < pattern.size();) {
    if (pattern.substr(i, 4) == "{ws}") {
      out += kWhiteSpace;
      i += 4;
    } else {
      out += pattern[i++];
    }
  }
  return out;
}

}  // namespace

std::string pretokenizer_pattern(PreTokenizerKind kind) {
  switch (kind) {
    case PreTokenizerKind::kGpt2:
      // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
      return expand(
          R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^{ws}\p{L}\p{N}]+|[{ws}]+(?![^{ws}])|[{ws}]+)");
    case PreTokenizerKind::kLlama3:
      // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
      // \s*[\r\n]+|\s+(?!\S)|\s+   (case folding of the contractions spelled out, as llama.cpp does)
      return expand(
          R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3})"
          R"(| ?[^{ws}\p{L}\p{N}]+[\r\n]*|[{ws}]*[\r\n]+|[{ws}]+(?![^{ws}])|[{ws}]+)");
    case PreTokenizerKind::kQwen2:
      // As Llama 3, but digits one at a time (\p{N} instead of \p{N}{1,3}).
      return expand(
          R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N})"
          R"(| ?[^{ws}\p{L}\p{N}]+[\r\n]*|[{ws}]*[\r\n]+|[{ws}]+(?![^{ws}])|[{ws}]+)");
  }
  return {};
}

struct RegexSplitter::Compiled {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Compiled() { pcre2_code_free(code); }
};

namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  const int n = pcre2_get_error_message(code, buffer, sizeof(buffer));
  if (n < 0) return "PCRE2 error " + std::to_string(code);
  return std::string(reinterpret_cast<const char*>(buffer), static_cast<size_t>(n));
}

struct MatchData {
  explicit MatchData(const pcre2_code* code) : data(pcre2_match_data_create_from_pattern(code, nullptr)) {
    if (data == nullptr) throw std::bad_alloc();
  }
  ~MatchData() { pcre2_match_data_free(data); }
  MatchData(const MatchData&) = delete;
  MatchData& operator=(const MatchData&) = delete;
  pcre2_match_data* data;
};

}  // namespace

RegexSplitter::RegexSplitter(std::string_view pattern, const std::string& source)
    : pattern_(pattern), compiled_(std::make_unique<Compiled>()) {
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  // \C (one code unit) could end a word inside a character; the words must stay valid UTF-8
  // because later steps match them without re-checking.
  constexpr uint32_t kOptions = PCRE2_UTF | PCRE2_UCP | PCRE2_NEVER_BACKSLASH_C;
  compiled_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern_.data()), pattern_.size(), kOptions,
                                  &error, &error_offset, nullptr);
  if (compiled_->code == nullptr) {
    throw FormatError(source + ": pre-tokenizer regex is not valid (" + pcre2_message(error) + " at offset "
                      + std::to_string(error_offset) + "): " + pattern_);
  }
  // JIT makes splitting several times faster; without it (e.g. no JIT support) the interpreter runs.
  compiled_->jit = pcre2_jit_compile(compiled_->code, PCRE2_JIT_COMPLETE) == 0;
}

RegexSplitter::~RegexSplitter() = default;

template <typename OnPiece>
void RegexSplitter::for_each_piece(std::string_view text, OnPiece&& on_piece) const {
  MatchData match(compiled_->code);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t gap_start = 0;  // start of the text not yet covered by a word
  size_t pos = 0;
  uint32_t options = PCRE2_NO_UTF_CHECK;  // callers validate UTF-8 once, up front
  while (pos < text.size()) {
    int rc = pcre2_match(compiled_->code, subject, text.size(), pos, options, match.data, nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      // The JIT's small default stack ran out: the interpreter has no such limit.
      options |= PCRE2_NO_JIT;
      rc = pcre2_match(compiled_->code, subject, text.size(), pos, options, match.data, nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      throw UnsupportedError("pre-tokenizer regex failed on the text at byte offset " + std::to_string(pos)
                             + ": " + pcre2_message(rc));
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.data);
    const size_t start = ovector[0];
    const size_t end = ovector[1];
    if (end <= start) {
      // An empty match splits nothing: step over one character and search again.
      pos = start + utf8_sequence_length(static_cast<uint8_t>(text[start < text.size() ? start : 0]));
      continue;
    }
    if (start > gap_start) on_piece(text.substr(gap_start, start - gap_start), false);
    on_piece(text.substr(start, end - start), true);
    gap_start = pos = end;
  }
  if (gap_start < text.size()) on_piece(text.substr(gap_start), false);
}

void RegexSplitter::split(std::string_view text, std::vector<std::string_view>& out) const {
  for_each_piece(text, [&](std::string_view piece, bool /*is_match*/) { out.push_back(piece); });
}

void RegexSplitter::split_merged_with_previous(std::string_view text, std::vector<std::string_view>& out) const {
  const size_t first = out.size();
  bool previous_match = false;
  for_each_piece(text, [&](std::string_view piece, bool is_match) {
    if (is_match && !previous_match && out.size() > first) {
      // Pieces are adjacent slices of `text`: widen the previous one over the match.
      out.back() = std::string_view(out.back().data(), out.back().size() + piece.size());
    } else {
      out.push_back(piece);
    }
    previous_match = is_match;
  });
}

}  // namespace reslens::tokenizer_detail
