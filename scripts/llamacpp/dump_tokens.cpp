// Tokenizes test strings with llama.cpp (libllama's public API, vocabulary only) and prints one line
// of ids per string, as llama.cpp's tests/test-tokenizer-0 records its `.out` files: no BOS
// (add_special = false) and special-token text kept as text (parse_special = false). The input is a
// `.inp` file: strings separated by "\n__ggml_vocab_test__\n" (a last string without one counts).
// Used by make_tokenizer_vectors.py; built against a llama.cpp checkout (see README.md here).
//
//   dump_tokens VOCAB.gguf STRINGS.inp > STRINGS.out
//   dump_tokens VOCAB.gguf --add-bos        prints 1 or 0: whether llama.cpp adds BOS by default
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "llama.h"

namespace {

void quiet(ggml_log_level level, const char* text, void*) {
  if (level == GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
}

std::vector<std::string> read_strings(const char* path) {
  std::ifstream in(path, std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<std::string> strings;
  size_t pos = 0;
  while (pos < all.size()) {
    const size_t hit = all.find(separator, pos);
    if (hit == std::string::npos) {
      strings.push_back(all.substr(pos));
      break;
    }
    strings.push_back(all.substr(pos, hit - pos));
    pos = hit + separator.size();
  }
  return strings;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: dump_tokens VOCAB.gguf STRINGS.inp | --add-bos\n");
    return 2;
  }
  llama_log_set(quiet, nullptr);
  llama_backend_init();
  llama_model_params params = llama_model_default_params();
  params.vocab_only = true;
  llama_model* model = llama_model_load_from_file(argv[1], params);
  if (model == nullptr) {
    std::fprintf(stderr, "%s: llama.cpp could not load the vocabulary\n", argv[1]);
    return 1;
  }
  const llama_vocab* vocab = llama_model_get_vocab(model);
  if (std::string(argv[2]) == "--add-bos") {
    std::printf("%d\n", llama_vocab_get_add_bos(vocab) ? 1 : 0);
    llama_model_free(model);
    return 0;
  }
  for (const std::string& s : read_strings(argv[2])) {
    std::vector<llama_token> ids(s.size() + 16);
    int n = llama_tokenize(vocab, s.data(), static_cast<int>(s.size()), ids.data(), static_cast<int>(ids.size()),
                           /*add_special=*/false, /*parse_special=*/false);
    if (n < 0) {
      ids.resize(static_cast<size_t>(-n));
      n = llama_tokenize(vocab, s.data(), static_cast<int>(s.size()), ids.data(), static_cast<int>(ids.size()),
                         false, false);
    }
    for (int i = 0; i < n; ++i) std::printf(i == 0 ? "%d" : " %d", ids[static_cast<size_t>(i)]);
    std::printf("\n");
  }
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
