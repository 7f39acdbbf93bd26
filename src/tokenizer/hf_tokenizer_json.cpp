// tokenizer.json -> BpeTokenizer. The format is the `tokenizers` library's serde output: a `model`
// (here BPE: vocab, merges, unk_token, byte_fallback, fuse_unk, ignore_merges), optional
// `normalizer`, `pre_tokenizer`, `post_processor` and `decoder` (each a {"type": ...} object,
// possibly a "Sequence" of them), and `added_tokens`. We accept exactly the components whose
// behaviour BpeTokenizer reproduces and name anything else in an UnsupportedError, rather than
// tokenizing differently from the model's own tokenizer.
#include "tokenizer/hf_tokenizer_json.h"

#include <nlohmann/json.hpp>

#include "reslens/error.h"
#include "tokenizer/bpe.h"
#include "tokenizer/fuzz_entry.h"
#include "tokenizer/pieces.h"

namespace reslens::tokenizer_detail {

namespace {

using nlohmann::json;

// Ids beyond this are not a real vocabulary (the largest are ~260k); refusing them bounds memory.
constexpr int64_t kMaxVocab = int64_t{1} << 21;
// Sequences nest at most a level or two in practice; the bound keeps recursion shallow on hostile input.
constexpr int kMaxNesting = 16;

class Parser {
 public:
  Parser(const std::string& source, const HfTokenizerConfig& config) : source_(source), config_(config) {}

  std::unique_ptr<Tokenizer> build(const json& root);

 private:
  [[noreturn]] void fail(const std::string& message) const { throw FormatError(source_ + ": " + message); }
  [[noreturn]] void unsupported(const std::string& what) const {
    throw UnsupportedError(source_ + ": " + what + " is not supported");
  }

  const json* member(const json& obj, const char* key) const {
    const auto it = obj.find(key);
    return it == obj.end() || it->is_null() ? nullptr : &*it;
  }
  std::string string_member(const json& obj, const char* key, const std::string& where) const {
    const json* v = member(obj, key);
    if (v == nullptr || !v->is_string()) fail(where + " needs a string '" + key + "'");
    return v->get<std::string>();
  }
  bool bool_member(const json& obj, const char* key, bool fallback, const std::string& where) const {
    const json* v = member(obj, key);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) fail(where + ": '" + key + "' should be true or false");
    return v->get<bool>();
  }
  std::string type_of(const json& component, const std::string& where) const {
    if (!component.is_object()) fail(where + " should be an object");
    return string_member(component, "type", where);
  }

  void parse_model(const json& model);
  void parse_added_tokens(const json& added);
  void parse_normalizer(const json& n, int depth);
  void parse_pre_tokenizer(const json& p, int depth);
  void parse_post_processor(const json& p, int depth);
  int32_t id_of(const std::string& piece) const;

