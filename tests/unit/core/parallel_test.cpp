// core/parallel: parallel_for runs every index exactly once, in the same contiguous chunks for a
// given thread count whoever runs them (the pool's threads, the caller, a nested call, a second
// caller while the pool is busy), and rethrows a chunk's exception after the others finish.
#include "core/parallel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

namespace reslens {
namespace {

// The chunks fn was called with, in index order: (begin, end) per chunk.
std::vector<std::pair<int64_t, int64_t>> chunks_of(int threads, int64_t n) {
  std::vector<int64_t> begin_at(static_cast<size_t>(n), -1), end_at(static_cast<size_t>(n), -1);
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
  parallel_for(threads, n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      hits[static_cast<size_t>(i)].fetch_add(1);
      begin_at[static_cast<size_t>(i)] = b;
      end_at[static_cast<size_t>(i)] = e;
    }
  });
  std::vector<std::pair<int64_t, int64_t>> out;
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "index " << i << " threads " << threads;
    if (i == 0 || begin_at[static_cast<size_t>(i)] != out.back().first) {
      out.emplace_back(begin_at[static_cast<size_t>(i)], end_at[static_cast<size_t>(i)]);
    }
  }
  return out;
}

// The split the results' bits rely on: chunk w of `workers` is [n w / workers, n (w + 1) / workers).
std::vector<std::pair<int64_t, int64_t>> expected_chunks(int threads, int64_t n) {
  const int64_t workers = std::min<int64_t>(threads, n);
  std::vector<std::pair<int64_t, int64_t>> out;
  for (int64_t w = 0; w < workers; ++w) {
    if (n * w / workers < n * (w + 1) / workers) out.emplace_back(n * w / workers, n * (w + 1) / workers);
  }
  return out;
}

TEST(ParallelFor, EveryIndexOnceInTheFixedChunks) {
  for (const int threads : {1, 2, 3, 5}) {
    for (const int64_t n : {int64_t{1}, int64_t{2}, int64_t{3}, int64_t{7}, int64_t{1000}}) {
      for (int round = 0; round < 20; ++round) {  // the pool's threads are reused across calls
        ASSERT_EQ(chunks_of(threads, n), expected_chunks(threads, n)) << "threads " << threads << " n " << n;
      }
    }
  }
}

TEST(ParallelFor, NestedCallsRunTheirChunksInPlace) {
  std::vector<std::vector<std::pair<int64_t, int64_t>>> inner(4);
  parallel_for(2, 4, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) inner[static_cast<size_t>(i)] = chunks_of(3, 10);
  });
  for (const auto& c : inner) EXPECT_EQ(c, expected_chunks(3, 10));
}

TEST(ParallelFor, TwoCallersAtOnceBothComplete) {
  std::vector<std::vector<std::pair<int64_t, int64_t>>> got(2);
  std::thread other([&] {
    for (int r = 0; r < 200; ++r) got[1] = chunks_of(2, 100);
  });
  for (int r = 0; r < 200; ++r) got[0] = chunks_of(2, 100);
  other.join();
  EXPECT_EQ(got[0], expected_chunks(2, 100));
  EXPECT_EQ(got[1], expected_chunks(2, 100));
}

TEST(ParallelFor, AChunksExceptionIsRethrownAfterTheOthersFinish) {
  std::atomic<int> finished{0};
  EXPECT_THROW(parallel_for(3, 3,
                            [&](int64_t b, int64_t) {
                              if (b == 1) throw std::runtime_error("chunk 1");
                              finished.fetch_add(1);
                            }),
               std::runtime_error);
  EXPECT_EQ(finished.load(), 2);
  EXPECT_EQ(chunks_of(3, 9), expected_chunks(3, 9));  // the pool still works
}

}  // namespace
}  // namespace reslens
