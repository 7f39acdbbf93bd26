#include "core/check.h"

namespace reslens::detail {

void check_failed(const char* file, int line, const char* cond, const std::string& msg) {
  throw InternalError(std::string("internal error at ") + file + ":" + std::to_string(line) + ": " +
                      cond + (msg.empty() ? "" : ": " + msg));
}

}  // namespace reslens::detail
