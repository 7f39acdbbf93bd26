// The buffer pool behind Tensor storage (include/reslens/tensor.h, detail::pooled_allocate).
//
// Freed blocks of 16 KiB and more are kept, up to a byte limit, and handed out again for a request
// of the same size class (whole pages). Exact classes suffice: a run allocates the same
// shapes as the previous run of the same length, which is the case that matters (benchmarks,
// dataset experiments, a server answering similar prompts). Over the limit, the oldest blocks are
// freed first. Reusing memory cannot change results: pooled floats are either overwritten or
// explicitly filled by their owner, exactly as fresh memory must be.
#include <cstddef>
#include <mutex>
#include <new>
#include <vector>

#include "reslens/tensor.h"

namespace reslens {

namespace {

// Below this, malloc's own free lists are fast. Above it malloc trims freed memory at the top of
// the heap back to the kernel, so an 8-token run with every hook re-faulted ~1400 pages per run.
constexpr std::size_t kMinPooled = 16 * 1024;
constexpr std::size_t kGranule = 4096;
constexpr std::align_val_t kAlign{64};  // a cache line: SIMD loads never straddle one at row starts

std::size_t size_class(std::size_t bytes) { return (bytes + kGranule - 1) / kGranule * kGranule; }

struct Block {
  std::size_t size;
  void* ptr;
};

class Pool {
 public:
  void* take(std::size_t size) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      // Newest first: the block most likely still in cache.
      for (std::size_t i = free_.size(); i-- > 0;) {
        if (free_[i].size == size) {
          void* p = free_[i].ptr;
          free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
          retained_ -= size;
          return p;
        }
      }
    }
    return ::operator new(size, kAlign);
  }

  void give(void* p, std::size_t size) noexcept {
    std::vector<Block> evicted;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (size > limit_) {
        evicted.push_back({size, p});
      } else {
        free_.push_back({size, p});
        retained_ += size;
        evict_over_limit(evicted);
      }
    }
    for (const Block& b : evicted) ::operator delete(b.ptr, kAlign);  // outside the lock
  }

  void set_limit(std::size_t bytes) noexcept {
    std::vector<Block> evicted;
    {
      std::lock_guard<std::mutex> lock(mu_);
      limit_ = bytes;
      evict_over_limit(evicted);
    }
    for (const Block& b : evicted) ::operator delete(b.ptr, kAlign);
  }

  std::size_t retained() {
    std::lock_guard<std::mutex> lock(mu_);
    return retained_;
  }

 private:
  void evict_over_limit(std::vector<Block>& evicted) noexcept {
    std::size_t n = 0;
    while (retained_ > limit_ && n < free_.size()) retained_ -= free_[n++].size;
    evicted.insert(evicted.end(), free_.begin(), free_.begin() + static_cast<std::ptrdiff_t>(n));
    free_.erase(free_.begin(), free_.begin() + static_cast<std::ptrdiff_t>(n));
  }

  std::mutex mu_;
  std::vector<Block> free_;  // oldest first
  std::size_t retained_ = 0;
  std::size_t limit_ = std::size_t{1} << 30;
};

// Never destroyed: tensors with static storage duration may be freed after exit handlers run.
// The blocks stay reachable from here, so leak checkers do not report them.
Pool& pool() {
  static Pool* p = new Pool;
  return *p;
}

}  // namespace

namespace detail {

void* pooled_allocate(std::size_t bytes) {
  if (bytes < kMinPooled) return ::operator new(bytes, kAlign);
  return pool().take(size_class(bytes));
}

void pooled_deallocate(void* p, std::size_t bytes) noexcept {
  if (p == nullptr) return;
  if (bytes < kMinPooled) {
    ::operator delete(p, kAlign);
    return;
  }
  pool().give(p, size_class(bytes));
}

}  // namespace detail

void set_buffer_pool_limit(std::size_t bytes) { pool().set_limit(bytes); }

std::size_t buffer_pool_retained() { return pool().retained(); }

}  // namespace reslens
