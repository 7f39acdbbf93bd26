// Rank-based BPE as Hugging Face's `tokenizers` runs it, covering both families we load:
//   * byte-level BPE (GPT-2, Llama 3, Qwen2): regex pre-tokenizer, bytes written in GPT-2's
//     byte alphabet, merges by rank, no unknown tokens;
//   * SentencePiece-style BPE from tokenizer.json (TinyStories, Llama 2 HF): normalizer prepends
//     "▁" and writes spaces as "▁", merges by rank over the whole text, byte fallback to "<0xXX>"
//     tokens and, failing that, `<unk>` (a run of unknown characters fused into one).
// A character that none of these can spell (no token, no byte fallback, no `<unk>`) is refused with
// an InvalidArgument naming it and the tokenizer file. Hugging Face and llama.cpp drop it silently,
// which would explain the prediction for a different text than the one given.
// The pipeline is data (a BpeVocab) filled by the GGUF, vocab.json/merges.txt and tokenizer.json
// loaders; this class only runs it. Pre-token -> ids results are cached, as HF does.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "reslens/tokenizer.h"
#include "tokenizer/bpe_merges.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/unicode_normalize.h"

namespace reslens::tokenizer_detail {

/// One normalizer step (HF `normalizers`): applied to the whole text before pre-tokenization.
struct NormalizerStep {
  enum class Kind { kPrepend, kReplace, kUnicode };
  Kind kind = Kind::kReplace;
  std::string from;  ///< kReplace: the literal to replace (non-empty)
  std::string to;    ///< kReplace: its replacement; kPrepend: the prefix (added to non-empty text)
  UnicodeForm form = UnicodeForm::kNFC;  ///< kUnicode: the normalization form (NFC, NFD, NFKC, NFKD)
};

/// One pre-tokenizer step (HF `pre_tokenizers`): maps the list of words to a finer list.
struct PreTokenizerStep {
  enum class Kind { kSplit, kByteLevel, kMetaspace };
  enum class Prepend { kAlways, kFirst, kNever };
  Kind kind = Kind::kSplit;
  /// kSplit: the pattern; kByteLevel: GPT-2's pattern when `use_regex`, else null.
  std::shared_ptr<const RegexSplitter> regex;
  bool add_prefix_space = false;       ///< kByteLevel: prepend ' ' to a word not starting with one
  std::string replacement;             ///< kMetaspace: the space marker ("▁")
  Prepend prepend = Prepend::kAlways;  ///< kMetaspace
  bool split = true;                   ///< kMetaspace: split before each marker
  bool merged_with_previous = false;   ///< kSplit: HF behaviour "MergedWithPrevious", else "Isolated"
};

enum class BpeDecoding { kByteLevel, kSentencePiece };

/// Everything a BpeTokenizer is built from.
struct BpeVocab {
  std::vector<std::string> pieces;
  std::vector<TokenType> types;                             ///< same length as pieces
  std::vector<std::pair<std::string, std::string>> merges;  ///< in rank order (rank = index)
  std::vector<NormalizerStep> normalizer;
  std::vector<PreTokenizerStep> pre_tokenizer;
  bool byte_fallback = false;  ///< unknown characters become "<0xXX>" tokens when all exist
  bool fuse_unk = false;       ///< a run of unknown characters gives one <unk>
  bool ignore_merges = false;  ///< a word that is itself a token is emitted whole (Llama 3)
  /// A word made only of newlines that is itself a token is emitted whole (llama.cpp's rule for
  /// Gemma 4, whose merges alone would split some runs differently from its tokenizer.json).
  bool whole_newline_runs = false;
  BpeDecoding decoding = BpeDecoding::kByteLevel;
  bool strip_space_prefix = false;  ///< kSentencePiece: decode drops the prefix space
  int32_t bos_id = -1;
  int32_t eos_id = -1;
  int32_t unk_id = -1;
  bool add_bos = false;
  std::string kind;
  std::string source;  ///< the file the vocabulary came from (named by encoding errors)
};

class BpeTokenizer final : public Tokenizer {
 public:
  /// Merges whose parts or result are not in the vocabulary are dropped (they could never apply).
  explicit BpeTokenizer(BpeVocab vocab);

  std::string decode(std::span<const int32_t> ids) const override;
  std::string token_text(int32_t id) const override;
  std::string token_bytes(int32_t id) const override;

  size_t n_merges() const { return merges_.size(); }

  /// The words `text` is split into before BPE (after normalization; byte-level words are in the
  /// byte alphabet). Exposed for tests and `reslens tokenize --verbose`. `at_start`: the text
  /// begins the prompt (Metaspace's prepend_scheme "first" prefixes only that stretch).
  std::vector<std::string> pre_tokenize(std::string_view text, bool at_start = true) const;

 private:
  void encode_text(std::string_view text, size_t offset, std::vector<int32_t>& out) const override;
  std::string normalize(std::string_view text) const;
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;
  /// Throws InvalidArgument naming the character at byte `at` of `word`, which no token can spell.
  [[noreturn]] void refuse_character(std::string_view word, size_t at) const;

  std::vector<NormalizerStep> normalizer_;
  std::vector<PreTokenizerStep> pre_tokenizer_;
  BpeMerges merges_;
  bool byte_fallback_ = false;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
  bool whole_newline_runs_ = false;
  BpeDecoding decoding_ = BpeDecoding::kByteLevel;
  bool strip_space_prefix_ = false;
  bool byte_level_words_ = false;  ///< words are spelled in the byte-level alphabet
  std::string source_;
  std::array<int32_t, 256> byte_ids_{};  ///< "<0xXX>" token of each byte, or -1

  // Word cache (HF keeps one too): text is Zipfian, so most words repeat. Bounded: once full it
  // stops growing. Guarded because encode() is const and may run on several threads.
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace reslens::tokenizer_detail
