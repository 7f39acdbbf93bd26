// escape_message (include/reslens/error.h): what every reslens exception does to its message, so that
// bytes copied from a file into an error can neither drive the terminal that prints it nor be cut at
// a NUL (what() is a C string).
#include <cstdint>
#include <cstdio>

#include "reslens/error.h"

#include "core/utf8.h"

namespace reslens {

namespace {

// The code point of the valid UTF-8 sequence at s[i] and its length, or length 0 when the bytes
// there are not valid UTF-8 (overlong, surrogate, past U+10FFFF, truncated).
// Characters that are valid UTF-8 but act on a terminal or on how the line reads: the C1 controls
// (U+009B is CSI on terminals that honour 8-bit controls) and the bidirectional overrides/isolates.
bool hidden_control(uint32_t cp) {
  return (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

}  // namespace

std::string escape_message(std::string_view message) {
  std::string out;
  out.reserve(message.size());
  char buf[16];
  for (size_t i = 0; i < message.size();) {
    const auto c = static_cast<uint8_t>(message[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    if (c < 0x80) {  // C0 controls and DEL
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c));
      out += buf;
      ++i;
      continue;
    }
    const Utf8Char d = decode_utf8_at(message, i);
    if (d.len == 0) {  // not UTF-8: the one byte, escaped; the next byte starts afresh
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c));
      out += buf;
      ++i;
    } else if (hidden_control(d.cp)) {
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(d.cp));
      out += buf;
      i += d.len;
    } else {
      out.append(message.substr(i, d.len));
      i += d.len;
    }
  }
  return out;
}

}  // namespace reslens
