// GGUF parsing with every count, length and offset checked against the bytes that exist.
#include "io/gguf.h"

#include <limits>

#include "io/byte_reader.h"
#include "reslens/error.h"

namespace reslens::gguf {

namespace {

constexpr uint64_t kMaxTensors = 1u << 20;
constexpr uint64_t kMaxKv = 1u << 20;
constexpr uint32_t kMaxDims = 4;
constexpr uint64_t kDefaultAlignment = 32;

struct TypeTraits {
  uint32_t type;
  const char* name;
  int64_t block_elements;
  uint64_t block_bytes;
};

constexpr TypeTraits kTypes[] = {
    {0, "F32", 1, 4},       {1, "F16", 1, 2},        {2, "Q4_0", 32, 18},    {3, "Q4_1", 32, 20},
    {6, "Q5_0", 32, 22},    {7, "Q5_1", 32, 24},     {8, "Q8_0", 32, 34},    {9, "Q8_1", 32, 36},
    {10, "Q2_K", 256, 84},  {11, "Q3_K", 256, 110},  {12, "Q4_K", 256, 144}, {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210}, {15, "Q8_K", 256, 292},  {20, "IQ4_NL", 32, 18}, {23, "IQ4_XS", 256, 136},
    {24, "I8", 1, 1},       {25, "I16", 1, 2},
    {26, "I32", 1, 4},      {27, "I64", 1, 8},       {28, "F64", 1, 8},      {30, "BF16", 1, 2},
};

const TypeTraits* find_type(uint32_t type) {
  for (const auto& t : kTypes) {
    if (t.type == type) return &t;
  }
  return nullptr;
}

uint64_t scalar_size(ValueType t) {
  switch (t) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kBool:
      return 1;
    case ValueType::kUint16:
    case ValueType::kInt16:
      return 2;
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kFloat32:
      return 4;
    case ValueType::kUint64:
    case ValueType::kInt64:
    case ValueType::kFloat64:
    case ValueType::kString:  // at least its u64 length
      return 8;
    case ValueType::kArray:
      return 12;
  }
  return 0;
}

bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::kFloat64); }

std::string read_gguf_string(ByteReader& r, const char* what) {
  const auto n = r.read<uint64_t>();
  return r.read_string(n, what);
}

// Reads one scalar into `v` (numeric fields set as both i and f where integral).
void read_scalar(ByteReader& r, ValueType t, Value& v) {
  switch (t) {
    case ValueType::kUint8: v.i = r.read<uint8_t>(); break;
    case ValueType::kInt8: v.i = r.read<int8_t>(); break;
    case ValueType::kUint16: v.i = r.read<uint16_t>(); break;
    case ValueType::kInt16: v.i = r.read<int16_t>(); break;
    case ValueType::kUint32: v.i = r.read<uint32_t>(); break;
    case ValueType::kInt32: v.i = r.read<int32_t>(); break;
    case ValueType::kUint64: {
      const auto u = r.read<uint64_t>();
      v.i = u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
                ? std::numeric_limits<int64_t>::max()
                : static_cast<int64_t>(u);
      break;
    }
    case ValueType::kInt64: v.i = r.read<int64_t>(); break;
    case ValueType::kBool: {
      const auto b = r.read<uint8_t>();
      if (b > 1) r.fail("bool value " + std::to_string(b) + " at offset " + std::to_string(r.offset() - 1));
      v.i = b;
      break;
    }
    case ValueType::kFloat32: v.f = static_cast<double>(r.read<float>()); return;
    case ValueType::kFloat64: v.f = r.read<double>(); return;
    case ValueType::kString: v.s = read_gguf_string(r, "a string value"); return;
    case ValueType::kArray: r.fail("nested arrays are not supported");
  }
  v.f = static_cast<double>(v.i);
}

