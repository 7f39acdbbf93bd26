// Error messages are safe to print: bytes copied from a file into a message (a token piece, a GGUF
// key, a config.json field, a dataset line) can neither drive the terminal nor cut the message short
// at a NUL, and printable text, multi-byte UTF-8 included, reads as written.
#include <gtest/gtest.h>

#include <string>

#include "reslens/error.h"

namespace reslens {
namespace {

using namespace std::string_literals;

TEST(EscapeMessage, KeepsPrintableUtf8) {
  EXPECT_EQ(escape_message("model.gguf: key 'general.name' is 3"), "model.gguf: key 'general.name' is 3");
  EXPECT_EQ(escape_message("caf\xc3\xa9 \xe2\x96\x81Once \xf0\x9f\x98\x80 \\x1b"), "caf\xc3\xa9 \xe2\x96\x81Once \xf0\x9f\x98\x80 \\x1b");
  EXPECT_EQ(escape_message(""), "");
}

TEST(EscapeMessage, EscapesControlBytesAndKeepsWhatFollowsANul) {
  EXPECT_EQ(escape_message("a\x1b[2Jb"), "a\\x1b[2Jb");
  EXPECT_EQ(escape_message("before\0after"s), "before\\x00after");
  EXPECT_EQ(escape_message("tab\tnl\ncr\r del\x7f"), "tab\\x09nl\\x0acr\\x0d del\\x7f");
}

TEST(EscapeMessage, EscapesInvalidUtf8ByteByByte) {
  EXPECT_EQ(escape_message("ab\xff" "cd"), "ab\\xffcd");
  EXPECT_EQ(escape_message("x\xc0\xaf"), "x\\xc0\\xaf");                // overlong
  EXPECT_EQ(escape_message("t\xe2\x82"), "t\\xe2\\x82");                // truncated at the end
  EXPECT_EQ(escape_message("\xed\xa0\x80"), "\\xed\\xa0\\x80");          // surrogate
  EXPECT_EQ(escape_message("\xe2\x82\xac\x80\xe2\x82\xac"), "\xe2\x82\xac\\x80\xe2\x82\xac");
}

TEST(EscapeMessage, EscapesC1ControlsAndBidiOverrides) {
  EXPECT_EQ(escape_message("a\xc2\x9b" "31mb"), "a\\u009b31mb");  // U+009B, CSI on 8-bit terminals
  EXPECT_EQ(escape_message("x\xe2\x80\xae" "y"), "x\\u202ey");       // RIGHT-TO-LEFT OVERRIDE
  EXPECT_EQ(escape_message("\xc2\xa0"), "\xc2\xa0");              // NO-BREAK SPACE is printable
}

TEST(EscapeMessage, IsIdempotent) {
  const std::string once = escape_message("k\x1b\0\xff\xc2\x9b z"s);
  EXPECT_EQ(escape_message(once), once);
}

TEST(EscapeMessage, EveryReslensExceptionEscapesItsMessage) {
  const std::string raw = "piece '\x1b]0;pwned\x07' then\0 the rest"s;
  const std::string want = "piece '\\x1b]0;pwned\\x07' then\\x00 the rest";
  EXPECT_EQ(std::string(FormatError(raw).what()), want);
  EXPECT_EQ(std::string(IoError(raw).what()), want);
  EXPECT_EQ(std::string(UnsupportedError(raw).what()), want);
  EXPECT_EQ(std::string(InvalidArgument(raw).what()), want);
  EXPECT_EQ(std::string(OutOfRange(raw).what()), want);
  EXPECT_EQ(std::string(InternalError(raw).what()), want);
  EXPECT_EQ(std::string(FormatError("plain").what()), "plain");
}

}  // namespace
}  // namespace reslens
