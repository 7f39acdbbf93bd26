// FloatBuffer: small buffers are vectors, large ones huge-page-advised maps; both hold what is
// written, move without copying, and adopt a vector's contents.
#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "core/float_buffer.h"

namespace reslens {
namespace {

TEST(FloatBuffer, SmallAndLargeHoldWhatIsWrittenAndMove) {
  for (const int64_t n : {int64_t{10}, int64_t{3} << 20}) {  // 40 bytes; 12 MB (an anonymous map)
    FloatBuffer b(n);
    ASSERT_EQ(b.size(), n);
    for (int64_t i = 0; i < n; i += 4099) b.data()[i] = static_cast<float>(i);
    b.data()[n - 1] = -1.0f;
    const float* p = b.data();
    FloatBuffer moved(std::move(b));
    EXPECT_EQ(moved.data(), p);  // no copy
    EXPECT_EQ(moved.size(), n);
    EXPECT_EQ(b.size(), 0);  // NOLINT(bugprone-use-after-move): the moved-from state is specified
    for (int64_t i = 0; i + 1 < n; i += 4099) EXPECT_EQ(moved.data()[i], static_cast<float>(i));
    EXPECT_EQ(moved.data()[n - 1], -1.0f);
    FloatBuffer assigned(1);
    assigned = std::move(moved);
    EXPECT_EQ(assigned.data(), p);
  }
  std::vector<float> v = {1.0f, 2.0f, 3.0f};
  const float* vp = v.data();
  const FloatBuffer adopted(std::move(v));
  EXPECT_EQ(adopted.data(), vp);
  EXPECT_EQ(adopted.size(), 3);
  EXPECT_EQ(adopted.data()[2], 3.0f);
}

}  // namespace
}  // namespace reslens
