// ModelStorage owns the memory behind a Model's weight views: file mappings (float32 weights are
// used in place) and buffers for weights that had to be converted (F16/BF16 and llama.cpp's quantized types are
// dequantized to float32 when the model loads; transposed layouts are copied once).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/float_buffer.h"
#include "core/mapped_file.h"

namespace reslens {

/// How a tensor's elements are stored in the file.
enum class StorageType { kF32, kF16, kBF16, kQ8_0, kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ2_K, kQ3_K, kQ4_K, kQ5_K, kQ6_K, kIQ4_NL, kIQ4_XS };
const char* storage_type_name(StorageType t);

class ModelStorage {
 public:
  void keep(std::shared_ptr<const MappedFile> map) { maps_.push_back(std::move(map)); }

  /// Takes ownership of a buffer and returns a pointer that stays valid for the storage's life.
  const float* own(std::vector<float> buffer);
  const float* own(FloatBuffer buffer);

  /// float32 values of `n` elements stored as `type` in `bytes`: a pointer into the mapping when the
  /// data is float32 and 4-byte aligned, otherwise a converted, owned copy.
  const float* floats(std::span<const uint8_t> bytes, StorageType type, int64_t n);

  /// Drops the file pages behind `bytes` from memory once they have been converted (see
  /// MappedFile::release); bytes outside every kept map are ignored.
  void release(std::span<const uint8_t> bytes) const;
  /// Frees an intermediate buffer returned by own()/floats() when it is the latest one (a
  /// conversion that is about to be transposed into another owned buffer); otherwise does nothing.
  void discard(const float* p);

  /// The first kept map whose file changed on disk since it was mapped (MappedFile::changed_on_disk),
  /// or an empty path. Converted weights no longer depend on their file, so only kept maps count.
  std::filesystem::path changed_file() const;

  int64_t owned_bytes() const { return owned_bytes_; }
  int64_t mapped_bytes() const { return mapped_bytes_; }

 private:
  std::vector<std::shared_ptr<const MappedFile>> maps_;
  std::deque<FloatBuffer> owned_;
  int64_t owned_bytes_ = 0;
  int64_t mapped_bytes_ = 0;
};

}  // namespace reslens
