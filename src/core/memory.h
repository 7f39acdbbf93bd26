// How much memory the system can give, and sizes written for messages.
#pragma once

#include <cstdint>
#include <string>

namespace reslens {

/// Bytes of memory the system can give without swapping: $RESLENS_MEMORY_AVAILABLE (bytes) when set,
/// else MemAvailable of /proc/meminfo; -1 when unknown.
int64_t memory_available();

/// "1.2 GB", "350 MB": a size for messages.
std::string size_text(int64_t bytes);

}  // namespace reslens
