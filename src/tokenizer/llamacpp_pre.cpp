#include "tokenizer/llamacpp_pre.h"

#include <array>

#include "tokenizer/pretokenize.h"

namespace reslens::tokenizer_detail {

namespace {

// llama.cpp's LLAMA_VOCAB_PRE_TYPE_* groups that reslens reproduces. Each group's regex list is
// llama.cpp's, in PCRE2 syntax (GPT-2's, Llama 3's and Qwen2's as pretokenize.cpp spells them).
enum class Group { kDefault, kGpt2, kLlama3, kDbrx, kQwen2, kFalcon };

struct Alias {
  std::string_view pre;
  Group group;
};

// Every accepted `tokenizer.ggml.pre` value and its group (llama_vocab::impl::load). Values that
// llama.cpp maps to these groups but that are not listed here are refused: each entry is checked
// against llama.cpp's ids in pre_aliases_test.cpp, and an alias can carry settings of its own
// (special ids, add_sep) that a table entry would not show.
constexpr std::array kAliases = {
    Alias{"default", Group::kDefault},  // also an absent key (llama.cpp warns, then uses this)
    Alias{"gpt-2", Group::kGpt2},       Alias{"phi-2", Group::kGpt2},
    Alias{"mpt", Group::kGpt2},         Alias{"olmo", Group::kGpt2},  // OLMo 1 (GPT-NeoX vocabulary)
    Alias{"jais", Group::kGpt2},        Alias{"llama3", Group::kLlama3},
    Alias{"llama-v3", Group::kLlama3},  Alias{"llama-bpe", Group::kLlama3},
    Alias{"falcon3", Group::kLlama3},   Alias{"dbrx", Group::kDbrx},  // also OLMo 2 (cl100k vocabulary)
    Alias{"smaug-bpe", Group::kDbrx},   Alias{"qwen2", Group::kQwen2},
    Alias{"deepseek-r1-qwen", Group::kQwen2}, Alias{"stablelm2", Group::kQwen2},
    Alias{"falcon", Group::kFalcon},
};

// Runs of punctuation, isolated first: Hugging Face's `Punctuation` pre-tokenizer (Unicode P plus
// the ASCII symbols Rust's is_ascii_punctuation counts), as llama.cpp writes it for its default
// list. Falcon's own list adds the backtick.
constexpr std::string_view kPunctuationRuns = R"([\p{P}\$\+<=>\^~\|]+)";
constexpr std::string_view kFalconPunctuationRuns = R"([\p{P}\$\+<=>\^~\|`]+)";
constexpr std::string_view kDigitRuns = R"(\p{N}+)";
constexpr std::string_view kAsciiDigitTriples = "[0-9][0-9][0-9]";

LlamaCppPreTokenizer make(Group group) {
  LlamaCppPreTokenizer p;
  switch (group) {
    case Group::kDefault:
      // llama.cpp's fallback list (a GGUF without `tokenizer.ggml.pre`, e.g. older GPT-NeoX
      // conversions): not GPT-2's splitting, so " (" is two words here and one in GPT-2.
      p.kind = "default-bpe";
      p.patterns = {std::string(kPunctuationRuns), pretokenizer_pattern(PreTokenizerKind::kGpt2),
                    std::string(kDigitRuns), std::string(kAsciiDigitTriples)};
      break;
    case Group::kGpt2:
      p.kind = "gpt2-bpe";
      p.patterns = {pretokenizer_pattern(PreTokenizerKind::kGpt2)};
      break;
    case Group::kLlama3:
      p.kind = "llama3-bpe";
      p.patterns = {pretokenizer_pattern(PreTokenizerKind::kLlama3)};
      p.ignore_merges = true;
      p.add_bos = true;
      break;
    case Group::kDbrx:
      // Llama 3's regex, but neither ignore_merges nor a default BOS (llama.cpp sets those only
      // for its LLAMA3 group).
      p.kind = "dbrx-bpe";
      p.patterns = {pretokenizer_pattern(PreTokenizerKind::kLlama3)};
      break;
    case Group::kQwen2:
      p.kind = "qwen2-bpe";
      p.patterns = {pretokenizer_pattern(PreTokenizerKind::kQwen2)};
      break;
    case Group::kFalcon:
      // Punctuation runs, then GPT-2's regex inside each piece, then ASCII digits in threes
      // ("12345" -> "123", "45").
      p.kind = "falcon-bpe";
      p.patterns = {std::string(kFalconPunctuationRuns), pretokenizer_pattern(PreTokenizerKind::kGpt2),
                    std::string(kAsciiDigitTriples)};
      break;
  }
  return p;
}

}  // namespace

std::optional<LlamaCppPreTokenizer> llamacpp_pre_tokenizer(std::string_view pre) {
  for (const Alias& a : kAliases) {
    if (a.pre == pre) return make(a.group);
  }
  return std::nullopt;
}

const std::vector<std::string>& llamacpp_pre_tokenizer_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const Alias& a : kAliases) v.emplace_back(a.pre);
    return v;
  }();
  return names;
}

std::string gemma4_newline_pattern() {
  // llama.cpp's "[^\n]+|[\n]+" (LLAMA_VOCAB_PRE_TYPE_GEMMA4): its BPE never merges across a
  // newline, and a run of newlines gets the rule of BpeVocab::whole_newline_runs.
  return R"([^\n]+|\n+)";
}

}  // namespace reslens::tokenizer_detail
