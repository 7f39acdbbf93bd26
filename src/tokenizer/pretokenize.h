// Pre-tokenization: splitting text into words with a regular expression before BPE runs on each
// word. Uses PCRE2 (UTF-8, Unicode properties). The named patterns are the ones GPT-2, Llama 3 and
// Qwen2 publish in their tokenizer.json and that llama.cpp uses for `tokenizer.ggml.pre`.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace reslens::tokenizer_detail {

enum class PreTokenizerKind { kGpt2, kLlama3, kQwen2 };

/// The split pattern of a known pre-tokenizer, in PCRE2 syntax. `\s` is written out as the
/// Unicode White_Space set (what llama.cpp's splitters and HF's regex engines use), because PCRE2's
/// own `\s` leaves out U+0085.
std::string pretokenizer_pattern(PreTokenizerKind kind);

/// A compiled regular expression that splits text the way Hugging Face's `Split` pre-tokenizer with
/// behaviour "Isolated" and llama.cpp's `unicode_regex_split` do: every match is a word, and so is
/// every stretch of text between matches. Safe to share between threads.
class RegexSplitter {
 public:
  /// Compiles `pattern`. A pattern PCRE2 rejects throws FormatError naming `source` (where the
  /// pattern came from) and PCRE2's message.
  RegexSplitter(std::string_view pattern, const std::string& source);
  ~RegexSplitter();
  RegexSplitter(const RegexSplitter&) = delete;
  RegexSplitter& operator=(const RegexSplitter&) = delete;

  /// Appends the words of `text` (valid UTF-8) to `out`, in order; together they cover `text`.
  /// Throws UnsupportedError if PCRE2 gives up (match limit) on pathological input.
  void split(std::string_view text, std::vector<std::string_view>& out) const;

  /// As split, with Hugging Face's behaviour "MergedWithPrevious": a match is joined to the text
  /// before it when that text is not itself a match ("a-b--" on "-": "a-", "b-", "-").
  void split_merged_with_previous(std::string_view text, std::vector<std::string_view>& out) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct Compiled;  // keeps pcre2.h out of this header
  /// Calls on_piece(piece, is_match) for the matches and the stretches between them, in order;
  /// together they cover `text`. Defined (and used only) in pretokenize.cpp.
  template <typename OnPiece>
  void for_each_piece(std::string_view text, OnPiece&& on_piece) const;
  std::string pattern_;
  std::unique_ptr<Compiled> compiled_;
};

}  // namespace reslens::tokenizer_detail
