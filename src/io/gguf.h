// GGUF reader (versions 2 and 3, little-endian). Format, per ggml's gguf.h:
//   magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv | n_kv x (string key, u32 type, value)
//   | n_tensors x (string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset)
//   | padding to `general.alignment` (default 32) | tensor data (offsets relative to its start)
// A string is u64 length + bytes. ne[0] is the innermost (contiguous) dimension. Everything read is
// validated against the file size and sane limits before use.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/mapped_file.h"

namespace reslens::gguf {

enum class ValueType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5, kFloat32 = 6,
  kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11, kFloat64 = 12,
};

/// ggml tensor types reslens knows by name. All but Q8_1 and Q8_K (intermediate types that model
/// files do not hold) and the integer types can be loaded.
enum class TensorType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ8_1 = 9,
  kQ2_K = 10, kQ3_K = 11, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kQ8_K = 15, kIQ4_NL = 20, kIQ4_XS = 23, kBF16 = 30,
};
std::string tensor_type_name(uint32_t type);

/// One metadata value. Arrays hold either strings or numbers (all numeric types widen to double
/// and int64; GGUF integers up to 2^53 survive the double).
struct Value {
  ValueType type = ValueType::kUint8;
  ValueType array_type = ValueType::kUint8;  ///< element type when type == kArray
  int64_t i = 0;       ///< integer and bool values
  double f = 0.0;      ///< every numeric value, as double
  std::string s;       ///< string values
  std::vector<std::string> strings;  ///< string arrays
  std::vector<double> numbers;       ///< numeric arrays

  bool is_integer() const;
  bool is_number() const { return is_integer() || type == ValueType::kFloat32 || type == ValueType::kFloat64; }
};

struct TensorDesc {
  std::string name;
  uint32_t type = 0;
  std::vector<int64_t> ne;  ///< ggml order: ne[0] innermost
  uint64_t offset = 0;      ///< relative to the data section
  uint64_t n_bytes = 0;

  /// Row-major shape, outermost first (ne reversed).
  std::vector<int64_t> shape() const { return {ne.rbegin(), ne.rend()}; }
  int64_t n_elements() const;
};

class File {
 public:
  /// Parses the header, metadata and tensor table of `path`. Throws IoError / FormatError.
  explicit File(const std::filesystem::path& path);
  /// Parses bytes already in memory (used by the fuzz target); `source` names them in errors.
  File(std::span<const uint8_t> bytes, std::string source);

  uint32_t version() const { return version_; }
  const std::string& source() const { return source_; }
  const std::map<std::string, Value>& metadata() const { return kv_; }
  const std::vector<TensorDesc>& tensors() const { return tensors_; }

  const Value* find(const std::string& key) const;
  const TensorDesc* find_tensor(const std::string& name) const;

  /// Typed metadata access; throw FormatError naming the key when missing or of the wrong type.
  std::string get_string(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;
  std::optional<int64_t> get_int_opt(const std::string& key) const;
  std::optional<double> get_float_opt(const std::string& key) const;
  std::optional<std::string> get_string_opt(const std::string& key) const;
  std::optional<bool> get_bool_opt(const std::string& key) const;

  /// The bytes of a tensor's data (validated to lie inside the file).
  std::span<const uint8_t> tensor_bytes(const TensorDesc& t) const;
  /// The mapping, when constructed from a path (so weights can point into it).
  std::shared_ptr<const MappedFile> mapping() const { return map_; }

 private:
  void parse(std::span<const uint8_t> bytes);

  std::shared_ptr<const MappedFile> map_;
  std::string source_;
  std::span<const uint8_t> bytes_;
  uint32_t version_ = 0;
  uint64_t data_offset_ = 0;
  std::map<std::string, Value> kv_;
  std::vector<TensorDesc> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

/// Bytes a tensor of `type` with `n_elements` occupies; throws UnsupportedError for unknown types
/// and FormatError when n_elements is not a whole number of blocks.
uint64_t tensor_nbytes(uint32_t type, int64_t n_elements, const std::string& context);

}  // namespace reslens::gguf
