// load_hf_tokenizer and load_hf_tokenizer_json: which tokenizer file of a Hugging Face directory
// to use, in the order transformers itself prefers them (the fast tokenizer.json first).
#include "tokenizer/factory.h"

#include "core/mapped_file.h"
#include "reslens/error.h"
#include "tokenizer/hf_tokenizer_json.h"

namespace reslens {

namespace {

bool is_file(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::is_regular_file(p, ec);
}

}  // namespace

std::unique_ptr<Tokenizer> load_hf_tokenizer_json(const std::filesystem::path& tokenizer_json,
                                                  const std::filesystem::path& tokenizer_config) {
  tokenizer_detail::HfTokenizerConfig config;
  if (!tokenizer_config.empty()) {
    config = tokenizer_detail::parse_hf_tokenizer_config(read_text_file(tokenizer_config),
                                                         tokenizer_config.string());
  }
  auto tok = tokenizer_detail::tokenizer_from_hf_json(read_text_file(tokenizer_json), tokenizer_json.string(), config);
  tok->set_chat_template(config.chat_template);
  return tok;
}

namespace {

std::unique_ptr<Tokenizer> hf_tokenizer_files(const std::filesystem::path& dir) {
  if (is_file(dir / "tokenizer.json")) {
    const auto config = dir / "tokenizer_config.json";
    return load_hf_tokenizer_json(dir / "tokenizer.json", is_file(config) ? config : std::filesystem::path());
  }
  const bool has_vocab = is_file(dir / "vocab.json");
  const bool has_merges = is_file(dir / "merges.txt");
  if (has_vocab && has_merges) return load_bpe_vocab_merges(dir / "vocab.json", dir / "merges.txt");
  if (has_vocab != has_merges) {
    const auto missing = dir / (has_vocab ? "merges.txt" : "vocab.json");
    throw IoError(missing.string() + ": missing (vocab.json and merges.txt come together)");
  }
  if (is_file(dir / "tokenizer.model")) return load_sentencepiece_model(dir / "tokenizer.model");
  throw IoError(dir.string() + ": no tokenizer found (looked for tokenizer.json, vocab.json + merges.txt, "
                "tokenizer.model)");
}

}  // namespace

std::filesystem::path hf_tokenizer_file(const std::filesystem::path& dir) {
  for (const char* name : {"tokenizer.json", "vocab.json", "tokenizer.model"}) {
    if (is_file(dir / name)) return dir / name;
  }
  return dir;
}

std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) throw IoError(dir.string() + ": not a directory");
  auto tok = hf_tokenizer_files(dir);
  // transformers >= 4.43 saves the chat template beside the config, which then has none.
  if (is_file(dir / "chat_template.jinja")) {
    tok->set_chat_template(read_text_file(dir / "chat_template.jinja"));
  } else if (tok->chat_template().empty() && is_file(dir / "tokenizer_config.json")) {
    const auto path = dir / "tokenizer_config.json";
    tok->set_chat_template(tokenizer_detail::parse_hf_tokenizer_config(read_text_file(path), path.string()).chat_template);
  }
  return tok;
}

}  // namespace reslens
