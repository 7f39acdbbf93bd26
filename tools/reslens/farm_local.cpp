// The farm of one process: its slots are threads (FarmPool), nothing is sent anywhere. Also where
// make_farm() decides between it and MPI.
#include <algorithm>
#include <cstdlib>
#include <string>

#include "farm_pool.h"
#include "reslens/error.h"
#include "reslens/run.h"

namespace reslens::cli {

FarmPool::FarmPool(int slots, const TaskFn& work) : work_(work) {
  for (int i = 0; i < (slots > 0 ? slots : 1); ++i) threads_.emplace_back([this] { loop(); });
}

FarmPool::~FarmPool() {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    closing_ = true;
    queue_.clear();
  }
  queued_.notify_all();
  for (auto& t : threads_) t.join();
}

void FarmPool::submit(int64_t task) {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(task);
  }
  queued_.notify_one();
}

std::vector<FarmDone> FarmPool::take(std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (done_.empty()) finished_.wait_for(lock, wait, [this] { return !done_.empty(); });
  std::vector<FarmDone> out;
  out.swap(done_);
  return out;
}

void FarmPool::loop() {
  for (;;) {
    int64_t task = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      queued_.wait(lock, [this] { return closing_ || !queue_.empty(); });
      if (closing_) return;
      task = queue_.front();
      queue_.pop_front();
    }
    FarmDone d;
    d.task = task;
    try {
      d.result = work_(task);
    } catch (...) {
      d.error = std::current_exception();
    }
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      done_.push_back(std::move(d));
    }
    finished_.notify_all();
  }
}

namespace {

class LocalFarm final : public Farm {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  bool ready(std::exception_ptr setup_error, const std::string&) override {
    if (setup_error) std::rethrow_exception(setup_error);
    return true;
  }
  void coordinate(std::span<const int64_t> tasks, int slots, const TaskFn& work, const ResultFn& on_result) override {
    FarmPool pool(slots, work);
    size_t next = 0, received = 0;
    for (; next < tasks.size() && next < static_cast<size_t>(pool.slots()); ++next) pool.submit(tasks[next]);
    while (received < tasks.size()) {
      for (FarmDone& d : pool.take(std::chrono::milliseconds(100))) {
        if (d.error) std::rethrow_exception(d.error);  // the pool's destructor waits for the others
        ++received;
        if (next < tasks.size()) pool.submit(tasks[next++]);
        on_result(d.task, d.result);
      }
    }
  }
  void serve(int, const TaskFn&) override { throw InternalError("a farm of one process has no workers"); }
};

int farm_env_int(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return (*end == '\0' && n > 0 && n < (1L << 30)) ? static_cast<int>(n) : 0;
}

}  // namespace

std::unique_ptr<Farm> make_local_farm() { return std::make_unique<LocalFarm>(); }

int launcher_size() {
  // Open MPI's mpirun, MPICH/Hydra and PMI-2 launchers, PMIx, and Slurm's srun (SLURM_STEP_NUM_TASKS is
  // set for a job step only, not for the batch script itself, whose SLURM_NTASKS is the allocation's).
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_STEP_NUM_TASKS"}) {
    if (const int n = farm_env_int(name); n > 0) return n;
  }
  return 0;
}

int threads_per_rank(int threads) {
  if (threads > 0) return threads;
  int local = farm_env_int("OMPI_COMM_WORLD_LOCAL_SIZE");
  if (local == 0) local = farm_env_int("SLURM_NTASKS_PER_NODE");
  return local > 1 ? std::max(1, default_threads() / local) : default_threads();
}

std::unique_ptr<Farm> make_farm(const char* command) {
  const int n = launcher_size();
#ifdef RESLENS_HAVE_MPI
  static_cast<void>(command);
  if (n > 0) return make_mpi_farm();
#else
  if (n > 1) {
    throw UnsupportedError(std::string(command) + ": started as " + std::to_string(n) +
                           " processes (mpirun or srun), but this reslens was built without MPI: each would run "
                           "the whole job. Rebuild with libopenmpi-dev installed (-DRESLENS_MPI=ON), run one "
                           "process, or split the work with --shard i/n (docs/distributed.md)");
  }
#endif
  return make_local_farm();
}

}  // namespace reslens::cli
