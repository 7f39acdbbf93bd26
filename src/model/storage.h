// ModelStorage owns the memory behind a Model's weight views: file mappings (matrices are used in
// place in the file's encoding, float32 or not) and buffers for what had to be converted or copied
// (vectors as float32, transposed or regrouped layouts, and every weight when LoadOptions asks for
// float32).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/float_buffer.h"
#include "core/mapped_file.h"
#include "model/dequantize.h"
#include "reslens/weights.h"

namespace reslens {

/// How a tensor's elements are stored in the file (the encoding its matrix keeps in memory).
using StorageType = WeightEncoding;
const char* storage_type_name(StorageType t);

/// A type's block: `elements` values encoded in `bytes` bytes (1 and 4 for F32).
struct EncodingBlock {
  int64_t elements;
  int64_t bytes;
};
EncodingBlock encoding_block(StorageType t);
/// The conversion of a non-F32 type to float32 (dequantize.h); InternalError for F32.
DequantizeFn dequantize_fn(StorageType t);

class ModelStorage {
 public:
  /// keep_encoded: matrices stay in the file's encoding (packed views); else all become float32.
  explicit ModelStorage(bool keep_encoded = true) : keep_encoded_(keep_encoded) {}
  bool keep_encoded() const { return keep_encoded_; }

  void keep(std::shared_ptr<const MappedFile> map) { maps_.push_back(std::move(map)); }

  /// Takes ownership of a buffer and returns a pointer that stays valid for the storage's life.
  const float* own(std::vector<float> buffer);
  const float* own(FloatBuffer buffer);

  /// float32 values of `n` elements stored as `type` in `bytes`: a pointer into the mapping when the
  /// data is float32 and 4-byte aligned, otherwise a converted, owned copy.
  const float* floats(std::span<const uint8_t> bytes, StorageType type, int64_t n);

  /// A [rows, cols] view of `bytes` in their own encoding (rows whole blocks: the GGUF reader
  /// checks it), kept in the mapping. float32 data goes through floats() instead.
  MatrixView packed(std::span<const uint8_t> bytes, StorageType type, int64_t rows, int64_t cols);
  /// Takes ownership of encoded bytes (rows regrouped or gathered at load); the pointer stays valid.
  const uint8_t* own_bytes(std::vector<uint8_t> bytes);

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
  /// Bytes of weights used in place from the file (float32 or encoded).
  int64_t mapped_bytes() const { return mapped_bytes_; }

 private:
  bool keep_encoded_ = true;
  std::vector<std::shared_ptr<const MappedFile>> maps_;
  std::deque<FloatBuffer> owned_;
  std::deque<std::vector<uint8_t>> owned_encoded_;
  int64_t owned_bytes_ = 0;
  int64_t mapped_bytes_ = 0;
};

}  // namespace reslens
