// Tensor: an owning, row-major float32 array with a shape (outermost dimension first, numpy order).
// This is deliberately not a tensor library: no broadcasting, no autograd, 1 to 4 dimensions. It holds
// captured activations and analysis results; weights are read through views (weights.h).
//
// Dimension names used in shape comments throughout reslens:
//   pos (tokens), d_model, n_heads, n_kv_heads, d_head, d_mlp, d_vocab, n_layers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace reslens {

namespace detail {
/// Storage of large float buffers (captured activations, the forward pass's scratch) comes from a
/// process-wide pool of freed blocks. Consecutive runs allocate the same sizes, and memory fresh from
/// the kernel costs a page fault and a zero-fill per 4 KiB page: for GPT-2 124M at 128 tokens every
/// hook is ~100 MB, and faulting it in cost as much as a third of the forward pass. Blocks under
/// 16 KiB go straight to operator new. Thread-safe; src/core/buffer_pool.cpp.
void* pooled_allocate(std::size_t bytes);
void pooled_deallocate(void* p, std::size_t bytes) noexcept;
}  // namespace detail

/// The most memory the buffer pool keeps after it is freed (default 1 GiB; 0 turns pooling off and
/// frees what it holds). Blocks beyond the limit are returned to the system, oldest first.
void set_buffer_pool_limit(std::size_t bytes);
/// Bytes the pool holds right now (freed blocks waiting for reuse).
std::size_t buffer_pool_retained();

/// Tensor storage's allocator: pooled (see detail::pooled_allocate), and new floats are left
/// uninitialised unless a value is given, so a tensor that is about to be overwritten (a recorded
/// activation) is not first filled with zeros.
template <typename T>
struct DefaultInitAllocator : std::allocator<T> {
  using value_type = T;
  template <typename U>
  struct rebind {
    using other = DefaultInitAllocator<U>;
  };
  DefaultInitAllocator() = default;
  template <typename U>
  DefaultInitAllocator(const DefaultInitAllocator<U>&) noexcept {}  // NOLINT(google-explicit-constructor)
  T* allocate(std::size_t n) { return static_cast<T*>(detail::pooled_allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { detail::pooled_deallocate(p, n * sizeof(T)); }
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  friend bool operator==(const DefaultInitAllocator&, const DefaultInitAllocator&) noexcept { return true; }
};

class Tensor {
 public:
  Tensor() = default;
  /// A zero-filled tensor of the given shape.
  explicit Tensor(std::vector<int64_t> shape);
  Tensor(std::initializer_list<int64_t> shape) : Tensor(std::vector<int64_t>(shape)) {}
  /// A tensor whose values are left uninitialised, for callers that write every element.
  static Tensor uninitialized(std::vector<int64_t> shape);

  const std::vector<int64_t>& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_.at(static_cast<size_t>(i)); }
  int64_t numel() const { return static_cast<int64_t>(data_.size()); }
  bool empty() const { return data_.empty(); }

  float* data() { return data_.data(); }
  const float* data() const { return data_.data(); }
  std::span<float> values() { return data_; }
  std::span<const float> values() const { return data_; }

  /// Row i of the tensor seen as [dim(0), numel/dim(0)].
  float* row(int64_t i) { return data_.data() + i * row_size(); }
  const float* row(int64_t i) const { return data_.data() + i * row_size(); }
  int64_t row_size() const { return shape_.empty() || shape_[0] == 0 ? 0 : numel() / shape_[0]; }

  /// Element access with bounds checks (for tests and small lookups, not hot loops).
  float at(std::initializer_list<int64_t> index) const;

  /// The shape as "[5, 64]".
  std::string shape_string() const;

 private:
  std::vector<int64_t> shape_;
  std::vector<float, DefaultInitAllocator<float>> data_;
};

}  // namespace reslens
