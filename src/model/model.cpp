// Model: construction, bookkeeping, and format detection for Model::load.
#include "reslens/model.h"

#include <array>
#include <cstring>
#include <fstream>

#include "model/loader.h"
#include "model/storage.h"
#include "model/weight_rows.h"
#include "reslens/error.h"

namespace reslens {

Model::Model(ModelConfig config, ModelWeights weights, std::unique_ptr<Tokenizer> tokenizer,
             std::shared_ptr<ModelStorage> storage, std::vector<TensorInfo> tensors, std::string format,
             std::filesystem::path path)
    : config_(std::move(config)),
      weights_(std::move(weights)),
      tokenizer_(std::move(tokenizer)),
      storage_(std::move(storage)),
      tensors_(std::move(tensors)),
      format_(std::move(format)),
      path_(std::move(path)) {}

Model::~Model() = default;

int64_t Model::n_params() const {
  int64_t n = 0;
  for (const TensorInfo& t : tensors_) {
    int64_t e = 1;
    for (int64_t d : t.shape) e *= d;
    n += e;
  }
  return n;
}

int64_t Model::mapped_bytes() const { return storage_->mapped_bytes(); }
int64_t Model::owned_bytes() const { return storage_->owned_bytes(); }
std::filesystem::path Model::changed_file() const { return storage_->changed_file(); }

namespace {

uint64_t fnv(uint64_t h, const void* p, size_t n) {
  const auto* c = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ c[i]) * 1099511628211ull;
  return h;
}

uint64_t compute_fingerprint(const ModelConfig& c, const ModelWeights& w) {
  uint64_t h = 1469598103934665603ull;
  const int64_t dims[] = {c.n_layers, c.d_model, c.n_heads, c.d_head, c.d_mlp, c.d_vocab,
                          static_cast<int64_t>(c.normalization_type)};
  h = fnv(h, dims, sizeof dims);
  auto sample = [&](const MatrixView& v) {
    if (v.empty()) return;
    const int64_t n = v.rows * v.cols;
    for (int64_t i = 0; i < n; i += 997) {
      const float x = element(v, i / v.cols, i % v.cols);  // the same value however the weights are held
      h = fnv(h, &x, sizeof x);
    }
  };
  sample(w.W_U);
  h = fnv(h, w.ln_final_w.data, static_cast<size_t>(w.ln_final_w.size) * sizeof(float));
  for (const auto& l : w.layers) {
    sample(l.W_out);
    sample(l.W_O);
  }
  return h;
}

}  // namespace

uint64_t Model::fingerprint() const {
  std::call_once(fingerprint_once_, [this] { fingerprint_ = compute_fingerprint(config_, weights_); });
  return fingerprint_;
}

std::shared_ptr<const Model> Model::load(const std::filesystem::path& path, const LoadOptions& options) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    throw IoError(path.string() + ": no such file or directory");
  }
  if (std::filesystem::is_directory(status)) return load_hf_model(path, options);

  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path.string() + ": cannot open");
  std::array<char, 8> head{};
  in.read(head.data(), head.size());
  const auto got = in.gcount();
  if (got >= 4 && std::memcmp(head.data(), "GGUF", 4) == 0) return load_gguf_model(path, options);
  if (got == 0) throw FormatError(path.string() + ": the file is empty");
  // llama2.c checkpoints have no magic in their legacy form; the loader checks the header against
  // the file size, which rejects anything else.
  if (path.extension() == ".safetensors") {
    throw InvalidArgument(path.string() +
                          ": pass the Hugging Face model directory (with config.json), not the "
                          ".safetensors file");
  }
  return load_llama2c_model(path, options);
}

}  // namespace reslens
