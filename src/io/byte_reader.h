// ByteReader: a bounds-checked little-endian cursor over untrusted bytes. Every read checks the bytes
// remaining, so a truncated or corrupt file becomes a FormatError naming the file and the byte
// offset, never an out-of-bounds read.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>

#include "reslens/error.h"

namespace reslens {

class ByteReader {
 public:
  ByteReader(std::span<const uint8_t> bytes, std::string source)
      : bytes_(bytes), source_(std::move(source)) {}

  size_t offset() const { return offset_; }
  size_t remaining() const { return bytes_.size() - offset_; }
  size_t size() const { return bytes_.size(); }
  const std::string& source() const { return source_; }

  template <typename T>
  T read() {
    static_assert(std::is_trivially_copyable_v<T>);
    require(sizeof(T), "a value");
    T value;
    std::memcpy(&value, bytes_.data() + offset_, sizeof(T));
    offset_ += sizeof(T);
    return value;
  }

  /// A string of `length` bytes (the caller has read the length).
  std::string read_string(uint64_t length, const char* what) {
    require(length, what);
    std::string s(reinterpret_cast<const char*>(bytes_.data() + offset_), static_cast<size_t>(length));
    offset_ += static_cast<size_t>(length);
    return s;
  }

  void skip(uint64_t n, const char* what) {
    require(n, what);
    offset_ += static_cast<size_t>(n);
  }

  void seek(size_t offset) {
    if (offset > bytes_.size()) fail("seek past the end of the file");
    offset_ = offset;
  }

  /// Throws unless `n` more bytes are available.
  void require(uint64_t n, const char* what) const {
    if (n > remaining()) {
      fail(std::string("truncated: ") + what + " needs " + std::to_string(n) + " bytes at offset " +
           std::to_string(offset_) + " but only " + std::to_string(remaining()) + " remain");
    }
  }

  [[noreturn]] void fail(const std::string& message) const {
    throw FormatError(source_ + ": " + message);
  }

 private:
  std::span<const uint8_t> bytes_;
  std::string source_;
  size_t offset_ = 0;
};

}  // namespace reslens
