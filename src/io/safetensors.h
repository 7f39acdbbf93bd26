// safetensors reader: u64 little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {...}}
// then the data; offsets are relative to the first byte after the header. Every offset, size and
// overlap is checked against the file before any tensor is touched.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/mapped_file.h"

namespace reslens::safetensors {

struct TensorDesc {
  std::string name;
  std::string dtype;           ///< "F32", "F16", "BF16", ... as the file says
  std::vector<int64_t> shape;  ///< row-major
  uint64_t begin = 0;          ///< relative to the data section
  uint64_t end = 0;
};

class File {
 public:
  explicit File(const std::filesystem::path& path);
  /// Parses bytes in memory (fuzzing); `source` names them in errors.
  File(std::span<const uint8_t> bytes, std::string source);

  const std::string& source() const { return source_; }
  const std::map<std::string, TensorDesc>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorDesc* find(const std::string& name) const;
  std::span<const uint8_t> tensor_bytes(const TensorDesc& t) const;
  std::shared_ptr<const MappedFile> mapping() const { return map_; }

 private:
  void parse(std::span<const uint8_t> bytes);

  std::shared_ptr<const MappedFile> map_;
  std::string source_;
  std::span<const uint8_t> bytes_;
  uint64_t data_offset_ = 0;
  std::map<std::string, TensorDesc> tensors_;
  std::map<std::string, std::string> metadata_;
};

/// Bytes per element of a safetensors dtype, or 0 when unknown.
uint64_t dtype_size(const std::string& dtype);

}  // namespace reslens::safetensors
