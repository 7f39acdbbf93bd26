#include "io/npy.h"

#include <cstring>
#include <string>

#include "core/file_write.h"
#include "core/mapped_file.h"
#include "reslens/error.h"

namespace reslens {

namespace {

void write_npy_raw(const std::filesystem::path& path, const void* data, size_t elem, const char* descr,
                   const std::vector<int64_t>& shape) {
  std::string dims;
  int64_t n = 1;
  for (int64_t d : shape) {
    dims += std::to_string(d) + ",";
    n *= d;
  }
  if (shape.size() > 1) dims.pop_back();  // (5,) for 1-D, (5,3) otherwise
  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Magic (6) + version (2) + header length (2) + header + '\n' must be a multiple of 64.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  // Magic, version 1.0, header length (little-endian uint16), header.
  std::string head("\x93NUMPY\x01\x00", 8);
  const auto len = static_cast<uint16_t>(header.size());
  head += static_cast<char>(len & 0xff);
  head += static_cast<char>(len >> 8);
  head += header;
  // Whole or not at all: a failed write (full disk) leaves no partial array under the name.
  write_file_atomically(path, {head, std::string_view(static_cast<const char*>(data), static_cast<size_t>(n) * elem)});
}

}  // namespace

void write_npy(const std::filesystem::path& path, const float* data, const std::vector<int64_t>& shape) {
  write_npy_raw(path, data, 4, "<f4", shape);
}

void write_npy(const std::filesystem::path& path, const double* data, const std::vector<int64_t>& shape) {
  write_npy_raw(path, data, 8, "<f8", shape);
}

NpyArray read_npy(const std::filesystem::path& path) {
  const MappedFile f(path);
  const auto b = f.bytes();
  auto fail = [&](const std::string& m) -> void { throw FormatError(path.string() + ": " + m); };
  if (b.size() < 10 || std::memcmp(b.data(), "\x93NUMPY", 6) != 0) fail("not a .npy file");
  size_t hlen = 0, off = 0;
  if (b[6] == 1) {
    hlen = static_cast<size_t>(b[8] | (b[9] << 8));
    off = 10;
  } else {
    if (b.size() < 12) fail("truncated header");
    uint32_t h32;
    std::memcpy(&h32, b.data() + 8, 4);
    hlen = h32;
    off = 12;
  }
  if (off + hlen > b.size()) fail("truncated header");
  const std::string header(reinterpret_cast<const char*>(b.data() + off), hlen);
  off += hlen;
  auto field = [&](const std::string& key) {
    const size_t k = header.find("'" + key + "'");
    if (k == std::string::npos) fail("header lacks " + key);
    return header.substr(header.find(':', k) + 1);
  };
  const std::string descr = field("descr");
  const std::string type = descr.substr(descr.find('\'') + 1, 3);
  if (field("fortran_order").find("True") < field("fortran_order").find(',')) fail("Fortran order");
  NpyArray arr;
  const std::string shape = field("shape");
  const size_t open = shape.find('('), close = shape.find(')');
  std::string dims = shape.substr(open + 1, close - open - 1);
  int64_t n = 1;
  size_t pos = 0;
  while (pos < dims.size()) {
    const size_t comma = dims.find(',', pos);
    const std::string tok = dims.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (tok.find_first_of("0123456789") != std::string::npos) {
      arr.shape.push_back(std::stoll(tok));
      n *= arr.shape.back();
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  size_t elem = 0;
  if (type == "<f4" || type == "<i4") elem = 4;
  else if (type == "<f8" || type == "<i8") elem = 8;
  else fail("unsupported dtype " + type);
  if (off + static_cast<size_t>(n) * elem > b.size()) fail("truncated data");
  arr.data.resize(static_cast<size_t>(n));
  const uint8_t* p = b.data() + off;
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* e = p + static_cast<size_t>(i) * elem;
    double v = 0;
    if (type == "<f4") { float x; std::memcpy(&x, e, sizeof x); v = static_cast<double>(x); }
    else if (type == "<f8") { std::memcpy(&v, e, 8); }
    else if (type == "<i4") { int32_t x; std::memcpy(&x, e, 4); v = x; }
    else { int64_t x; std::memcpy(&x, e, 8); v = static_cast<double>(x); }
    arr.data[static_cast<size_t>(i)] = v;
  }
  return arr;
}

}  // namespace reslens