  const std::string& source_;
  const HfTokenizerConfig& config_;
  BpeVocab vocab_;
  std::vector<char> has_piece_;
  bool byte_level_ = false;
  bool space_prefix_ = false;                // the encoder prepends "▁" (normalizer or Metaspace)
  std::optional<std::string> template_bos_;  // special token a TemplateProcessing puts first
  std::optional<int32_t> template_bos_id_;
};

int32_t Parser::id_of(const std::string& piece) const {
  for (size_t i = 0; i < vocab_.pieces.size(); ++i) {
    if (has_piece_[i] && vocab_.pieces[i] == piece) return static_cast<int32_t>(i);
  }
  return -1;
}

void Parser::parse_model(const json& model) {
  if (!model.is_object()) fail("'model' should be an object");
  std::string type;
  if (const json* t = member(model, "type")) {
    if (!t->is_string()) fail("'model.type' should be a string");
    type = t->get<std::string>();
  } else if (member(model, "merges") != nullptr) {
    type = "BPE";  // files from older `tokenizers` versions omit the tag
  } else {
    fail("'model' has no 'type'");
  }
  if (type != "BPE") unsupported("tokenizer model type '" + type + "' (supported: BPE)");

  const json* vocab = member(model, "vocab");
  if (vocab == nullptr || !vocab->is_object()) fail("'model.vocab' should be an object of piece -> id");
  for (const auto& [piece, id] : vocab->items()) {
    if (!id.is_number_integer()) fail("'model.vocab' entry '" + piece + "' has a non-integer id");
    const auto value = id.get<int64_t>();
    if (value < 0 || value >= kMaxVocab)
      fail("'model.vocab' entry '" + piece + "' has id " + std::to_string(value));
    const auto index = static_cast<size_t>(value);
    if (index >= vocab_.pieces.size()) {
      vocab_.pieces.resize(index + 1);
      has_piece_.resize(index + 1, 0);
    }
    if (has_piece_[index]) fail("'model.vocab' gives id " + std::to_string(value) + " to two pieces");
    vocab_.pieces[index] = piece;
    has_piece_[index] = 1;
  }

  if (const json* merges = member(model, "merges")) {
    if (!merges->is_array()) fail("'model.merges' should be an array");
    vocab_.merges.reserve(merges->size());
    for (const json& m : *merges) {
      if (m.is_string()) {
        // "left right": exactly one separating space, as `tokenizers` requires.
        const auto s = m.get<std::string>();
        const size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
          fail("merge '" + s + "' is not of the form 'left right'");
        }
        vocab_.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        vocab_.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      } else {
        fail("'model.merges' entries should be \"left right\" strings or [left, right] pairs");
      }
    }
  }
  vocab_.byte_fallback = bool_member(model, "byte_fallback", false, "'model'");
  vocab_.fuse_unk = bool_member(model, "fuse_unk", false, "'model'");
  vocab_.ignore_merges = bool_member(model, "ignore_merges", false, "'model'");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (const json* v = member(model, key);
        v != nullptr && !(v->is_string() && v->get<std::string>().empty())) {
      unsupported(std::string("BPE '") + key + "'");
    }
  }
  if (const json* d = member(model, "dropout");
      d != nullptr && !(d->is_number() && d->get<double>() <= 0.0)) {
    unsupported("BPE dropout (random segmentation)");
  }
}

void Parser::parse_added_tokens(const json& added) {
  if (!added.is_array()) fail("'added_tokens' should be an array");
  for (const json& t : added) {
    if (!t.is_object()) fail("'added_tokens' entries should be objects");
    const json* id = member(t, "id");
    if (id == nullptr || !id->is_number_integer()) fail("an added token has no integer 'id'");
    const auto value = id->get<int64_t>();
    if (value < 0 || value >= kMaxVocab) fail("added token id " + std::to_string(value) + " is out of range");
    const std::string content = string_member(t, "content", "an added token");
    const auto index = static_cast<size_t>(value);
    if (index >= vocab_.pieces.size()) {
      vocab_.pieces.resize(index + 1);
      has_piece_.resize(index + 1, 0);
      vocab_.types.resize(index + 1, TokenType::kNormal);
    }
    if (!has_piece_[index]) {
      vocab_.pieces[index] = content;
      has_piece_[index] = 1;
    }
    vocab_.types[index] =
        bool_member(t, "special", false, "an added token") ? TokenType::kControl : TokenType::kUserDefined;
  }
}

void Parser::parse_normalizer(const json& n, int depth) {
  if (depth > kMaxNesting) fail("normalizers nest too deeply");
  const std::string type = type_of(n, "'normalizer'");
  if (type == "Sequence") {
    const json* list = member(n, "normalizers");
    if (list == nullptr || !list->is_array()) fail("a Sequence normalizer needs a 'normalizers' array");
    for (const json& child : *list) parse_normalizer(child, depth + 1);
  } else if (type == "Prepend") {
    NormalizerStep step;
    step.kind = NormalizerStep::Kind::kPrepend;
    step.to = string_member(n, "prepend", "the Prepend normalizer");
    if (step.to == kSpmSpace) space_prefix_ = true;
    vocab_.normalizer.push_back(std::move(step));
  } else if (type == "Replace") {
    const json* pattern = member(n, "pattern");
    if (pattern == nullptr || !pattern->is_object()) fail("the Replace normalizer needs a 'pattern' object");
    if (member(*pattern, "String") == nullptr) unsupported("a Replace normalizer with a regex pattern");
    NormalizerStep step;
    step.kind = NormalizerStep::Kind::kReplace;
    step.from = string_member(*pattern, "String", "the Replace normalizer's pattern");
    step.to = string_member(n, "content", "the Replace normalizer");
    if (step.from.empty()) fail("the Replace normalizer's pattern is empty");
    vocab_.normalizer.push_back(std::move(step));
  } else if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    NormalizerStep step;
    step.kind = NormalizerStep::Kind::kUnicode;
    step.form = type == "NFC"    ? UnicodeForm::kNFC
                : type == "NFD"  ? UnicodeForm::kNFD
                : type == "NFKC" ? UnicodeForm::kNFKC
                                 : UnicodeForm::kNFKD;
    vocab_.normalizer.push_back(std::move(step));
  } else {
    unsupported("normalizer '" + type + "' (supported: Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD)");
  }
}

