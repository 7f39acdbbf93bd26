// GgufBuilder: writes GGUF v3 bytes in memory for tests, including deliberately broken files.
// Independent of the reader (it follows ggml's gguf.h layout, not src/io/gguf.cpp).
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace reslens::test {

class GgufBuilder {
 public:
  explicit GgufBuilder(uint32_t version = 3) : version_(version) {}

  void kv_string(const std::string& key, const std::string& value) {
    key_(key);
    u32(kv_, 8);
    str(kv_, value);
    ++n_kv_;
  }
  void kv_u32(const std::string& key, uint32_t value) {
    key_(key);
    u32(kv_, 4);
    u32(kv_, value);
    ++n_kv_;
  }
  void kv_f32(const std::string& key, float value) {
    key_(key);
    u32(kv_, 6);
    raw(kv_, &value, 4);
    ++n_kv_;
  }
  void kv_bool(const std::string& key, bool value) {
    key_(key);
    u32(kv_, 7);
    kv_.push_back(value ? 1 : 0);
    ++n_kv_;
  }
  void kv_string_array(const std::string& key, const std::vector<std::string>& values) {
    key_(key);
    u32(kv_, 9);
    u32(kv_, 8);
    u64(kv_, values.size());
    for (const auto& v : values) str(kv_, v);
    ++n_kv_;
  }
  void kv_f32_array(const std::string& key, const std::vector<float>& values) {
    key_(key);
    u32(kv_, 9);
    u32(kv_, 6);
    u64(kv_, values.size());
    for (float v : values) raw(kv_, &v, 4);
    ++n_kv_;
  }
  void kv_i32_array(const std::string& key, const std::vector<int32_t>& values) {
    key_(key);
    u32(kv_, 9);
    u32(kv_, 5);
    u64(kv_, values.size());
    for (int32_t v : values) raw(kv_, &v, 4);
    ++n_kv_;
  }
  /// Appends raw bytes to the metadata section (for corrupt-file tests).
  void kv_raw(const std::vector<uint8_t>& bytes, uint64_t count_as = 1) {
    kv_.insert(kv_.end(), bytes.begin(), bytes.end());
    n_kv_ += count_as;
  }

  /// An F32 tensor with ggml dims `ne` (innermost first) and the given values.
  void tensor_f32(const std::string& name, std::vector<uint64_t> ne, const std::vector<float>& values) {
    std::vector<uint8_t> bytes(values.size() * 4);
    std::memcpy(bytes.data(), values.data(), bytes.size());
    tensor_raw(name, std::move(ne), 0, bytes);
  }
  /// A tensor of any ggml type with its bytes as given.
  void tensor_raw(const std::string& name, std::vector<uint64_t> ne, uint32_t type,
                  const std::vector<uint8_t>& bytes) {
    while (data_.size() % 32 != 0) data_.push_back(0);
    str(infos_, name);
    u32(infos_, static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) u64(infos_, d);
    u32(infos_, type);
    u64(infos_, data_.size());
    data_.insert(data_.end(), bytes.begin(), bytes.end());
    ++n_tensors_;
  }

  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> out = {'G', 'G', 'U', 'F'};
    u32(out, version_);
    u64(out, n_tensors_);
    u64(out, n_kv_);
    out.insert(out.end(), kv_.begin(), kv_.end());
    out.insert(out.end(), infos_.begin(), infos_.end());
    while (out.size() % 32 != 0) out.push_back(0);
    out.insert(out.end(), data_.begin(), data_.end());
    return out;
  }

  void write(const std::filesystem::path& path) const { write_bytes(path, bytes()); }

  static void write_bytes(const std::filesystem::path& path, const std::vector<uint8_t>& b) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  }

  static void u32(std::vector<uint8_t>& b, uint32_t v) { raw(b, &v, 4); }
  static void u64(std::vector<uint8_t>& b, uint64_t v) { raw(b, &v, 8); }
  static void str(std::vector<uint8_t>& b, const std::string& s) {
    u64(b, s.size());
    b.insert(b.end(), s.begin(), s.end());
  }
  static void raw(std::vector<uint8_t>& b, const void* p, size_t n) {
    const auto* c = static_cast<const uint8_t*>(p);
    b.insert(b.end(), c, c + n);
  }

 private:
  void key_(const std::string& key) { str(kv_, key); }

  uint32_t version_;
  uint64_t n_kv_ = 0;
  uint64_t n_tensors_ = 0;
  std::vector<uint8_t> kv_;
  std::vector<uint8_t> infos_;
  std::vector<uint8_t> data_;
};

}  // namespace reslens::test
