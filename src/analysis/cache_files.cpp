#include "analysis/cache_files.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace reslens::analysis {

std::filesystem::path cache_dir() {
  if (const char* e = std::getenv("RESLENS_CACHE_DIR"); e != nullptr && *e) return e;
  if (const char* e = std::getenv("XDG_CACHE_HOME"); e != nullptr && *e) return std::filesystem::path(e) / "reslens";
  if (const char* e = std::getenv("HOME"); e != nullptr && *e) return std::filesystem::path(e) / ".cache" / "reslens";
  return {};
}

void write_cache_file(const std::filesystem::path& p, const std::function<void(std::ostream&)>& write) {
  std::error_code ec;
  std::filesystem::create_directories(p.parent_path(), ec);
  if (ec) return;
  const auto tmp = p.string() + ".tmp" + std::to_string(::getpid());  // one per process: no clash
  bool ok = false;
  {
    std::ofstream out(tmp, std::ios::binary);
    if (out) {
      write(out);
      out.flush();
      ok = static_cast<bool>(out);
    }
  }
  if (ok) std::filesystem::rename(tmp, p, ec);
  if (!ok || ec) std::filesystem::remove(tmp, ec);
}

}  // namespace reslens::analysis
