#include "analysis/cache_files.h"

#include <cstdlib>

namespace reslens::analysis {

namespace {

uint64_t fnv(uint64_t h, const void* p, size_t n) {
  const auto* c = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ c[i]) * 1099511628211ull;
  return h;
}

}  // namespace

std::filesystem::path cache_dir() {
  if (const char* e = std::getenv("RESLENS_CACHE_DIR"); e != nullptr && *e) return e;
  if (const char* e = std::getenv("XDG_CACHE_HOME"); e != nullptr && *e) return std::filesystem::path(e) / "reslens";
  if (const char* e = std::getenv("HOME"); e != nullptr && *e) return std::filesystem::path(e) / ".cache" / "reslens";
  return {};
}

uint64_t model_fingerprint(const Model& m) {
  const ModelConfig& c = m.config();
  uint64_t h = 1469598103934665603ull;
  const int64_t dims[] = {c.n_layers, c.d_model, c.n_heads, c.d_head, c.d_mlp, c.d_vocab,
                          static_cast<int64_t>(c.normalization_type)};
  h = fnv(h, dims, sizeof dims);
  auto sample = [&](const MatrixView& v) {
    if (v.empty()) return;
    const int64_t n = v.rows * v.cols;
    for (int64_t i = 0; i < n; i += 997) {
      const float x = v.at(i / v.cols, i % v.cols);
      h = fnv(h, &x, 4);
    }
  };
  const ModelWeights& w = m.weights();
  sample(w.W_U);
  h = fnv(h, w.ln_final_w.data, static_cast<size_t>(w.ln_final_w.size) * 4);
  for (const auto& l : w.layers) {
    sample(l.W_out);
    sample(l.W_O);
  }
  return h;
}

}  // namespace reslens::analysis
