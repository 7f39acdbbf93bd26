// parallel_for: split [0, n) into contiguous chunks, one per thread, and run fn(begin, end) on each.
// Work is split over independent outputs only (rows, heads, positions), never inside a reduction, so
// results are bit-identical for any thread count. Exceptions thrown by fn are rethrown after the join.
// The chunks run on a pool of threads kept between calls (which spin briefly, then sleep: see
// parallel.cpp); a call from inside a chunk runs its own chunks in order on that thread.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>

namespace reslens {

/// Threads to use when a caller passes 0: the hardware's.
int hardware_threads();

/// Runs fn(begin, end) over disjoint chunks of [0, n) on up to n_threads threads.
void parallel_for(int n_threads, int64_t n, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace reslens
