#include "core/file_write.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

#include "reslens/error.h"

namespace reslens {

namespace {

[[noreturn]] void fail(const std::filesystem::path& path, int err) {
  throw IoError(path.string() + ": cannot write the file (" + std::error_code(err, std::generic_category()).message() + ")");
}

// Writes all of `bytes` to `fd`, through short writes and interruptions; 0 or the errno.
int write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return 0;
}

}  // namespace

void write_file_atomically(const std::filesystem::path& path, std::initializer_list<std::string_view> parts) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) fail(path, errno);
  int err = 0;
  for (const std::string_view part : parts) {
    if ((err = write_all(fd, part)) != 0) break;
  }
  if (::close(fd) != 0 && err == 0) err = errno;
  std::error_code ec;
  if (err == 0) {
    std::filesystem::rename(tmp, path, ec);
    if (ec) err = ec.value();
  }
  if (err != 0) {
    std::filesystem::remove(tmp, ec);
    fail(path, err);
  }
}

}  // namespace reslens
