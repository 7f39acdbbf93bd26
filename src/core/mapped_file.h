// MappedFile: a read-only memory map of a whole file. Model weights stored as float32 are used in
// place from the map, so loading a model costs page faults, not copies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>

namespace reslens {

class MappedFile {
 public:
  /// Maps `path`. Throws IoError (missing, a directory, unreadable) naming the path.
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }
  bool contains(const uint8_t* p) const { return p >= data_ && p < data_ + size_; }

  /// Whether the file behind the map was written to or truncated since it was mapped (its size or
  /// modification time differ). Such a change shows through the map: new bytes give silently different
  /// numbers, and reading past a truncation is a SIGBUS. Asked through the open descriptor, so a file
  /// replaced by a rename (the map keeps the old one) is not a change.
  bool changed_on_disk() const;

  /// Drops the pages that lie wholly inside `range` (a part of this map) from the process's memory
  /// (madvise MADV_DONTNEED). The map stays valid: a page touched again is read back from the file.
  /// Loaders call it once a tensor has been converted into an owned buffer, so a model stored as
  /// F16 does not hold both the file and its float32 copy.
  void release(std::span<const uint8_t> range) const;

  /// Asks the kernel to start reading `range` now, in large requests (madvise MADV_WILLNEED): a
  /// caller about to read a scattered piece of a file that may not be in the page cache.
  void will_need(std::span<const uint8_t> range) const;

  /// Reads `range` in and maps it into the process in one call (madvise MADV_POPULATE_READ), for a
  /// caller about to read all of it: a 6 MB range touched page by page costs ~1600 page faults.
  /// Advice only: where the kernel lacks it, it falls back to will_need.
  void populate(std::span<const uint8_t> range) const;

 private:
  std::filesystem::path path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  int fd_ = -1;              ///< kept open for changed_on_disk()
  int64_t mtime_ns_ = 0;     ///< the file's modification time when it was mapped
};

/// Reads a whole (small) file into a string. Throws IoError naming the path.
std::string read_text_file(const std::filesystem::path& path);

}  // namespace reslens
