// The buffer pool behind Tensor storage: freed blocks come back for the same size, the limit holds,
// pooled memory never leaks values into a zero-filled tensor, and concurrent use is safe.
#include <gtest/gtest.h>

#include <cstdint>
#include <thread>
#include <vector>

#include "reslens/tensor.h"

namespace reslens {
namespace {

class BufferPoolTest : public ::testing::Test {
 protected:
  void SetUp() override { set_buffer_pool_limit(0); set_buffer_pool_limit(std::size_t{64} << 20); }
  void TearDown() override { set_buffer_pool_limit(std::size_t{1} << 30); }
};

TEST_F(BufferPoolTest, AFreedBlockIsReusedForTheSameSize) {
  const float* first = nullptr;
  {
    Tensor t = Tensor::uninitialized({128, 768});  // 384 KiB
    first = t.data();
  }
  EXPECT_EQ(buffer_pool_retained(), 128u * 768u * 4u);
  Tensor again = Tensor::uninitialized({128, 768});
  EXPECT_EQ(again.data(), first);
  EXPECT_EQ(buffer_pool_retained(), 0u);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(again.data()) % 64, 0u);
}

TEST_F(BufferPoolTest, ZeroFilledTensorsAreZeroOnReusedMemory) {
  {
    Tensor t = Tensor::uninitialized({64, 1024});
    for (float& v : t.values()) v = 7.0f;
  }
  Tensor z({64, 1024});
  for (const float v : z.values()) ASSERT_EQ(v, 0.0f);
}

TEST_F(BufferPoolTest, SmallBlocksAreNotPooled) {
  { Tensor t({16, 16}); }  // 1 KiB
  EXPECT_EQ(buffer_pool_retained(), 0u);
}

TEST_F(BufferPoolTest, TheLimitEvictsTheOldestAndZeroEmptiesThePool) {
  set_buffer_pool_limit(1u << 20);  // 1 MiB
  {
    Tensor a = Tensor::uninitialized({1, 128 * 1024});  // 512 KiB
    Tensor b = Tensor::uninitialized({1, 160 * 1024});  // 640 KiB
    Tensor c = Tensor::uninitialized({1, 512 * 1024});  // 2 MiB: over the limit on its own
  }
  // Freed in reverse order (c, b, a): c is dropped at once, then a pushes b (the oldest) out.
  EXPECT_EQ(buffer_pool_retained(), 512u * 1024u);
  set_buffer_pool_limit(0);
  EXPECT_EQ(buffer_pool_retained(), 0u);
  { Tensor d = Tensor::uninitialized({1, 128 * 1024}); }
  EXPECT_EQ(buffer_pool_retained(), 0u);
}

TEST_F(BufferPoolTest, ConcurrentAllocationsGetDistinctBlocks) {
  std::vector<std::thread> workers;
  std::vector<int> bad(4, 0);
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([w, &bad] {
      for (int i = 0; i < 200; ++i) {
        Tensor t = Tensor::uninitialized({32, 1024 + 256 * (i % 3)});
        for (float& v : t.values()) v = static_cast<float>(w);
        std::this_thread::yield();
        for (const float v : t.values()) bad[static_cast<size_t>(w)] += v != static_cast<float>(w);
      }
    });
  }
  for (auto& t : workers) t.join();
  for (const int b : bad) EXPECT_EQ(b, 0);
  EXPECT_LE(buffer_pool_retained(), std::size_t{64} << 20);
}

}  // namespace
}  // namespace reslens
