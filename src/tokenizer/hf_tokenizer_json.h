// Hugging Face tokenizer files: tokenizer.json (the `tokenizers` library's serialized pipeline) and
// tokenizer_config.json (transformers' settings, which override a few of its choices).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "reslens/tokenizer.h"

namespace reslens::tokenizer_detail {

/// What reslens takes from tokenizer_config.json.
struct HfTokenizerConfig {
  std::optional<bool> add_bos_token;
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  std::string chat_template;  ///< "chat_template": the string, or the "default" of a named list
};

/// Parses tokenizer_config.json content. Throws FormatError naming `source` when it is not JSON or
/// a field has the wrong type.
HfTokenizerConfig parse_hf_tokenizer_config(std::string_view json, const std::string& source);

/// Builds the tokenizer a tokenizer.json describes. Supported: model BPE, byte-level (ByteLevel /
/// Split pre-tokenizers) or SentencePiece-style (Prepend/Replace normalizers or Metaspace, byte
/// fallback, unk fusion), TemplateProcessing that puts a special token before the text.
/// Throws FormatError naming `source` for malformed content and UnsupportedError naming `source`
/// and the component for anything else (WordPiece, Unigram, NFC, ...).
std::unique_ptr<Tokenizer> tokenizer_from_hf_json(std::string_view json, const std::string& source,
                                                  const HfTokenizerConfig& config = {});

}  // namespace reslens::tokenizer_detail