void Parser::parse_pre_tokenizer(const json& p, int depth) {
  if (depth > kMaxNesting) fail("pre-tokenizers nest too deeply");
  const std::string type = type_of(p, "'pre_tokenizer'");
  PreTokenizerStep step;
  if (type == "Sequence") {
    const json* list = member(p, "pretokenizers");
    if (list == nullptr || !list->is_array()) fail("a Sequence pre-tokenizer needs a 'pretokenizers' array");
    for (const json& child : *list) parse_pre_tokenizer(child, depth + 1);
    return;
  }
  if (type == "ByteLevel") {
    step.kind = PreTokenizerStep::Kind::kByteLevel;
    // `tokenizers` defaults: add_prefix_space true, use_regex true.
    step.add_prefix_space = bool_member(p, "add_prefix_space", true, "the ByteLevel pre-tokenizer");
    if (bool_member(p, "use_regex", true, "the ByteLevel pre-tokenizer")) {
      step.regex = std::make_shared<RegexSplitter>(pretokenizer_pattern(PreTokenizerKind::kGpt2), source_);
    }
    byte_level_ = true;
  } else if (type == "Split") {
    step.kind = PreTokenizerStep::Kind::kSplit;
    const json* pattern = member(p, "pattern");
    if (pattern == nullptr || !pattern->is_object()) fail("the Split pre-tokenizer needs a 'pattern' object");
    std::string regex;
    if (member(*pattern, "Regex") != nullptr) {
      regex = string_member(*pattern, "Regex", "the Split pattern");
    } else {
      // A literal: quote it for PCRE2 (\Q...\E cannot quote a literal that itself contains \E).
      const std::string literal = string_member(*pattern, "String", "the Split pattern");
      if (literal.empty()) fail("the Split pre-tokenizer's pattern is empty");
      regex = "\\Q" + replace_all(literal, "\\E", "\\E\\\\E\\Q") + "\\E";
    }
    const std::string behavior = member(p, "behavior")
                                     ? string_member(p, "behavior", "the Split pre-tokenizer")
                                     : std::string("Isolated");
    // MergedWithPrevious: Gemma's tokenizer.json splits on " " that way (after its normalizer has
    // written every space as "▁", so the split finds nothing).
    if (behavior != "Isolated" && behavior != "MergedWithPrevious")
      unsupported("Split pre-tokenizer behavior '" + behavior + "' (supported: Isolated, MergedWithPrevious)");
    step.merged_with_previous = behavior == "MergedWithPrevious";
    if (bool_member(p, "invert", false, "the Split pre-tokenizer"))
      unsupported("an inverted Split pre-tokenizer");
    step.regex = std::make_shared<RegexSplitter>(regex, source_);
  } else if (type == "Metaspace") {
    step.kind = PreTokenizerStep::Kind::kMetaspace;
    step.replacement = member(p, "replacement")
                           ? string_member(p, "replacement", "the Metaspace pre-tokenizer")
                           : std::string(kSpmSpace);
    if (step.replacement.empty()) fail("the Metaspace replacement is empty");
    if (member(p, "prepend_scheme") != nullptr) {
      const std::string scheme = string_member(p, "prepend_scheme", "the Metaspace pre-tokenizer");
      if (scheme == "always") {
        step.prepend = PreTokenizerStep::Prepend::kAlways;
      } else if (scheme == "first") {
        step.prepend = PreTokenizerStep::Prepend::kFirst;
      } else if (scheme == "never") {
        step.prepend = PreTokenizerStep::Prepend::kNever;
      } else {
        fail("unknown Metaspace prepend_scheme '" + scheme + "'");
      }
    } else {
      const bool add = bool_member(p, "add_prefix_space", true, "the Metaspace pre-tokenizer");
      step.prepend = add ? PreTokenizerStep::Prepend::kAlways : PreTokenizerStep::Prepend::kNever;
    }
    step.split = bool_member(p, "split", true, "the Metaspace pre-tokenizer");
    if (step.prepend != PreTokenizerStep::Prepend::kNever) space_prefix_ = true;
  } else if (type == "Punctuation") {
    // `tokenizers` counts a character as punctuation when Rust's is_ascii_punctuation does (which
    // adds the ASCII symbols $ + < = > ^ ` | ~ to Unicode's P) or its Unicode category is P.
    // Falcon's tokenizer.json runs this first.
    step.kind = PreTokenizerStep::Kind::kSplit;
    const std::string behavior = member(p, "behavior")
                                     ? string_member(p, "behavior", "the Punctuation pre-tokenizer")
                                     : std::string("Isolated");
    constexpr std::string_view kPunctuation = R"([\p{P}\$\+<=>\^`\|~])";
    if (behavior == "Isolated") {
      step.regex = std::make_shared<RegexSplitter>(kPunctuation, source_);  // each character alone
    } else if (behavior == "Contiguous") {
      step.regex = std::make_shared<RegexSplitter>(std::string(kPunctuation) + "+", source_);  // runs
    } else {
      unsupported("Punctuation pre-tokenizer behavior '" + behavior + "' (supported: Isolated, Contiguous)");
    }
  } else if (type == "Digits") {
    // Rust's char::is_numeric: Unicode N (Nd, Nl, No). After a ByteLevel step this sees the byte
    // alphabet, where bytes B2 B3 B9 BC BD BE are the numerals ² ³ ¹ ¼ ½ ¾ and split off too.
    step.kind = PreTokenizerStep::Kind::kSplit;
    const bool individual = bool_member(p, "individual_digits", false, "the Digits pre-tokenizer");
    step.regex = std::make_shared<RegexSplitter>(individual ? R"(\p{N})" : R"(\p{N}+)", source_);
  } else {
    unsupported("pre-tokenizer '" + type
                + "' (supported: Sequence, ByteLevel, Split, Metaspace, Punctuation, Digits)");
  }
  vocab_.pre_tokenizer.push_back(std::move(step));
}

