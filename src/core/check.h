// RESLENS_CHECK: an always-on invariant check that throws InternalError with file:line (a Python
// session gets an exception instead of a dead kernel). For user input, throw a typed error instead.
#pragma once

#include <string>

#include "reslens/error.h"

namespace reslens::detail {
[[noreturn]] void check_failed(const char* file, int line, const char* cond, const std::string& msg);
}  // namespace reslens::detail

#define RESLENS_CHECK(cond, msg)                                           \
  do {                                                                     \
    if (!(cond)) ::reslens::detail::check_failed(__FILE__, __LINE__, #cond, (msg)); \
  } while (false)