Value read_value(ByteReader& r, ValueType t) {
  Value v;
  v.type = t;
  if (t != ValueType::kArray) {
    read_scalar(r, t, v);
    return v;
  }
  const auto raw_elem = r.read<uint32_t>();
  if (!valid_value_type(raw_elem)) r.fail("unknown array element type " + std::to_string(raw_elem));
  v.array_type = static_cast<ValueType>(raw_elem);
  if (v.array_type == ValueType::kArray) r.fail("nested arrays are not supported");
  const auto n = r.read<uint64_t>();
  // Each element takes at least scalar_size bytes: an absurd count fails here, before allocating.
  if (n > r.remaining() / scalar_size(v.array_type)) {
    r.fail("array of " + std::to_string(n) + " elements runs past the end of the file (offset " +
           std::to_string(r.offset()) + ")");
  }
  if (v.array_type == ValueType::kString) {
    v.strings.reserve(static_cast<size_t>(n));
    for (uint64_t k = 0; k < n; ++k) v.strings.push_back(read_gguf_string(r, "a string array element"));
  } else {
    v.numbers.reserve(static_cast<size_t>(n));
    Value e;
    for (uint64_t k = 0; k < n; ++k) {
      read_scalar(r, v.array_type, e);
      v.numbers.push_back(e.f);
    }
  }
  return v;
}

const char* type_name(ValueType t) {
  switch (t) {
    case ValueType::kString: return "string";
    case ValueType::kArray: return "array";
    case ValueType::kBool: return "bool";
    case ValueType::kFloat32:
    case ValueType::kFloat64: return "float";
    default: return "integer";
  }
}

}  // namespace

std::string tensor_type_name(uint32_t type) {
  const TypeTraits* t = find_type(type);
  return t ? t->name : "type " + std::to_string(type);
}

uint64_t tensor_nbytes(uint32_t type, int64_t n_elements, const std::string& context) {
  const TypeTraits* t = find_type(type);
  if (t == nullptr) throw UnsupportedError(context + ": unknown ggml tensor type " + std::to_string(type));
  if (n_elements % t->block_elements != 0) {
    throw FormatError(context + ": " + std::to_string(n_elements) + " elements is not a whole number of " +
                      t->name + " blocks of " + std::to_string(t->block_elements));
  }
  return static_cast<uint64_t>(n_elements / t->block_elements) * t->block_bytes;
}

bool Value::is_integer() const {
  switch (type) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kUint16:
    case ValueType::kInt16:
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kUint64:
    case ValueType::kInt64:
      return true;
    default:
      return false;
  }
}

int64_t TensorDesc::n_elements() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;  // overflow excluded when the file was parsed
  return n;
}

File::File(const std::filesystem::path& path)
    : map_(std::make_shared<MappedFile>(path)), source_(path.string()) {
  parse(map_->bytes());
}

File::File(std::span<const uint8_t> bytes, std::string source) : source_(std::move(source)) {
  parse(bytes);
}

