#include "core/float_buffer.h"

#include <sys/mman.h>

#include <new>
#include <utility>

namespace reslens {

namespace {
constexpr size_t kHugePage = size_t{2} << 20;
// Below this a vector is as good: too small for a huge page to matter.
constexpr size_t kMapAbove = size_t{8} << 20;
}  // namespace

FloatBuffer::FloatBuffer(int64_t n) : size_(n) {
  const size_t bytes = static_cast<size_t>(n) * sizeof(float);
  if (bytes < kMapAbove) {
    vector_.resize(static_cast<size_t>(n));
    data_ = vector_.data();
    return;
  }
  map_bytes_ = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  void* p = ::mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  // Advice only: without transparent huge pages the map works with 4 KB pages.
  ::madvise(p, map_bytes_, MADV_HUGEPAGE);
  data_ = static_cast<float*>(p);
}

FloatBuffer::FloatBuffer(std::vector<float> values)
    : vector_(std::move(values)), data_(vector_.data()), size_(static_cast<int64_t>(vector_.size())) {}

FloatBuffer::~FloatBuffer() { free_map(); }

FloatBuffer::FloatBuffer(FloatBuffer&& other) noexcept
    : vector_(std::move(other.vector_)), data_(other.data_), size_(other.size_), map_bytes_(other.map_bytes_) {
  other.data_ = nullptr;
  other.size_ = 0;
  other.map_bytes_ = 0;
}

FloatBuffer& FloatBuffer::operator=(FloatBuffer&& other) noexcept {
  if (this != &other) {
    free_map();
    vector_ = std::move(other.vector_);
    data_ = other.data_;
    size_ = other.size_;
    map_bytes_ = other.map_bytes_;
    other.data_ = nullptr;
    other.size_ = 0;
    other.map_bytes_ = 0;
  }
  return *this;
}

void FloatBuffer::free_map() {
  if (map_bytes_ > 0 && data_ != nullptr) ::munmap(data_, map_bytes_);
  map_bytes_ = 0;
}

}  // namespace reslens
