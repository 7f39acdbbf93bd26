#include "core/utf8.h"

#include <gtest/gtest.h>

#include "reslens/error.h"

namespace reslens {
namespace {

TEST(Utf8, AcceptsValidText) {
  EXPECT_EQ(find_invalid_utf8("hello"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8(""), std::string_view::npos);
}

TEST(Utf8, RejectsInvalidSequencesWithTheirOffset) {
  EXPECT_EQ(find_invalid_utf8("ab\xff"), 2u);
  EXPECT_EQ(find_invalid_utf8("a\xc3"), 1u);                 // truncated
  EXPECT_EQ(find_invalid_utf8("\xc0\xaf"), 0u);              // overlong '/'
  EXPECT_EQ(find_invalid_utf8("x\xed\xa0\x80"), 1u);         // surrogate
  EXPECT_EQ(find_invalid_utf8("\xf4\x90\x80\x80"), 0u);      // > U+10FFFF
  EXPECT_THROW(require_valid_utf8("\x80", "prompt"), InvalidArgument);
}

TEST(Utf8, EncodesCodePoints) {
  std::string s;
  append_utf8(s, 0x41);
  append_utf8(s, 0xe9);
  append_utf8(s, 0x20ac);
  append_utf8(s, 0x1f600);
  EXPECT_EQ(s, "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
}

}  // namespace
}  // namespace reslens
