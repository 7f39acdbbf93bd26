// escape_message (include/reslens/error.h): what every reslens exception does to its message, so that
// bytes copied from a file into an error can neither drive the terminal that prints it nor be cut at
// a NUL (what() is a C string).
#include <cstdint>
#include <cstdio>

#include "reslens/error.h"

namespace reslens {

namespace {

// The code point of the valid UTF-8 sequence at s[i] and its length, or length 0 when the bytes
// there are not valid UTF-8 (overlong, surrogate, past U+10FFFF, truncated).
struct Decoded {
  uint32_t cp = 0;
  size_t len = 0;
};

Decoded decode_at(std::string_view s, size_t i) {
  const auto c = static_cast<uint8_t>(s[i]);
  size_t len = 0;
  uint32_t cp = 0, min_cp = 0;
  if ((c & 0xe0) == 0xc0) {
    len = 2, cp = c & 0x1fu, min_cp = 0x80;
  } else if ((c & 0xf0) == 0xe0) {
    len = 3, cp = c & 0x0fu, min_cp = 0x800;
  } else if ((c & 0xf8) == 0xf0) {
    len = 4, cp = c & 0x07u, min_cp = 0x10000;
  } else {
    return {};
  }
  if (i + len > s.size()) return {};
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<uint8_t>(s[i + k]);
    if ((b & 0xc0) != 0x80) return {};
    cp = (cp << 6) | (b & 0x3fu);
  }
  if (cp < min_cp || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return {};
  return {cp, len};
}

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
    const Decoded d = decode_at(message, i);
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
