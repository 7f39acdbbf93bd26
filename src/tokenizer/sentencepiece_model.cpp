// load_sentencepiece_model: a SentencePiece `tokenizer.model` (a serialized ModelProto), tokenized
// and detokenized by Debian's libsentencepiece itself, so the ids are by construction those of the
// model's own tokenizer (normalizer, dummy prefix, byte fallback and all).
#include <sentencepiece_processor.h>

#include "reslens/error.h"
#include "tokenizer/factory.h"
#include "tokenizer/spm_text.h"

#include "core/utf8.h"

namespace reslens {

namespace {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(const std::filesystem::path& path) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) throw IoError(path.string() + ": no such file");
    const auto status = processor_.Load(path.string());
    if (!status.ok()) {
      throw FormatError(path.string() + ": not a SentencePiece model (" + status.ToString() + ")");
    }
    const int n = processor_.GetPieceSize();
    if (n <= 0) throw FormatError(path.string() + ": the SentencePiece model has no pieces");
    pieces_.reserve(static_cast<size_t>(n));
    types_.reserve(static_cast<size_t>(n));
    for (int id = 0; id < n; ++id) {
      pieces_.push_back(processor_.IdToPiece(id));
      TokenType type = TokenType::kNormal;
      if (processor_.IsUnknown(id)) {
        type = TokenType::kUnknown;
      } else if (processor_.IsControl(id)) {
        type = TokenType::kControl;
      } else if (processor_.IsByte(id)) {
        type = TokenType::kByte;
      } else if (processor_.IsUnused(id)) {
        type = TokenType::kUnused;
      }
      types_.push_back(type);
    }
    bos_id_ = processor_.bos_id();
    eos_id_ = processor_.eos_id();
    unk_id_ = processor_.unk_id();
    add_bos_default_ = bos_id_ >= 0;  // Llama's tokenizers add BOS; libsentencepiece never does
    kind_ = "sentencepiece";
    index_pieces();
  }

  std::string decode(std::span<const int32_t> ids) const override {
    std::vector<int> v;
    v.reserve(ids.size());
    for (const int32_t id : ids) {
      piece(id);  // range check: OutOfRange, as the other tokenizers
      v.push_back(id);
    }
    std::string text;
    const auto status = processor_.Decode(v, &text);
    if (!status.ok()) throw InvalidArgument("ids to decode: SentencePiece failed: " + status.ToString());
    return text;
  }

  std::string token_text(int32_t id) const override { return tokenizer_detail::spm_token_text(*this, id); }

  // libsentencepiece strips the leading space of a decoded sequence, so a single piece is decoded by
  // the SentencePiece rules reslens shares with its own SPM tokenizer.
  std::string token_bytes(int32_t id) const override {
    const int32_t one[1] = {id};
    return tokenizer_detail::spm_decode(*this, one, /*strip_space_prefix=*/false);
  }

 private:
  // Each stretch between special tokens gets libsentencepiece's dummy "▁" prefix, as in llama.cpp
  // and HF's legacy Llama tokenizer. (User-defined pieces stay normal tokens here: the processor
  // matches them itself.)
  void encode_text(std::string_view text, size_t /*offset*/, std::vector<int32_t>& out) const override {
    std::vector<int> ids;
    const auto status = processor_.Encode(text, &ids);
    if (!status.ok()) throw InvalidArgument("text to tokenize: SentencePiece failed: " + status.ToString());
    out.insert(out.end(), ids.begin(), ids.end());
  }

  sentencepiece::SentencePieceProcessor processor_;
};

}  // namespace

std::unique_ptr<Tokenizer> load_sentencepiece_model(const std::filesystem::path& model) {
  return std::make_unique<SentencePieceTokenizer>(model);
}

}  // namespace reslens
