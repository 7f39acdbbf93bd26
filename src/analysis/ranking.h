// Ranking helpers shared by the analyses and the CLI.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace reslens::analysis {

/// Indices of the n largest values, largest first. Exact ties put the later index first, as the
/// authors' notebooks do (Python's sorted(...)[::-1]). One pass with a bounded heap: the arrays are
/// long (every attention neuron of a long prompt) and n is small.
inline std::vector<int64_t> top_indices(const std::vector<double>& values, int64_t n) {
  n = std::min<int64_t>(std::max<int64_t>(n, 0), static_cast<int64_t>(values.size()));
  // "a ranks above b": a strict total order, so the top n are one well-defined set.
  auto above = [&](int64_t a, int64_t b) {
    const double va = values[static_cast<size_t>(a)], vb = values[static_cast<size_t>(b)];
    return va > vb || (va == vb && a > b);
  };
  std::vector<int64_t> heap;  // the best n so far; heap.front() is the lowest-ranked of them
  heap.reserve(static_cast<size_t>(n));
  if (n == 0) return heap;
  const auto size = static_cast<int64_t>(values.size());
  auto offer = [&](int64_t i) {
    if (static_cast<int64_t>(heap.size()) < n) {
      heap.push_back(i);
      std::push_heap(heap.begin(), heap.end(), above);
    } else if (above(i, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), above);
      heap.back() = i;
      std::push_heap(heap.begin(), heap.end(), above);
    }
  };
  int64_t i = 0;
  for (; i < size && static_cast<int64_t>(heap.size()) < n; ++i) offer(i);
  // Once the heap is full, a block of 8 whose values all lie below the lowest kept one cannot enter
  // (a tie could, as the later index): test whole blocks first, branch-free.
  for (; i + 8 <= size; i += 8) {
    const double low = values[static_cast<size_t>(heap.front())];
    bool any = false;
    for (int64_t t = 0; t < 8; ++t) any |= !(values[static_cast<size_t>(i + t)] < low);
    if (!any) continue;
    for (int64_t t = 0; t < 8; ++t) offer(i + t);
  }
  for (; i < size; ++i) offer(i);
  std::sort(heap.begin(), heap.end(), above);
  return heap;
}

}  // namespace reslens::analysis
