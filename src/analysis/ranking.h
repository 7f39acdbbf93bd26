// Ranking helpers shared by the analyses and the CLI.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

namespace reslens::analysis {

/// Indices of the n largest values, largest first. Exact ties put the later index first, as the
/// authors' notebooks do (Python's sorted(...)[::-1]).
inline std::vector<int64_t> top_indices(const std::vector<double>& values, int64_t n) {
  std::vector<int64_t> idx(values.size());
  std::iota(idx.begin(), idx.end(), 0);
  n = std::min<int64_t>(n, static_cast<int64_t>(idx.size()));
  std::partial_sort(idx.begin(), idx.begin() + n, idx.end(), [&](int64_t a, int64_t b) {
    const double va = values[static_cast<size_t>(a)], vb = values[static_cast<size_t>(b)];
    return va > vb || (va == vb && a > b);
  });
  idx.resize(static_cast<size_t>(n));
  return idx;
}

}  // namespace reslens::analysis
