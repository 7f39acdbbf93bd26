#include "tokenizer/unicode_normalize.h"

#include <utf8proc.h>

#include <cstdlib>
#include <memory>

#include "reslens/error.h"

namespace reslens::tokenizer_detail {

std::string unicode_normalize(std::string_view text, UnicodeForm form) {
  if (text.empty()) return {};
  // The option sets of utf8proc_NFC / _NFD / _NFKC / _NFKD, applied to a counted string (those
  // four take NUL-terminated ones).
  int options = UTF8PROC_STABLE;
  switch (form) {
    case UnicodeForm::kNFC: options |= UTF8PROC_COMPOSE; break;
    case UnicodeForm::kNFD: options |= UTF8PROC_DECOMPOSE; break;
    case UnicodeForm::kNFKC: options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    case UnicodeForm::kNFKD: options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
  }
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()), static_cast<utf8proc_ssize_t>(text.size()),
                   &out, static_cast<utf8proc_option_t>(options));
  const std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(out, &std::free);
  if (n < 0) throw InvalidArgument(std::string("Unicode normalization failed: ") + utf8proc_errmsg(n));
  return {reinterpret_cast<const char*>(out), static_cast<size_t>(n)};
}

}  // namespace reslens::tokenizer_detail
