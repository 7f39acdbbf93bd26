// load_llama2c_tokenizer: llama2.c's tokenizer.bin format, as written by its `tokenizer.py export`:
//   int32 max_token_length, then per token: float32 score, int32 length, `length` bytes.
// The exporter rewrote SentencePiece's pieces for printing ("▁" as ' ', BOS as "\n<s>\n", EOS as
// "\n</s>\n"); we undo that, so the pieces, ids and encoding equal the same model's GGUF vocabulary.
// llama2.c's encode (dummy-prefix " " on non-empty text, byte fallback to id byte+3, then merging
// the highest-scoring pair, leftmost on ties) is the SPM algorithm of SpmTokenizer.
#include <string>

#include "core/mapped_file.h"
#include "io/byte_reader.h"
#include "reslens/error.h"
#include "tokenizer/factory.h"
#include "tokenizer/pieces.h"
#include "tokenizer/spm.h"

namespace reslens {

namespace {

// Longest piece we accept; llama2.c's own tokenizers stay far below (Llama 2: 27 bytes).
constexpr int32_t kMaxPieceBytes = 1 << 16;

}  // namespace

std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::filesystem::path& path, int32_t n_vocab) {
  if (n_vocab <= 0) {
    throw InvalidArgument("llama2.c tokenizer " + path.string() + ": vocabulary size must be positive, not "
                          + std::to_string(n_vocab));
  }
  const MappedFile file(path);  // IoError naming the path
  ByteReader r(file.bytes(), path.string());
  const auto max_token_length = r.read<int32_t>();
  if (max_token_length <= 0 || max_token_length > kMaxPieceBytes) {
    r.fail("max_token_length is " + std::to_string(max_token_length) + ", not a plausible piece length");
  }
  // Each token needs at least 8 bytes: reject an absurd n_vocab before allocating for it.
  if (static_cast<uint64_t>(n_vocab) > r.remaining() / 8) {
    r.fail("truncated: " + std::to_string(n_vocab) + " tokens need at least "
           + std::to_string(8 * int64_t{n_vocab}) + " bytes after the header, but the file has "
           + std::to_string(r.remaining()));
  }

  tokenizer_detail::SpmVocab vocab;
  vocab.pieces.reserve(static_cast<size_t>(n_vocab));
  vocab.scores.reserve(static_cast<size_t>(n_vocab));
  vocab.types.reserve(static_cast<size_t>(n_vocab));
  for (int32_t id = 0; id < n_vocab; ++id) {
    const auto score = r.read<float>();
    const auto length = r.read<int32_t>();
    if (length < 0 || length > max_token_length) {
      r.fail("token " + std::to_string(id) + " has length " + std::to_string(length)
             + " (max_token_length is " + std::to_string(max_token_length) + ", offset "
             + std::to_string(r.offset() - 4) + ")");
    }
    std::string piece = r.read_string(static_cast<uint64_t>(length), "a token's bytes");
    TokenType type = TokenType::kNormal;
    if (id == 0 && piece == "<unk>") {
      type = TokenType::kUnknown;
    } else if (id == 1 || id == 2) {
      // llama2.c's BOS and EOS, always ids 1 and 2.
      if (piece.size() >= 2 && piece.front() == '\n' && piece.back() == '\n')
        piece = piece.substr(1, piece.size() - 2);
      type = TokenType::kControl;
    } else if (tokenizer_detail::parse_byte_piece(piece) >= 0) {
      type = TokenType::kByte;
    } else {
      piece = tokenizer_detail::replace_all(piece, " ", tokenizer_detail::kSpmSpace);
    }
    vocab.pieces.push_back(std::move(piece));
    vocab.scores.push_back(score);
    vocab.types.push_back(type);
  }
  if (r.remaining() != 0) {
    r.fail(std::to_string(r.remaining()) + " bytes follow the " + std::to_string(n_vocab)
           + " tokens the model expects: the tokenizer does not belong to this model");
  }
  vocab.unk_id = vocab.types[0] == TokenType::kUnknown ? 0 : -1;
  vocab.bos_id = n_vocab > 1 ? 1 : -1;
  vocab.eos_id = n_vocab > 2 ? 2 : -1;
  vocab.add_bos = vocab.bos_id >= 0;
  vocab.add_space_prefix = true;
  vocab.kind = "llama2c-spm";
  return std::make_unique<tokenizer_detail::SpmTokenizer>(std::move(vocab));
}

}  // namespace reslens
