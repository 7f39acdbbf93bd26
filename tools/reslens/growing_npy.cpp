// GrowingNpy (growing_npy.h): .npy format version 1.0, little-endian, C order.
#include "growing_npy.h"

#include <cstring>

#include "reslens/error.h"

namespace reslens::cli {

namespace fs = std::filesystem;

namespace {

constexpr char kMagic[] = "\x93NUMPY\x01\x00";  // magic and version 1.0 (8 bytes)

std::string shape_tuple(int64_t rows, const std::vector<int64_t>& row_shape) {
  std::string s = "(" + std::to_string(rows) + ",";
  for (int64_t d : row_shape) s += " " + std::to_string(d) + ",";
  if (!row_shape.empty()) s.pop_back();  // (5,) for 1-D, (5, 3) otherwise
  return s + ")";
}

std::string header_dict(const std::string& descr, int64_t rows, const std::vector<int64_t>& row_shape) {
  return "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape_tuple(rows, row_shape) + ", }";
}

// The shape tuple of a header this file wrote, or an empty vector when there is none to parse.
std::vector<int64_t> parse_shape(const std::string& header) {
  const std::string key = "'shape': (";
  const size_t k = header.find(key);
  if (k == std::string::npos) return {};
  const size_t end = header.find(')', k);
  if (end == std::string::npos) return {};
  std::vector<int64_t> dims;
  const std::string inner = header.substr(k + key.size(), end - k - key.size());
  size_t i = 0;
  while (i < inner.size()) {
    while (i < inner.size() && (inner[i] == ' ' || inner[i] == ',')) ++i;
    if (i == inner.size()) break;
    size_t j = i;
    while (j < inner.size() && inner[j] >= '0' && inner[j] <= '9') ++j;
    if (j == i || j - i > 18) return {};
    dims.push_back(std::stoll(inner.substr(i, j - i)));
    i = j;
  }
  return dims;
}

}  // namespace

GrowingNpy::GrowingNpy(fs::path path, std::string descr, std::vector<int64_t> row_shape)
    : path_(std::move(path)), descr_(std::move(descr)), row_shape_(std::move(row_shape)) {
  for (int64_t d : row_shape_) row_elements_ *= d;
  // Room for a row count of 18 digits: the header never changes length as the file grows.
  const size_t widest = 10 + header_dict(descr_, 999999999999999999LL, row_shape_).size() + 1;
  header_bytes_ = (widest + 63) / 64 * 64;
}

std::string GrowingNpy::header(int64_t rows) const {
  std::string dict = header_dict(descr_, rows, row_shape_);
  dict.append(header_bytes_ - 10 - dict.size() - 1, ' ');
  dict += '\n';
  const auto len = static_cast<uint16_t>(dict.size());
  std::string head(kMagic, 8);
  head += static_cast<char>(len & 0xff);
  head += static_cast<char>(len >> 8);
  return head + dict;
}

void GrowingNpy::open_stream() {
  f_.close();
  f_.clear();
  f_.open(path_, std::ios::in | std::ios::out | std::ios::binary);
  if (!f_) throw IoError(path_.string() + ": cannot open for writing");
}

void GrowingNpy::create() {
  {
    std::ofstream o(path_, std::ios::binary | std::ios::trunc);
    o << header(0);
    if (!o) throw IoError(path_.string() + ": cannot write");
  }
  rows_ = 0;
  open_stream();
}

void GrowingNpy::keep(int64_t rows) {
  const std::string why = ": does not match the kept lines of the results (pass --force to start over)";
  std::error_code ec;
  if (!fs::is_regular_file(path_, ec)) throw FormatError(path_.string() + ": missing" + why);
  const auto size = static_cast<int64_t>(fs::file_size(path_, ec));
  std::string head(header_bytes_, '\0');
  {
    std::ifstream in(path_, std::ios::binary);
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    if (in.gcount() != static_cast<std::streamsize>(head.size())) {
      throw FormatError(path_.string() + ": not a .npy file of this batch (short header)" + why);
    }
  }
  const std::vector<int64_t> dims = parse_shape(head);
  if (dims.empty() || head != header(dims[0])) {
    std::string want = descr_ + " [n";
    for (int64_t d : row_shape_) want += ", " + std::to_string(d);
    throw FormatError(path_.string() + ": not a .npy file of this batch (its header is not " + want + "])" + why);
  }
  const int64_t row_bytes = row_elements_ * 8;
  const int64_t held = (size - static_cast<int64_t>(header_bytes_)) / row_bytes;
  if (held < rows) {
    throw FormatError(path_.string() + ": holds " + std::to_string(held) + " prompt(s), the kept lines need " +
                      std::to_string(rows) + why);
  }
  fs::resize_file(path_, static_cast<uintmax_t>(static_cast<int64_t>(header_bytes_) + rows * row_bytes), ec);
  if (ec) throw IoError(path_.string() + ": cannot cut back (" + ec.message() + ")");
  rows_ = rows;
  open_stream();
  f_.seekp(0);
  f_ << header(rows_);
  f_.flush();
  if (!f_) throw IoError(path_.string() + ": cannot write");
}

void GrowingNpy::append(const void* row) {
  if (!f_.is_open()) open_stream();
  f_.seekp(static_cast<std::streamoff>(header_bytes_) + static_cast<std::streamoff>(rows_ * row_elements_ * 8));
  f_.write(static_cast<const char*>(row), static_cast<std::streamsize>(row_elements_ * 8));
  ++rows_;
  // The count after the data: a cut between the two leaves a row past the count, never a count past the rows.
  f_.flush();
  f_.seekp(0);
  f_ << header(rows_);
  f_.flush();
  if (!f_) throw IoError(path_.string() + ": cannot write (disk full?)");
}

void GrowingNpy::read(int64_t i, void* out) {
  if (!f_.is_open()) {
    f_.open(path_, std::ios::in | std::ios::binary);  // reading needs no write access
    if (!f_) throw IoError(path_.string() + ": cannot open");
  }
  f_.seekg(static_cast<std::streamoff>(header_bytes_) + static_cast<std::streamoff>(i * row_elements_ * 8));
  f_.read(static_cast<char*>(out), static_cast<std::streamsize>(row_elements_ * 8));
  if (f_.gcount() != static_cast<std::streamsize>(row_elements_ * 8)) {
    throw FormatError(path_.string() + ": shorter than its header says (row " + std::to_string(i) + ")");
  }
}

GrowingNpy GrowingNpy::open_existing(const fs::path& path, const std::string& descr) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path.string() + ": cannot open");
  std::string head(10, '\0');
  in.read(head.data(), 10);
  if (in.gcount() != 10 || head.compare(0, 8, std::string(kMagic, 8)) != 0) throw FormatError(path.string() + ": not a .npy file");
  const size_t len = static_cast<unsigned char>(head[8]) | (static_cast<size_t>(static_cast<unsigned char>(head[9])) << 8);
  std::string dict(len, '\0');
  in.read(dict.data(), static_cast<std::streamsize>(len));
  const std::vector<int64_t> dims = parse_shape(dict);
  if (dims.empty()) throw FormatError(path.string() + ": a .npy header without a shape");
  GrowingNpy g(path, descr, std::vector<int64_t>(dims.begin() + 1, dims.end()));
  if (g.header(dims[0]) != head + dict) throw FormatError(path.string() + ": not a .npy file of this batch (" + descr + ")");
  g.rows_ = dims[0];
  return g;
}

}  // namespace reslens::cli
