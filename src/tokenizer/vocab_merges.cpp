// load_bpe_vocab_merges: GPT-2's original tokenizer files. `vocab.json` (OpenAI: `encoder.json`)
// maps piece -> id; `merges.txt` (OpenAI: `vocab.bpe`) holds one "left right" merge per line in
// rank order after a "#version" header line. Pieces are in GPT-2's byte alphabet.
#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "reslens/error.h"
#include "tokenizer/bpe.h"
#include "tokenizer/factory.h"

namespace reslens {

namespace {

using tokenizer_detail::BpeVocab;

constexpr int64_t kMaxVocab = int64_t{1} << 21;

void read_vocab_json(const std::filesystem::path& path, BpeVocab& vocab) {
  const std::string text = read_text_file(path);  // IoError naming the path
  const std::string source = path.string();
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(source + ": not valid JSON (" + e.what() + ")");
  }
  if (!root.is_object()) throw FormatError(source + ": should be a JSON object of piece -> id");
  std::vector<char> seen;
  for (const auto& [piece, id] : root.items()) {
    if (!id.is_number_integer()) throw FormatError(source + ": the id of '" + piece + "' is not an integer");
    const auto value = id.get<int64_t>();
    if (value < 0 || value >= kMaxVocab) {
      throw FormatError(source + ": the id of '" + piece + "' is " + std::to_string(value));
    }
    const auto index = static_cast<size_t>(value);
    if (index >= vocab.pieces.size()) {
      vocab.pieces.resize(index + 1);
      seen.resize(index + 1, 0);
    }
    if (seen[index]) throw FormatError(source + ": id " + std::to_string(value) + " is given to two pieces");
    vocab.pieces[index] = piece;
    seen[index] = 1;
  }
  if (vocab.pieces.empty()) throw FormatError(source + ": the vocabulary is empty");
  vocab.types.assign(vocab.pieces.size(), TokenType::kNormal);
  for (size_t i = 0; i < vocab.pieces.size(); ++i) {
    if (!seen[i]) {
      vocab.pieces[i] = "[PAD" + std::to_string(i) + "]";
      vocab.types[i] = TokenType::kUnused;
    }
  }
}

void read_merges_txt(const std::filesystem::path& path, BpeVocab& vocab) {
  const std::string text = read_text_file(path);
  size_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || (line_no == 1 && line.substr(0, 8) == "#version")) continue;
    const size_t space = line.find(' ');
    if (space == 0 || space == std::string_view::npos
        || line.find(' ', space + 1) != std::string_view::npos) {
      throw FormatError(path.string() + ": line " + std::to_string(line_no) + " is not a merge 'left right'");
    }
    vocab.merges.emplace_back(std::string(line.substr(0, space)), std::string(line.substr(space + 1)));
  }
}

}  // namespace

std::unique_ptr<Tokenizer> load_bpe_vocab_merges(const std::filesystem::path& vocab_json,
                                                 const std::filesystem::path& merges_txt) {
  BpeVocab vocab;
  read_vocab_json(vocab_json, vocab);
  read_merges_txt(merges_txt, vocab);
  // GPT-2's single special token serves as BOS, EOS and padding.
  for (size_t i = 0; i < vocab.pieces.size(); ++i) {
    if (vocab.pieces[i] == "<|endoftext|>") {
      vocab.types[i] = TokenType::kControl;
      vocab.bos_id = vocab.eos_id = static_cast<int32_t>(i);
    }
  }
  tokenizer_detail::PreTokenizerStep step;
  step.kind = tokenizer_detail::PreTokenizerStep::Kind::kByteLevel;
  step.regex = std::make_shared<tokenizer_detail::RegexSplitter>(
      tokenizer_detail::pretokenizer_pattern(tokenizer_detail::PreTokenizerKind::kGpt2), merges_txt.string());
  vocab.pre_tokenizer.push_back(std::move(step));
  vocab.decoding = tokenizer_detail::BpeDecoding::kByteLevel;
  vocab.add_bos = false;
  vocab.kind = "gpt2-bpe";
  vocab.source = vocab_json.string();
  return std::make_unique<tokenizer_detail::BpeTokenizer>(std::move(vocab));
}

}  // namespace reslens