void Parser::parse_post_processor(const json& p, int depth) {
  if (depth > kMaxNesting) fail("post-processors nest too deeply");
  const std::string type = type_of(p, "'post_processor'");
  if (type == "Sequence") {
    const json* list = member(p, "processors");
    if (list == nullptr || !list->is_array()) fail("a Sequence post-processor needs a 'processors' array");
    for (const json& child : *list) parse_post_processor(child, depth + 1);
    return;
  }
  if (type == "ByteLevel") return;  // only adjusts offsets
  if (type != "TemplateProcessing") {
    unsupported("post-processor '" + type + "' (supported: TemplateProcessing, ByteLevel, Sequence)");
  }
  const json* single = member(p, "single");
  if (single == nullptr || !single->is_array()) fail("TemplateProcessing needs a 'single' array");
  // reslens adds at most a BOS: accept "$A" or "<special> $A".
  bool seen_text = false;
  for (const json& item : *single) {
    if (!item.is_object()) fail("TemplateProcessing items should be objects");
    if (member(item, "Sequence") != nullptr) {
      seen_text = true;
      continue;
    }
    const json* special = member(item, "SpecialToken");
    if (special == nullptr || !special->is_object())
      fail("TemplateProcessing items should be Sequence or SpecialToken");
    const std::string name = string_member(*special, "id", "a TemplateProcessing SpecialToken");
    if (seen_text) unsupported("a TemplateProcessing that adds '" + name + "' after the text");
    if (template_bos_) unsupported("a TemplateProcessing that adds more than one token before the text");
    template_bos_ = name;
    // The template's own table gives the id; the vocabulary is the fallback.
    if (const json* table = member(p, "special_tokens"); table != nullptr && table->is_object()) {
      if (const json* entry = member(*table, name.c_str()); entry != nullptr && entry->is_object()) {
        if (const json* ids = member(*entry, "ids");
            ids != nullptr && ids->is_array() && ids->size() == 1 && (*ids)[0].is_number_integer()) {
          template_bos_id_ = (*ids)[0].get<int32_t>();
        }
      }
    }
  }
}

