// A .npy file that grows by one row at a time along its first axis: the per-prompt arrays of
// `diff --batch` (OUT/arrays/, docs/diff.md). Its header is padded to a fixed length, so the row
// count in it can be rewritten in place after every row; the file is a valid .npy (numpy.load
// reads it) after each append, and a cut run leaves at worst rows past the header's count, which
// resuming cuts back. The library's write_npy writes whole arrays only (io/npy.h), hence this file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace reslens::cli {

class GrowingNpy {
 public:
  /// `descr`: "<f8" (float64) or "<i8" (int64); `row_shape`: the shape of one row (empty: scalars).
  GrowingNpy(std::filesystem::path path, std::string descr, std::vector<int64_t> row_shape);

  /// A new file of 0 rows (replacing any file of that name).
  void create();
  /// Keeps the first `rows` rows of an existing file and cuts the rest. FormatError naming the file
  /// when it is missing, is not a .npy of this dtype and row shape, or holds fewer than `rows` rows.
  void keep(int64_t rows);
  /// One row: row_elements() values of 8 bytes. IoError naming the file when it cannot be written.
  void append(const void* row);
  /// Reads row `i` (< rows()) into `out` (row_elements() values). FormatError when the file is short.
  void read(int64_t i, void* out);

  int64_t rows() const { return rows_; }
  int64_t row_elements() const { return row_elements_; }
  const std::vector<int64_t>& row_shape() const { return row_shape_; }
  const std::filesystem::path& path() const { return path_; }

  /// The rows a file holds and its row shape, from its header, for reading a finished file.
  static GrowingNpy open_existing(const std::filesystem::path& path, const std::string& descr);

 private:
  std::string header(int64_t rows) const;  // magic, version, length, dict, padding: header_bytes() long
  void open_stream();
  std::filesystem::path path_;
  std::string descr_;
  std::vector<int64_t> row_shape_;
  int64_t row_elements_ = 1, rows_ = 0;
  size_t header_bytes_ = 0;
  std::fstream f_;
};

}  // namespace reslens::cli
