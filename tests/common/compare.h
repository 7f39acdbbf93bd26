// Numeric comparison helpers for tests: compare arrays with an absolute tolerance and, on failure,
// print the worst index, both values, the max abs diff and the NMSE (llm.c's check_tensor style).
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace reslens::test {

/// Raw little-endian float32 file (the goldens' .bin format).
std::vector<float> read_f32_file(const std::filesystem::path& path);

struct Diff {
  double max_abs = 0.0;
  int64_t worst = -1;
  double nmse = 0.0;
};
Diff compare(std::span<const float> actual, std::span<const float> expected);
Diff compare(std::span<const float> actual, std::span<const double> expected);

/// Passes when every |actual - expected| <= atol; otherwise explains where and by how much.
::testing::AssertionResult all_close(std::span<const float> actual, std::span<const float> expected,
                                     double atol, const std::string& what);
::testing::AssertionResult all_close(std::span<const float> actual, std::span<const double> expected,
                                     double atol, const std::string& what);

}  // namespace reslens::test
