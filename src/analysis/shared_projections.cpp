#include "analysis/shared_projections.h"

#include <algorithm>

namespace reslens::analysis {

SharedProjections::SharedProjections(const ModelConfig& c, int64_t budget_bytes)
    : d_vocab_(c.d_vocab), d_mlp_(c.d_mlp), per_layer_(c.d_mlp + c.n_heads * c.d_head) {
  const int64_t row_bytes = std::max<int64_t>(1, d_vocab_) * static_cast<int64_t>(sizeof(float));
  budget_rows_ = std::max<int64_t>(0, budget_bytes) / row_bytes;
  rows_.resize(static_cast<size_t>(c.n_layers * per_layer_));
}

const float* SharedProjections::find(size_t slot) const {
  const std::lock_guard<std::mutex> lock(mu_);
  return slot < rows_.size() ? rows_[slot].get() : nullptr;
}

void SharedProjections::keep(size_t slot, const float* g0) {
  const std::lock_guard<std::mutex> lock(mu_);
  if (slot >= rows_.size() || rows_[slot] != nullptr || kept_ >= budget_rows_) return;
  rows_[slot] = std::make_unique<float[]>(static_cast<size_t>(d_vocab_));
  std::copy(g0, g0 + d_vocab_, rows_[slot].get());
  ++kept_;
}

int64_t SharedProjections::rows_kept() const {
  const std::lock_guard<std::mutex> lock(mu_);
  return kept_;
}

int64_t SharedProjections::bytes_kept() const { return rows_kept() * d_vocab_ * static_cast<int64_t>(sizeof(float)); }

}  // namespace reslens::analysis
