// Tokenizer: text <-> token ids, as the model's own tokenizer does it. Implementations cover
// SentencePiece-style BPE with byte fallback (GGUF `llama`, llama2.c tokenizer files, Hugging Face
// tokenizer.json) and byte-level BPE (GPT-2, Llama 3, Qwen2). Constructed by the model loaders.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace reslens {

enum class TokenType : uint8_t { kNormal, kUnknown, kControl, kUserDefined, kUnused, kByte };

/// What encode does with the text of a special token written in the prompt ("<|im_start|>", "<s>").
enum class SpecialText : uint8_t {
  /// Control and unknown tokens (BOS, EOS, chat markers, <unk>) and user-defined (added) tokens
  /// written in the text become those tokens, as Hugging Face tokenizers do by default and
  /// llama.cpp does with parse_special (llama-cli's prompts).
  kParse,
  /// Control and unknown tokens' text is ordinary text ("<s>" becomes "<", "s", ">"): llama.cpp's
  /// parse_special = false, HF's split_special_tokens. User-defined tokens are still split out
  /// (both do that regardless).
  kPlain,
};

class Tokenizer {
 public:
  Tokenizer() = default;
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;
  virtual ~Tokenizer();

  /// Token ids of `text`. `add_bos` prepends the BOS token. The special tokens written in the text
  /// are split out first (longest first, as llama.cpp's tokenizer_st_partition does), and every
  /// stretch of text between them is encoded on its own: SentencePiece-style vocabularies give each
  /// stretch its space prefix, as llama.cpp and HF's legacy Llama tokenizers do. Throws
  /// InvalidArgument on invalid UTF-8.
  std::vector<int32_t> encode(std::string_view text, bool add_bos, SpecialText special = SpecialText::kParse) const;

  /// The text that `ids` stand for (control tokens such as BOS/EOS render as nothing).
  virtual std::string decode(std::span<const int32_t> ids) const = 0;

  /// The bytes one token adds to text that continues after other text (llama.cpp's
  /// token_to_piece): " Once" for "▁Once" or "ĠOnce", "\n" for "<0x0A>", nothing for control tokens.
  /// Generation prints these; they may hold part of a multi-byte character.
  virtual std::string token_bytes(int32_t id) const = 0;

  /// What one token reads as on its own, for display: " Once" for "▁Once" or "ĠOnce", ",".
  /// Always valid UTF-8: SentencePiece byte tokens keep their piece ("<0x0A>"), and a byte-level
  /// token whose bytes are not valid UTF-8 alone (part of a multi-byte character) shows those
  /// bytes as "<0xE6>". Control and unknown tokens give their piece ("<s>", "<unk>").
  virtual std::string token_text(int32_t id) const = 0;

  /// The raw vocabulary string ("▁Once", "ĠOnce", "<0x0A>").
  const std::string& piece(int32_t id) const;
  TokenType type(int32_t id) const;

  int32_t n_vocab() const { return static_cast<int32_t>(pieces_.size()); }
  int32_t bos_id() const { return bos_id_; }
  int32_t eos_id() const { return eos_id_; }
  int32_t unk_id() const { return unk_id_; }
  /// Whether the model's own setting adds BOS when none is asked for explicitly.
  bool add_bos_default() const { return add_bos_default_; }
  /// "llama-spm", "gpt2-bpe", ... (shown by `reslens inspect`).
  const std::string& kind() const { return kind_; }

  /// The id whose piece is exactly `piece`, or -1.
  int32_t find_piece(std::string_view piece) const;

  /// The model's chat template (Jinja source from GGUF tokenizer.chat_template, or Hugging Face's
  /// chat_template.jinja / tokenizer_config.json), empty when its files have none (reslens/chat.h).
  const std::string& chat_template() const { return chat_template_; }
  /// For the loaders, before the tokenizer is shared.
  void set_chat_template(std::string source) { chat_template_ = std::move(source); }

 protected:
  /// Appends the ids of a stretch of text that holds no special token (valid UTF-8, non-empty),
  /// which begins at byte `offset` of the whole text (0: HF Metaspace's prepend_scheme "first"
  /// prefixes it; errors name offsets in the whole text).
  virtual void encode_text(std::string_view text, size_t offset, std::vector<int32_t>& out) const = 0;

  /// Builds the piece -> id index behind find_piece and the list of special tokens encode splits
  /// out (call once pieces_ and types_ are filled; the first of duplicate pieces wins).
  void index_pieces();

  std::vector<std::string> pieces_;
  std::vector<TokenType> types_;
  int32_t bos_id_ = -1;
  int32_t eos_id_ = -1;
  int32_t unk_id_ = -1;
  bool add_bos_default_ = false;
  std::string kind_;
  std::string chat_template_;

 private:
  // Transparent hashing lets the encoders look up std::string_view slices of the text without
  // building a std::string per lookup.
  struct PieceHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };

 protected:
  std::unordered_map<std::string, int32_t, PieceHash, std::equal_to<>> piece_index_;

 private:
  /// The (piece, id) pairs encode splits out of the text, longest piece first (then lowest id):
  /// with SpecialText::kParse control, unknown and user-defined tokens with a non-empty piece; with
  /// kPlain the user-defined ones only. Built once by index_pieces (views into pieces_).
  std::vector<std::pair<std::string_view, int32_t>> parse_specials_, plain_specials_;
};

}  // namespace reslens
