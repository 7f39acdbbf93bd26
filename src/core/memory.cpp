#include "core/memory.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace reslens {

int64_t memory_available() {
  if (const char* v = std::getenv("RESLENS_MEMORY_AVAILABLE"); v != nullptr && *v != '\0') {
    char* end = nullptr;
    const long long n = std::strtoll(v, &end, 10);
    if (end != nullptr && *end == '\0' && n >= 0) return n;
  }
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    long long kb = 0;
    if (std::sscanf(line.c_str(), "MemAvailable: %lld kB", &kb) == 1) return kb * 1024;
  }
  return -1;
}

std::string size_text(int64_t bytes) {
  char b[32];
  if (bytes >= 1000000000) {
    std::snprintf(b, sizeof b, "%.1f GB", static_cast<double>(bytes) / 1e9);
  } else {
    std::snprintf(b, sizeof b, "%.0f MB", static_cast<double>(bytes) / 1e6);
  }
  return b;
}

}  // namespace reslens
