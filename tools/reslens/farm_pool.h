// The threads of one rank's farm: tasks in, (task, result or exception) out. Used by the local farm
// and by every rank of the MPI farm, so both compute in the same way.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "farm.h"

namespace reslens::cli {

struct FarmDone {
  int64_t task = 0;
  std::string result;
  std::exception_ptr error;  ///< set when the task function threw
};

class FarmPool {
 public:
  FarmPool(int slots, const TaskFn& work);
  ~FarmPool();  ///< waits for the tasks already running; queued ones are dropped
  FarmPool(const FarmPool&) = delete;
  FarmPool& operator=(const FarmPool&) = delete;

  void submit(int64_t task);
  /// Finished tasks so far, waiting up to `wait` for the first when there are none.
  std::vector<FarmDone> take(std::chrono::milliseconds wait);
  int slots() const { return static_cast<int>(threads_.size()); }

 private:
  void loop();
  const TaskFn& work_;
  std::mutex mutex_;
  std::condition_variable queued_, finished_;
  std::deque<int64_t> queue_;
  std::vector<FarmDone> done_;
  bool closing_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace reslens::cli
