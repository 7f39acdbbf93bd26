#include "core/parallel.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace reslens {

int hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

namespace {

// The threads behind parallel_for: started on first use and kept. A waiting thread (a worker
// between calls, the caller for its workers) spins for at most kSpin and then sleeps on a condition
// variable. OpenMP's workers (libgomp) spin ~300,000 rounds between regions; on 2 cores shared with
// other processes that spinning took the CPU the working thread needed, and a 2-thread explain of
// GPT-2 124M took 2.7-4.5 s against 1.8 s with OMP_WAIT_POLICY=passive (which libgomp reads only at
// load, so the library cannot set it). A short spin keeps back-to-back calls (a forward pass's
// GEMMs) from sleeping between them.
constexpr auto kSpin = std::chrono::microseconds(50);

// Spins until done() or kSpin has passed; returns done().
template <class Done>
bool spin_until(const Done& done) {
  const auto until = std::chrono::steady_clock::now() + kSpin;
  for (int i = 0;; ++i) {
    if (done()) return true;
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#endif
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > until) return done();
  }
}

thread_local bool t_in_pool = false;  // a pool worker, or a caller while it runs the pool

class Pool {
 public:
  // Runs chunk(w) for w in [0, workers): chunk 0 on the caller, the others on pool threads 1..;
  // false when another thread's call holds the pool (the caller then does without it).
  bool run(int64_t workers, const std::function<void(int64_t)>& chunk) {
    const std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    grow(workers - 1);
    task_ = &chunk;
    active_ = workers;
    pending_.store(threads_, std::memory_order_relaxed);
    {
      const std::lock_guard<std::mutex> lock(mu_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    t_in_pool = true;
    chunk(0);
    t_in_pool = false;
    // Every pool thread (taking part or not) acknowledges the round before the next can start.
    if (!spin_until([&] { return pending_.load(std::memory_order_acquire) == 0; })) {
      std::unique_lock<std::mutex> lock(mu_);
      done_.wait(lock, [&] { return pending_.load(std::memory_order_acquire) == 0; });
    }
    task_ = nullptr;
    return true;
  }

 private:
  void grow(int64_t n) {
    while (threads_ < n) {
      const int64_t index = ++threads_;  // pool thread `index` runs chunk `index`
      // The generation before this call's: the new thread takes part in it however late it starts.
      const uint64_t seen = generation_.load(std::memory_order_acquire);
      std::thread([this, index, seen] { work(index, seen); }).detach();
    }
  }

  void work(int64_t index, uint64_t seen) {
    t_in_pool = true;
    for (;;) {
      const auto moved = [&] { return generation_.load(std::memory_order_acquire) != seen; };
      if (!spin_until(moved)) {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, moved);
      }
      seen = generation_.load(std::memory_order_acquire);
      if (index < active_) (*task_)(index);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        const std::lock_guard<std::mutex> lock(mu_);
        done_.notify_one();
      }
    }
  }

  std::mutex busy_;  // one call at a time
  std::mutex mu_;    // guards the sleeps on wake_ and done_
  std::condition_variable wake_, done_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int64_t> pending_{0};
  // Set by the caller while every pool thread waits for the next generation (or before any exists).
  const std::function<void(int64_t)>* task_ = nullptr;
  int64_t active_ = 0;
  int64_t threads_ = 0;
};

// Never destroyed: its threads are detached and live as long as the process. A forked child has
// none of them, so it starts a pool of its own.
Pool* g_pool = nullptr;
std::once_flag g_pool_once;

Pool& pool() {
  std::call_once(g_pool_once, [] {
    g_pool = new Pool;
    pthread_atfork(nullptr, nullptr, [] { g_pool = new Pool; });
  });
  return *g_pool;
}

}  // namespace

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
  // The same chunks whichever thread runs them, so results never depend on how they are run.
  const std::function<void(int64_t)> run_chunk = [&](int64_t w) {
    const int64_t begin = n * w / workers;
    const int64_t end = n * (w + 1) / workers;
    try {
      if (begin < end) fn(begin, end);
    } catch (...) {
      const std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  };
  if (t_in_pool) {
    // Called from inside a parallel_for: its chunks one after another on this thread.
    for (int64_t w = 0; w < workers; ++w) run_chunk(w);
  } else if (!pool().run(workers, run_chunk)) {
    // Another thread's call holds the pool: threads of this call's own.
    std::vector<std::thread> threads;
    threads.reserve(static_cast<size_t>(workers - 1));
    for (int64_t w = 1; w < workers; ++w) threads.emplace_back(run_chunk, w);
    run_chunk(0);
    for (auto& t : threads) t.join();
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace reslens