std::unique_ptr<Tokenizer> Parser::build(const json& root) {
  if (!root.is_object()) fail("not a tokenizer.json: the top level is not an object");
  const json* model = member(root, "model");
  if (model == nullptr) fail("not a tokenizer.json: no 'model'");
  parse_model(*model);
  vocab_.types.assign(vocab_.pieces.size(), TokenType::kNormal);
  if (const json* added = member(root, "added_tokens")) parse_added_tokens(*added);
  if (vocab_.pieces.empty()) fail("the vocabulary is empty");
  for (size_t i = 0; i < vocab_.pieces.size(); ++i) {
    if (!has_piece_[i]) {
      // A hole in the ids: a placeholder that text can never produce.
      vocab_.pieces[i] = "[PAD" + std::to_string(i) + "]";
      vocab_.types[i] = TokenType::kUnused;
    }
  }
  if (const json* n = member(root, "normalizer")) parse_normalizer(*n, 0);
  if (const json* p = member(root, "pre_tokenizer")) parse_pre_tokenizer(*p, 0);
  if (const json* p = member(root, "post_processor")) parse_post_processor(*p, 0);

  for (size_t i = 0; i < vocab_.pieces.size(); ++i) {
    if (vocab_.types[i] == TokenType::kNormal && parse_byte_piece(vocab_.pieces[i]) >= 0 && !byte_level_) {
      vocab_.types[i] = TokenType::kByte;
    }
  }
  if (const json* unk = member(*model, "unk_token")) {
    if (!unk->is_string()) fail("'model.unk_token' should be a string");
    vocab_.unk_id = id_of(unk->get<std::string>());
    // Typed unknown even when listed as a special added token: it stands for text, so decode
    // shows it rather than dropping it as it drops BOS/EOS.
    if (vocab_.unk_id >= 0) vocab_.types[static_cast<size_t>(vocab_.unk_id)] = TokenType::kUnknown;
  }

  // BOS: the template's special token; tokenizer_config.json's add_bos_token overrides whether it
  // is added (transformers rebuilds the template from it), and its bos_token names it otherwise.
  if (template_bos_) {
    vocab_.bos_id = template_bos_id_.value_or(id_of(*template_bos_));
    if (vocab_.bos_id < 0 || static_cast<size_t>(vocab_.bos_id) >= vocab_.pieces.size()) {
      fail("the post-processor's special token '" + *template_bos_ + "' is not in the vocabulary");
    }
  }
  if (vocab_.bos_id < 0 && config_.bos_token) vocab_.bos_id = id_of(*config_.bos_token);
  vocab_.add_bos = config_.add_bos_token.value_or(template_bos_.has_value());
  if (vocab_.add_bos && vocab_.bos_id < 0) fail("a BOS token is to be added, but none is defined");
  if (config_.eos_token) vocab_.eos_id = id_of(*config_.eos_token);
  if (vocab_.eos_id < 0) {
    for (const char* name : {"</s>", "<|endoftext|>", "<|end_of_text|>"}) {
      if ((vocab_.eos_id = id_of(name)) >= 0) break;
    }
  }

  if (byte_level_) {
    vocab_.decoding = BpeDecoding::kByteLevel;
    vocab_.kind = "hf-bpe-byte-level";
  } else {
    vocab_.decoding = BpeDecoding::kSentencePiece;
    vocab_.strip_space_prefix = space_prefix_;
    vocab_.kind = "hf-bpe-spm";
  }
  vocab_.source = source_;
  return std::make_unique<BpeTokenizer>(std::move(vocab_));
}

}  // namespace

std::unique_ptr<Tokenizer> tokenizer_from_hf_json(std::string_view text, const std::string& source,
                                                  const HfTokenizerConfig& config) {
  json root;
  try {
    root = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    throw FormatError(source + ": not valid JSON (" + e.what() + ")");
  }
  try {
    return Parser(source, config).build(root);
  } catch (const json::exception& e) {
    // A value of an unexpected type somewhere we did not check by hand.
    throw FormatError(source + ": unexpected content (" + e.what() + ")");
  }
}

}  // namespace reslens::tokenizer_detail

namespace reslens {

void fuzz_parse_tokenizer_json(std::string_view bytes) {
  const auto tokenizer = tokenizer_detail::tokenizer_from_hf_json(bytes, "<fuzz input>");
  const auto ids = tokenizer->encode("Hello world! 123 \xC3\xA9\n", false);
  (void)tokenizer->decode(ids);
  for (const int32_t id : ids) (void)tokenizer->token_text(id);
}

}  // namespace reslens
