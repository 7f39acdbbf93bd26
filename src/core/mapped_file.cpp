#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "reslens/error.h"

namespace reslens {

namespace {

[[noreturn]] void throw_io(const std::filesystem::path& path, const std::string& what, int err) {
  throw IoError(path.string() + ": " + what + (err ? std::string(": ") + std::strerror(err) : ""));
}

}  // namespace

MappedFile::MappedFile(const std::filesystem::path& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_io(path, "cannot open", errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw_io(path, "cannot stat", err);
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    throw_io(path, "is a directory", 0);
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      throw_io(path, "cannot map", err);
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  fd_ = fd;
  mtime_ns_ = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
  if (fd_ >= 0) ::close(fd_);
}

bool MappedFile::changed_on_disk() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return true;
  const int64_t mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return static_cast<size_t>(st.st_size) != size_ || mtime_ns != mtime_ns_;
}

void MappedFile::release(std::span<const uint8_t> range) const {
  if (range.empty() || !contains(range.data())) return;
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = (reinterpret_cast<uintptr_t>(range.data()) + page - 1) / page * page;
  const auto end = (reinterpret_cast<uintptr_t>(range.data()) + range.size()) / page * page;
  // Advice only: a failure leaves the pages resident, which is correct, just larger.
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

namespace {
// madvise over the pages that `range` touches (its first page rounded down); the call's result.
int advise_pages(std::span<const uint8_t> range, int advice) {
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(range.data()) / page * page;
  const auto end = reinterpret_cast<uintptr_t>(range.data()) + range.size();
  return ::madvise(reinterpret_cast<void*>(begin), end - begin, advice);
}
}  // namespace

void MappedFile::will_need(std::span<const uint8_t> range) const {
  if (range.empty() || !contains(range.data())) return;
  advise_pages(range, MADV_WILLNEED);  // advice only
}

void MappedFile::populate(std::span<const uint8_t> range) const {
  if (range.empty() || !contains(range.data())) return;
  // Linux >= 5.14; an older kernel refuses it (EINVAL) and gets will_need's read-ahead instead.
  constexpr int kPopulateRead = 22;  // MADV_POPULATE_READ, absent from older headers
  if (advise_pages(range, kPopulateRead) != 0) advise_pages(range, MADV_WILLNEED);
}

std::string read_text_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw_io(path, "is a directory", 0);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_io(path, "cannot open", errno);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw_io(path, "cannot read", errno);
  return ss.str();
}

}  // namespace reslens
