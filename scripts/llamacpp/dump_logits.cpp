// Runs a GGUF model through llama.cpp (libllama's public API) on given token ids and prints, as
// JSON, the logits at every position and a greedy continuation. Used by make_family_goldens.py to
// record goldens that tests/reference compares reslens with; built against a llama.cpp checkout
// (see scripts/llamacpp/README.md). Settings match the shared goldens: f32 KV cache, no flash
// attention, one sequence, 2 threads.
//
//   dump_logits MODEL.gguf IDS(comma-separated) N_GREEDY > out.json
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "llama.h"

namespace {

void quiet(ggml_log_level level, const char* text, void*) {
  if (level == GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
}

std::vector<llama_token> parse_ids(const std::string& s) {
  std::vector<llama_token> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(static_cast<llama_token>(std::stol(item)));
  return out;
}

// Decodes `tokens` at positions pos0.. with logits for each, returns [n, n_vocab].
std::vector<float> decode(llama_context* ctx, const std::vector<llama_token>& tokens, int pos0, int n_vocab) {
  llama_batch batch = llama_batch_init(static_cast<int32_t>(tokens.size()), 0, 1);
  for (size_t i = 0; i < tokens.size(); ++i) {
    batch.token[i] = tokens[i];
    batch.pos[i] = pos0 + static_cast<int>(i);
    batch.n_seq_id[i] = 1;
    batch.seq_id[i][0] = 0;
    batch.logits[i] = 1;
  }
  batch.n_tokens = static_cast<int32_t>(tokens.size());
  if (llama_decode(ctx, batch) != 0) {
    std::fprintf(stderr, "llama_decode failed\n");
    std::exit(1);
  }
  std::vector<float> out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const float* l = llama_get_logits_ith(ctx, static_cast<int32_t>(i));
    out.insert(out.end(), l, l + n_vocab);
  }
  llama_batch_free(batch);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s MODEL.gguf IDS N_GREEDY\n", argv[0]);
    return 2;
  }
  llama_log_set(quiet, nullptr);
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (model == nullptr) {
    std::fprintf(stderr, "%s: llama.cpp could not load the model\n", argv[1]);
    return 1;
  }
  const std::vector<llama_token> ids = parse_ids(argv[2]);
  const int n_greedy = std::atoi(argv[3]);
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = static_cast<uint32_t>(ids.size() + n_greedy + 8);
  cp.n_batch = cp.n_ctx;
  cp.n_ubatch = cp.n_ctx;
  cp.n_threads = 2;
  cp.n_threads_batch = 2;
  cp.type_k = GGML_TYPE_F32;
  cp.type_v = GGML_TYPE_F32;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  llama_context* ctx = llama_init_from_model(model, cp);
  const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));

  const std::vector<float> logits = decode(ctx, ids, 0, n_vocab);
  std::vector<llama_token> greedy;
  std::vector<float> last(logits.end() - n_vocab, logits.end());
  for (int step = 0; step < n_greedy; ++step) {
    llama_token best = 0;
    for (int v = 1; v < n_vocab; ++v) {
      if (last[static_cast<size_t>(v)] > last[static_cast<size_t>(best)]) best = v;
    }
    greedy.push_back(best);
    last = decode(ctx, {best}, static_cast<int>(ids.size()) + step, n_vocab);
  }

  std::printf("{\"n_vocab\": %d, \"token_ids\": [", n_vocab);
  for (size_t i = 0; i < ids.size(); ++i) std::printf("%s%d", i ? ", " : "", ids[i]);
  std::printf("], \"greedy_ids\": [");
  for (size_t i = 0; i < greedy.size(); ++i) std::printf("%s%d", i ? ", " : "", greedy[i]);
  std::printf("], \"logits\": [");
  for (size_t p = 0; p < ids.size(); ++p) {
    std::printf("%s[", p ? ",\n" : "");
    for (int v = 0; v < n_vocab; ++v) std::printf("%s%.9g", v ? ", " : "", logits[p * n_vocab + v]);
    std::printf("]");
  }
  std::printf("]}\n");
  llama_free(ctx);
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
