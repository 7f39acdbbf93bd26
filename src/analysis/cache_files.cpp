#include "analysis/cache_files.h"

#include <cstdlib>

namespace reslens::analysis {

std::filesystem::path cache_dir() {
  if (const char* e = std::getenv("RESLENS_CACHE_DIR"); e != nullptr && *e) return e;
  if (const char* e = std::getenv("XDG_CACHE_HOME"); e != nullptr && *e) return std::filesystem::path(e) / "reslens";
  if (const char* e = std::getenv("HOME"); e != nullptr && *e) return std::filesystem::path(e) / ".cache" / "reslens";
  return {};
}

}  // namespace reslens::analysis
