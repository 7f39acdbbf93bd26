// tokenizer_from_gguf: the vocabulary and settings a GGUF file carries under `tokenizer.ggml.*`,
// read the way llama.cpp's llama_vocab::load reads them (defaults included), and validated.
#include <string>
#include <vector>

#include "reslens/error.h"
#include "tokenizer/bpe.h"
#include "tokenizer/factory.h"
#include "tokenizer/llamacpp_pre.h"
#include "tokenizer/pieces.h"
#include "tokenizer/spm.h"

namespace reslens {

namespace {

using tokenizer_detail::BpeTokenizer;
using tokenizer_detail::BpeVocab;
using tokenizer_detail::LlamaCppPreTokenizer;
using tokenizer_detail::NormalizerStep;
using tokenizer_detail::PreTokenizerStep;
using tokenizer_detail::RegexSplitter;
using tokenizer_detail::SpmTokenizer;
using tokenizer_detail::SpmVocab;

constexpr const char* kTokens = "tokenizer.ggml.tokens";
constexpr const char* kScores = "tokenizer.ggml.scores";
constexpr const char* kTypes = "tokenizer.ggml.token_type";
constexpr const char* kMerges = "tokenizer.ggml.merges";

[[noreturn]] void fail(const gguf::File& f, const std::string& message) {
  throw FormatError(f.source() + ": " + message);
}

// The array under `key`, or null when absent; FormatError when present with the wrong element kind.
const gguf::Value* find_array(const gguf::File& f, const char* key, bool of_strings) {
  const gguf::Value* v = f.find(key);
  if (v == nullptr) return nullptr;
  const bool strings = v->type == gguf::ValueType::kArray && v->array_type == gguf::ValueType::kString;
  const bool numbers = v->type == gguf::ValueType::kArray && v->array_type != gguf::ValueType::kString;
  if (of_strings ? !strings : !numbers) {
    fail(f, std::string("metadata key '") + key + "' should be an array of "
                + (of_strings ? "strings" : "numbers"));
  }
  return v;
}

std::vector<std::string> read_tokens(const gguf::File& f) {
  const gguf::Value* v = find_array(f, kTokens, true);
  if (v == nullptr) fail(f, std::string("metadata key '") + kTokens + "' is missing");
  if (v->strings.empty()) fail(f, std::string("metadata key '") + kTokens + "' is empty");
  if (v->strings.size() > static_cast<size_t>(INT32_MAX)) fail(f, "too many tokens");
  return v->strings;
}

// Scores are optional (llama.cpp uses 0 for all); when present there must be one per token.
std::vector<float> read_scores(const gguf::File& f, size_t n_tokens) {
  const gguf::Value* v = find_array(f, kScores, false);
  if (v == nullptr) return std::vector<float>(n_tokens, 0.0f);
  if (v->numbers.size() != n_tokens) {
    fail(f, std::string("'") + kScores + "' has " + std::to_string(v->numbers.size()) + " entries but '"
                + kTokens + "' has " + std::to_string(n_tokens));
  }
  std::vector<float> scores;
  scores.reserve(n_tokens);
  for (const double s : v->numbers) scores.push_back(static_cast<float>(s));
  return scores;
}

// Token types are optional (default normal). GGUF codes: 0 undefined (treated as normal), 1 normal,
// 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte.
std::vector<TokenType> read_types(const gguf::File& f, size_t n_tokens) {
  const gguf::Value* v = find_array(f, kTypes, false);
  if (v == nullptr) return std::vector<TokenType>(n_tokens, TokenType::kNormal);
  if (v->numbers.size() != n_tokens) {
    fail(f, std::string("'") + kTypes + "' has " + std::to_string(v->numbers.size()) + " entries but '"
                + kTokens + "' has " + std::to_string(n_tokens));
  }
  std::vector<TokenType> types;
  types.reserve(n_tokens);
  for (size_t i = 0; i < n_tokens; ++i) {
    const double t = v->numbers[i];
    if (t == 0 || t == 1) {
      types.push_back(TokenType::kNormal);
    } else if (t == 2) {
      types.push_back(TokenType::kUnknown);
    } else if (t == 3) {
      types.push_back(TokenType::kControl);
    } else if (t == 4) {
      types.push_back(TokenType::kUserDefined);
    } else if (t == 5) {
      types.push_back(TokenType::kUnused);
    } else if (t == 6) {
      types.push_back(TokenType::kByte);
    } else {
      fail(f, std::string("'") + kTypes + "' entry " + std::to_string(i) + " is " + std::to_string(t)
                  + ", not a token type (0..6)");
    }
  }
  return types;
}

// A special token id: -1 when absent or set to the "none" value (-1 / 0xFFFFFFFF, as llama.cpp
// writes for unused ids); FormatError when it names no token.
int32_t read_token_id(const gguf::File& f, const std::string& key, size_t n_tokens) {
  const auto v = f.get_int_opt(key);
  if (!v || *v == -1 || *v == int64_t{0xFFFFFFFF}) return -1;
  if (*v < 0 || static_cast<uint64_t>(*v) >= n_tokens) {
    fail(f, "'" + key + "' is " + std::to_string(*v) + ", outside the vocabulary of "
                + std::to_string(n_tokens) + " tokens");
  }
  return static_cast<int32_t>(*v);
}

std::unique_ptr<Tokenizer> spm_from_gguf(const gguf::File& f) {
  SpmVocab vocab;
  vocab.pieces = read_tokens(f);
  const size_t n = vocab.pieces.size();
  vocab.scores = read_scores(f, n);
  vocab.types = read_types(f, n);
  vocab.bos_id = read_token_id(f, "tokenizer.ggml.bos_token_id", n);
  vocab.eos_id = read_token_id(f, "tokenizer.ggml.eos_token_id", n);
  vocab.unk_id = read_token_id(f, "tokenizer.ggml.unknown_token_id", n);
  // llama.cpp's defaults for SPM vocabularies: BOS 1, EOS 2, UNK 0, add BOS, add a space prefix.
  if (!f.find("tokenizer.ggml.bos_token_id") && n > 1) vocab.bos_id = 1;
  if (!f.find("tokenizer.ggml.eos_token_id") && n > 2) vocab.eos_id = 2;
  if (!f.find("tokenizer.ggml.unknown_token_id")) {
    // llama.cpp assumes 0; we only take a token that is marked unknown, so that <unk> fallback
    // never emits an unrelated token.
    for (size_t i = 0; i < n && vocab.unk_id < 0; ++i) {
      if (vocab.types[i] == TokenType::kUnknown) vocab.unk_id = static_cast<int32_t>(i);
    }
  }
  vocab.add_bos = f.get_bool_opt("tokenizer.ggml.add_bos_token").value_or(true);
  vocab.add_space_prefix = f.get_bool_opt("tokenizer.ggml.add_space_prefix").value_or(true);
  if (vocab.add_bos && vocab.bos_id < 0)
    fail(f, "'tokenizer.ggml.add_bos_token' is true but there is no BOS token");
  vocab.kind = "llama-spm";
  return std::make_unique<SpmTokenizer>(std::move(vocab));
}

// `tokenizer.ggml.merges` ("left right" strings) into vocab.merges.
void read_merges(const gguf::File& f, BpeVocab& vocab) {
  const gguf::Value* merges = find_array(f, kMerges, true);
  if (merges == nullptr)
    fail(f, std::string("metadata key '") + kMerges + "' is missing (a BPE tokenizer needs it)");
  vocab.merges.reserve(merges->strings.size());
  for (size_t i = 0; i < merges->strings.size(); ++i) {
    const std::string& m = merges->strings[i];
    // "left right"; llama.cpp searches the separator from index 1 so a left part may start with ' '.
    const size_t space = m.find(' ', 1);
    if (space == std::string::npos || space + 1 >= m.size()) {
      fail(f, std::string("'") + kMerges + "' entry " + std::to_string(i)
                  + " is not of the form 'left right': '" + m + "'");
    }
    vocab.merges.emplace_back(m.substr(0, space), m.substr(space + 1));
  }
}

// `tokenizer.ggml.pre` -> the pre-tokenizer llama.cpp would pick (llamacpp_pre.cpp).
LlamaCppPreTokenizer pre_tokenizer_of(const gguf::File& f) {
  const std::string pre = f.get_string_opt("tokenizer.ggml.pre").value_or("default");
  if (auto p = tokenizer_detail::llamacpp_pre_tokenizer(pre)) return *p;
  std::string supported;
  for (const std::string& name : tokenizer_detail::llamacpp_pre_tokenizer_names())
    supported += (supported.empty() ? "" : ", ") + name;
  throw UnsupportedError(f.source() + ": BPE pre-tokenizer '" + pre
                         + "' (tokenizer.ggml.pre) is not supported (supported: " + supported + ")");
}

// A BPE vocabulary's pieces, types, merges and special ids, as every BPE tokenizer model stores them.
BpeVocab read_bpe_vocab(const gguf::File& f) {
  BpeVocab vocab;
  vocab.pieces = read_tokens(f);
  const size_t n = vocab.pieces.size();
  vocab.types = read_types(f, n);
  read_merges(f, vocab);
  vocab.bos_id = read_token_id(f, "tokenizer.ggml.bos_token_id", n);
  vocab.eos_id = read_token_id(f, "tokenizer.ggml.eos_token_id", n);
  vocab.unk_id = read_token_id(f, "tokenizer.ggml.unknown_token_id", n);
  return vocab;
}

std::unique_ptr<Tokenizer> bpe_from_gguf(const gguf::File& f) {
  const LlamaCppPreTokenizer pre = pre_tokenizer_of(f);
  BpeVocab vocab = read_bpe_vocab(f);
  // llama.cpp adds BOS by default only for its Llama 3 group; the key overrides.
  vocab.add_bos = f.get_bool_opt("tokenizer.ggml.add_bos_token").value_or(pre.add_bos);
  if (vocab.add_bos && vocab.bos_id < 0)
    fail(f, "'tokenizer.ggml.add_bos_token' is true but there is no BOS token");
  vocab.ignore_merges = pre.ignore_merges;

  // llama.cpp splits the raw text with each regex in turn, then spells each word's bytes in
  // GPT-2's alphabet.
  for (const std::string& pattern : pre.patterns) {
    PreTokenizerStep split;
    split.kind = PreTokenizerStep::Kind::kSplit;
    split.regex = std::make_shared<RegexSplitter>(pattern, f.source());
    vocab.pre_tokenizer.push_back(std::move(split));
  }
  PreTokenizerStep bytes;
  bytes.kind = PreTokenizerStep::Kind::kByteLevel;
  vocab.pre_tokenizer.push_back(std::move(bytes));
  vocab.decoding = tokenizer_detail::BpeDecoding::kByteLevel;
  vocab.kind = pre.kind;
  vocab.source = f.source();
  return std::make_unique<BpeTokenizer>(std::move(vocab));
}

// Gemma 4's tokenizer (`tokenizer.ggml.model = gemma4`), as llama.cpp runs it: BPE by merge rank
// over the text with spaces written as "▁" (no byte-level alphabet), split only between runs of
// newlines and the rest; a run of newlines that is itself a token is that token; a character no
// token spells becomes its "<0xXX>" byte tokens; BOS is always added by default (llama.cpp
// overrides a false `tokenizer.ggml.add_bos_token` for this model).
std::unique_ptr<Tokenizer> gemma4_from_gguf(const gguf::File& f) {
  if (const auto pre = f.get_string_opt("tokenizer.ggml.pre"); pre && *pre != "gemma4") {
    throw UnsupportedError(f.source() + ": tokenizer model 'gemma4' with pre-tokenizer '" + *pre
                           + "' (tokenizer.ggml.pre) is not supported (llama.cpp uses 'gemma4' for it)");
  }
  BpeVocab vocab = read_bpe_vocab(f);
  vocab.add_bos = true;
  if (vocab.bos_id < 0)
    fail(f, "a gemma4 tokenizer always adds BOS, but 'tokenizer.ggml.bos_token_id' is missing");
  NormalizerStep escape;  // llama.cpp's escape_whitespaces
  escape.kind = NormalizerStep::Kind::kReplace;
  escape.from = " ";
  escape.to = std::string(tokenizer_detail::kSpmSpace);
  vocab.normalizer = {escape};
  PreTokenizerStep split;
  split.kind = PreTokenizerStep::Kind::kSplit;
  split.regex = std::make_shared<RegexSplitter>(tokenizer_detail::gemma4_newline_pattern(), f.source());
  vocab.pre_tokenizer = {split};
  vocab.whole_newline_runs = true;
  vocab.byte_fallback = true;
  vocab.decoding = tokenizer_detail::BpeDecoding::kSentencePiece;
  vocab.strip_space_prefix = false;  // no space is prepended, so none is removed
  vocab.kind = "gemma4-bpe";
  vocab.source = f.source();
  return std::make_unique<BpeTokenizer>(std::move(vocab));
}

}  // namespace

std::unique_ptr<Tokenizer> tokenizer_from_gguf(const gguf::File& gguf) {
  const auto model = gguf.get_string_opt("tokenizer.ggml.model");
  if (!model) fail(gguf, "no tokenizer: metadata key 'tokenizer.ggml.model' is missing");
  // llama.cpp appends EOS to a prompt tokenized with special tokens when this is true; reslens
  // prompts never end in EOS, so such a model would see a different sequence here than there.
  if (gguf.get_bool_opt("tokenizer.ggml.add_eos_token").value_or(false)) {
    throw UnsupportedError(gguf.source() + ": tokenizer.ggml.add_eos_token = true is not supported (llama.cpp "
                           "appends EOS to every prompt of this model; reslens does not)");
  }
  std::unique_ptr<Tokenizer> tok;
  if (*model == "llama") tok = spm_from_gguf(gguf);
  if (*model == "gpt2") tok = bpe_from_gguf(gguf);
  if (*model == "gemma4") tok = gemma4_from_gguf(gguf);
  if (tok) {
    tok->set_chat_template(gguf.get_string_opt("tokenizer.chat_template").value_or(""));
    return tok;
  }
  throw UnsupportedError(gguf.source() + ": tokenizer model '" + *model
                         + "' (tokenizer.ggml.model) is not supported (supported: llama, gpt2, gemma4)");
}

}  // namespace reslens
