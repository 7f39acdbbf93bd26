#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "reslens/error.h"

namespace reslens::safetensors {

namespace {
constexpr uint64_t kMaxHeader = uint64_t{100} << 20;  // the format's own limit is 100 MB
}

uint64_t dtype_size(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL" || dtype == "F8_E4M3" || dtype == "F8_E5M2") return 1;
  return 0;
}

File::File(const std::filesystem::path& path)
    : map_(std::make_shared<MappedFile>(path)), source_(path.string()) {
  parse(map_->bytes());
}

File::File(std::span<const uint8_t> bytes, std::string source) : source_(std::move(source)) { parse(bytes); }

void File::parse(std::span<const uint8_t> bytes) {
  bytes_ = bytes;
  auto fail = [&](const std::string& m) { throw FormatError(source_ + ": " + m); };
  if (bytes.size() < 8) fail("not a safetensors file (shorter than its 8-byte header length)");
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  if (n > kMaxHeader) fail("header length " + std::to_string(n) + " is absurd (limit 100 MB)");
  if (n > bytes.size() - 8) {
    fail("header length " + std::to_string(n) + " points past the end of the file (" +
         std::to_string(bytes.size()) + " bytes)");
  }
  data_offset_ = 8 + n;
  const uint64_t data_size = bytes.size() - data_offset_;
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + static_cast<std::ptrdiff_t>(8 + n));
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) fail("header is not a JSON object");
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [name, v] : header.items()) {
    if (name == "__metadata__") {
      if (v.is_object()) {
        for (const auto& [k, mv] : v.items()) {
          if (mv.is_string()) metadata_[k] = mv.get<std::string>();
        }
      }
      continue;
    }
    const std::string ctx = "tensor '" + name + "'";
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets") ||
        !v["dtype"].is_string() || !v["shape"].is_array() || !v["data_offsets"].is_array() ||
        v["data_offsets"].size() != 2) {
      fail(ctx + " lacks dtype, shape or data_offsets");
    }
    TensorDesc t;
    t.name = name;
    t.dtype = v["dtype"].get<std::string>();
    const uint64_t esize = dtype_size(t.dtype);
    if (esize == 0) fail(ctx + " has unknown dtype " + t.dtype);
    uint64_t count = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned()) fail(ctx + " has a shape entry that is not a non-negative integer");
      const auto x = d.get<uint64_t>();
      if (x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) || __builtin_mul_overflow(count, x, &count)) {
        fail(ctx + " has an absurd shape");
      }
      t.shape.push_back(static_cast<int64_t>(x));
    }
    const auto& off = v["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned()) fail(ctx + " has invalid data_offsets");
    t.begin = off[0].get<uint64_t>();
    t.end = off[1].get<uint64_t>();
    uint64_t nbytes = 0;
    if (t.end < t.begin || __builtin_mul_overflow(count, esize, &nbytes) || t.end - t.begin != nbytes) {
      fail(ctx + " data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
           ") do not match its shape and dtype");
    }
    if (t.end > data_size) {
      fail(ctx + " data runs past the end of the file (ends at " + std::to_string(t.end) + ", data holds " +
           std::to_string(data_size) + " bytes)");
    }
    if (t.begin < t.end) ranges.emplace_back(t.begin, t.end);
    tensors_.emplace(name, std::move(t));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) {
      fail("tensors overlap in the data section (bytes " + std::to_string(ranges[i].first) + ".." +
           std::to_string(ranges[i - 1].second) + ")");
    }
  }
}

const TensorDesc* File::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

std::span<const uint8_t> File::tensor_bytes(const TensorDesc& t) const {
  return bytes_.subspan(static_cast<size_t>(data_offset_ + t.begin), static_cast<size_t>(t.end - t.begin));
}

}  // namespace reslens::safetensors