void File::parse(std::span<const uint8_t> bytes) {
  bytes_ = bytes;
  ByteReader r(bytes, source_);
  if (bytes.size() < 4 || std::memcmp(bytes.data(), "GGUF", 4) != 0) {
    r.fail("not a GGUF file (bad magic)");
  }
  r.skip(4, "the magic");
  version_ = r.read<uint32_t>();
  if (version_ == 1) r.fail("GGUF version 1 is not supported (convert it with a current llama.cpp)");
  if (version_ != 2 && version_ != 3) {
    r.fail("unsupported GGUF version " + std::to_string(version_) +
           (version_ > 0xffff ? " (a big-endian file?)" : ""));
  }
  const auto n_tensors = r.read<uint64_t>();
  const auto n_kv = r.read<uint64_t>();
  if (n_tensors > kMaxTensors) r.fail("absurd tensor count " + std::to_string(n_tensors));
  if (n_kv > kMaxKv) r.fail("absurd metadata count " + std::to_string(n_kv));

  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = read_gguf_string(r, "a metadata key");
    const auto raw_type = r.read<uint32_t>();
    if (!valid_value_type(raw_type)) {
      r.fail("metadata key '" + key + "' has unknown value type " + std::to_string(raw_type));
    }
    Value v = read_value(r, static_cast<ValueType>(raw_type));
    if (!kv_.emplace(key, std::move(v)).second) r.fail("duplicate metadata key '" + key + "'");
  }

  uint64_t alignment = kDefaultAlignment;
  if (const Value* a = find("general.alignment")) {
    if (!a->is_integer() || a->i <= 0 || (a->i & (a->i - 1)) != 0) {
      r.fail("general.alignment must be a power of two");
    }
    alignment = static_cast<uint64_t>(a->i);
  }

  tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t k = 0; k < n_tensors; ++k) {
    TensorDesc t;
    t.name = read_gguf_string(r, "a tensor name");
    const auto n_dims = r.read<uint32_t>();
    if (n_dims == 0 || n_dims > kMaxDims) {
      r.fail("tensor '" + t.name + "' has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
    }
    int64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const auto ne = r.read<uint64_t>();
      if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          __builtin_mul_overflow(n_elements, static_cast<int64_t>(ne), &n_elements)) {
        r.fail("tensor '" + t.name + "' has an absurd dimension " + std::to_string(ne));
      }
      t.ne.push_back(static_cast<int64_t>(ne));
    }
    t.type = r.read<uint32_t>();
    t.offset = r.read<uint64_t>();
    if (find_type(t.type) == nullptr) {
      throw UnsupportedError(source_ + ": tensor '" + t.name + "' has unknown ggml type " +
                             std::to_string(t.type));
    }
    t.n_bytes = tensor_nbytes(t.type, n_elements, source_ + ": tensor '" + t.name + "'");
    // ggml's quantized blocks never span rows: a row must be whole blocks (readers dequantize by row).
    if (const TypeTraits* tt = find_type(t.type); !t.ne.empty() && t.ne[0] % tt->block_elements != 0) {
      throw FormatError(source_ + ": tensor '" + t.name + "' has rows of " + std::to_string(t.ne[0]) +
                        " values, not a whole number of " + tt->name + " blocks of " + std::to_string(tt->block_elements));
    }
    if (t.offset % alignment != 0) {
      r.fail("tensor '" + t.name + "' data offset " + std::to_string(t.offset) + " is not aligned to " +
             std::to_string(alignment));
    }
    if (!tensor_index_.emplace(t.name, tensors_.size()).second) {
      r.fail("duplicate tensor name '" + t.name + "'");
    }
    tensors_.push_back(std::move(t));
  }

  data_offset_ = (r.offset() + alignment - 1) / alignment * alignment;
  if (data_offset_ > bytes.size() && !tensors_.empty()) {
    r.fail("tensor data section starts past the end of the file");
  }
  const uint64_t data_size = bytes.size() > data_offset_ ? bytes.size() - data_offset_ : 0;
  for (const TensorDesc& t : tensors_) {
    if (t.offset > data_size || t.n_bytes > data_size - t.offset) {
      r.fail("tensor '" + t.name + "' data (" + std::to_string(t.n_bytes) + " bytes at offset " +
             std::to_string(t.offset) + ") runs past the end of the file (data section holds " +
             std::to_string(data_size) + " bytes)");
    }
  }
}

const Value* File::find(const std::string& key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

const TensorDesc* File::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::string File::get_string(const std::string& key) const {
  auto v = get_string_opt(key);
  if (!v) throw FormatError(source_ + ": metadata key '" + key + "' is missing");
  return *v;
}

int64_t File::get_int(const std::string& key) const {
  auto v = get_int_opt(key);
  if (!v) throw FormatError(source_ + ": metadata key '" + key + "' is missing");
  return *v;
}

double File::get_float(const std::string& key) const {
  auto v = get_float_opt(key);
  if (!v) throw FormatError(source_ + ": metadata key '" + key + "' is missing");
  return *v;
}

std::optional<int64_t> File::get_int_opt(const std::string& key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_integer()) {
    throw FormatError(source_ + ": metadata key '" + key + "' should be an integer, not " +
                      type_name(v->type));
  }
  return v->i;
}

std::optional<double> File::get_float_opt(const std::string& key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number()) {
    throw FormatError(source_ + ": metadata key '" + key + "' should be a number, not " +
                      type_name(v->type));
  }
  return v->f;
}

std::optional<std::string> File::get_string_opt(const std::string& key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->type != ValueType::kString) {
    throw FormatError(source_ + ": metadata key '" + key + "' should be a string, not " +
                      type_name(v->type));
  }
  return v->s;
}

std::optional<bool> File::get_bool_opt(const std::string& key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->type != ValueType::kBool && !v->is_integer()) {
    throw FormatError(source_ + ": metadata key '" + key + "' should be a bool, not " + type_name(v->type));
  }
  return v->i != 0;
}

std::span<const uint8_t> File::tensor_bytes(const TensorDesc& t) const {
  return bytes_.subspan(static_cast<size_t>(data_offset_ + t.offset), static_cast<size_t>(t.n_bytes));
}

}  // namespace reslens::gguf
