#include "core/parallel.h"

#include <algorithm>
#include <mutex>
#include <thread>
#include <vector>

#ifdef RESLENS_HAVE_OPENMP
#include <omp.h>
#endif

namespace reslens {

int hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

void parallel_for(int n_threads, int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (n_threads <= 0) n_threads = hardware_threads();
  const int64_t workers = std::min<int64_t>(n_threads, n);
  if (workers <= 1) {
    fn(0, n);
    return;
  }
  std::exception_ptr error;
  std::mutex error_mutex;
  auto run_chunk = [&](int64_t w) {
    const int64_t begin = n * w / workers;
    const int64_t end = n * (w + 1) / workers;
    try {
      if (begin < end) fn(begin, end);
    } catch (...) {
      const std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  };
#ifdef RESLENS_HAVE_OPENMP
#pragma omp parallel for num_threads(static_cast<int>(workers)) schedule(static, 1)
  for (int64_t w = 0; w < workers; ++w) run_chunk(w);
#else
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(workers - 1));
  for (int64_t w = 1; w < workers; ++w) threads.emplace_back(run_chunk, w);
  run_chunk(0);
  for (auto& t : threads) t.join();
#endif
  if (error) std::rethrow_exception(error);
}

}  // namespace reslens
