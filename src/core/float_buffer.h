// FloatBuffer: owned float32 storage for weights converted at load (dequantized, transposed).
// Large buffers are anonymous memory maps advised for transparent huge pages: converting a 4 GB
// model otherwise faults and clears a million 4 KB pages, which on a virtual machine is most of
// the load time. Small ones are plain vectors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace reslens {

class FloatBuffer {
 public:
  /// `n` floats, contents unspecified until written (large buffers read as zero).
  explicit FloatBuffer(int64_t n);
  /// Takes a vector's contents as they are.
  explicit FloatBuffer(std::vector<float> values);
  ~FloatBuffer();
  FloatBuffer(FloatBuffer&& other) noexcept;
  FloatBuffer& operator=(FloatBuffer&& other) noexcept;
  FloatBuffer(const FloatBuffer&) = delete;
  FloatBuffer& operator=(const FloatBuffer&) = delete;

  float* data() { return data_; }
  const float* data() const { return data_; }
  int64_t size() const { return size_; }

 private:
  void free_map();

  std::vector<float> vector_;  // small buffers and adopted vectors
  float* data_ = nullptr;
  int64_t size_ = 0;
  size_t map_bytes_ = 0;  // > 0: data_ is an anonymous map of this many bytes
};

}  // namespace reslens
