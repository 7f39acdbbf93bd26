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
#include <vector>

namespace reslens {

enum class TokenType : uint8_t { kNormal, kUnknown, kControl, kUserDefined, kUnused, kByte };

class Tokenizer {
 public:
  Tokenizer() = default;
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;
  virtual ~Tokenizer();

  /// Token ids of `text`. `add_bos` prepends the BOS token. Throws InvalidArgument on invalid UTF-8.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_bos) const = 0;

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

 protected:
  /// Builds the piece -> id index behind find_piece (call once pieces_ is filled; the first of
  /// duplicate pieces wins).
  void index_pieces();

  std::vector<std::string> pieces_;
  std::vector<TokenType> types_;
  int32_t bos_id_ = -1;
  int32_t eos_id_ = -1;
  int32_t unk_id_ = -1;
  bool add_bos_default_ = false;
  std::string kind_;

 private:
  // Transparent hashing lets the encoders look up std::string_view slices of the text without
  // building a std::string per lookup.
  struct PieceHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };

 protected:
  std::unordered_map<std::string, int32_t, PieceHash, std::equal_to<>> piece_index_;
};

}  // namespace reslens
