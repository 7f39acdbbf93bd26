#include "analysis/shared_projections.h"

#include <algorithm>

namespace reslens::analysis {

SharedProjections::SharedProjections(const ModelConfig& c, int64_t budget_bytes)
    : d_vocab_(c.d_vocab), d_mlp_(c.d_mlp), per_layer_(c.d_mlp + c.n_heads * c.d_head),
      budget_bytes_(std::max<int64_t>(0, budget_bytes)) {
  rows_.resize(static_cast<size_t>(c.n_layers * per_layer_));
  sketches_.resize(static_cast<size_t>(c.n_layers * c.d_mlp));
}

const float* SharedProjections::find(size_t slot) const {
  const std::lock_guard<std::mutex> lock(mu_);
  return slot < rows_.size() ? rows_[slot].get() : nullptr;
}

void SharedProjections::keep(size_t slot, const float* g0) {
  const std::lock_guard<std::mutex> lock(mu_);
  const int64_t row_bytes = d_vocab_ * static_cast<int64_t>(sizeof(float));
  if (slot >= rows_.size() || rows_[slot] != nullptr || bytes_ + row_bytes > budget_bytes_) return;
  rows_[slot] = std::make_unique<float[]>(static_cast<size_t>(d_vocab_));
  std::copy(g0, g0 + d_vocab_, rows_[slot].get());
  ++kept_;
  bytes_ += row_bytes;
}

const VectorSketch* SharedProjections::ffn_sketch(int64_t l, int64_t k) const {
  {
    const std::lock_guard<std::mutex> lock(mu_);
    const auto slot = static_cast<size_t>(l * d_mlp_ + k);
    if (k >= 0 && k < d_mlp_ && slot < sketches_.size() && sketches_[slot].published) return sketches_[slot].entry.get();
  }
  return also_ != nullptr ? also_->ffn_sketch(l, k) : nullptr;
}

VectorSketch* SharedProjections::reserve_ffn_sketch(int64_t l, int64_t k, int64_t n_pad) {
  const std::lock_guard<std::mutex> lock(mu_);
  const auto slot = static_cast<size_t>(l * d_mlp_ + k);
  const int64_t entry_bytes = n_pad * static_cast<int64_t>(sizeof(int32_t));
  if (k < 0 || k >= d_mlp_ || slot >= sketches_.size() || sketches_[slot].entry != nullptr ||
      bytes_ + entry_bytes > budget_bytes_) {
    return nullptr;
  }
  auto entry = std::make_unique<VectorSketch>();
  if (arena_ != nullptr && arena_left_ >= n_pad) {
    entry->dots = arena_;
    arena_ += n_pad;
    arena_left_ -= n_pad;
  } else {
    entry->owned.reset(new int32_t[static_cast<size_t>(n_pad)]);
    entry->dots = entry->owned.get();
  }
  sketches_[slot].entry = std::move(entry);
  bytes_ += entry_bytes;
  return sketches_[slot].entry.get();
}

void SharedProjections::publish_ffn_sketch(int64_t l, int64_t k) {
  const std::lock_guard<std::mutex> lock(mu_);
  const auto slot = static_cast<size_t>(l * d_mlp_ + k);
  if (k >= 0 && k < d_mlp_ && slot < sketches_.size() && sketches_[slot].entry != nullptr) sketches_[slot].published = true;
}

int64_t SharedProjections::rows_kept() const {
  const std::lock_guard<std::mutex> lock(mu_);
  return kept_;
}

int64_t SharedProjections::bytes_kept() const {
  const std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

}  // namespace reslens::analysis
