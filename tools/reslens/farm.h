// A task farm over the processes of one job: rank 0 hands out task numbers one at a time as ranks
// ask for them (long and short tasks mix, so no static split), every rank computes the ones it gets,
// and each result (a string: one JSON line, and for diff --batch a binary record after it, see
// batch_result() in batch_run.h; any bytes travel) goes back to rank 0, which alone writes files. With one
// process it is a thread pool; under mpirun or srun it is MPI (farm_mpi.cpp, built with
// -DRESLENS_MPI=ON). Commands that use it (experiment, explain --batch) are written once for both.
//
// Results do not depend on which rank or thread computed a task: the task function must be a pure
// function of its number (the commands' per-sentence evaluations are).
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <span>
#include <string>

namespace reslens::cli {

/// Computes task `task`; called on any rank, on several threads at once when slots > 1. An
/// exception ends the job (commands catch a task's own problems and put them in its result).
using TaskFn = std::function<std::string(int64_t task)>;
/// Rank 0: one finished task, in completion order, on the thread that called coordinate().
using ResultFn = std::function<void(int64_t task, const std::string& result)>;

class Farm {
 public:
  virtual ~Farm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  bool coordinator() const { return rank() == 0; }

  /// Every rank calls this once, after its own setup (loading the model, reading the data).
  /// `setup_error`: the exception of a failed setup, or null. `fingerprint`: what must be the same on
  /// every rank (the protocol, the settings, the data's checksum); the MPI farm adds a checksum of
  /// the executable, so ranks running different builds refuse to work together. On rank 0: throws the
  /// first failure (its own, or a rank's, as "rank R: ..." with the same exception type, so the same
  /// exit code) or mismatch; every worker is then told to stop. On a worker: returns false when the
  /// job ends without work (its own failure was sent to rank 0); it must then return quietly.
  virtual bool ready(std::exception_ptr setup_error, const std::string& fingerprint) = 0;

  /// Rank 0: computes `tasks` over every rank, `slots` at a time on this one, and calls `on_result`
  /// once per task. A failure (a worker's task, `on_result`) stops every rank and is rethrown.
  virtual void coordinate(std::span<const int64_t> tasks, int slots, const TaskFn& work, const ResultFn& on_result) = 0;

  /// Workers: computes what rank 0 sends, `slots` at a time, until it says stop.
  virtual void serve(int slots, const TaskFn& work) = 0;
};

/// The processes this command was started as: when a launcher (mpirun, srun) started it, the MPI
/// farm, else a farm of this process alone. UnsupportedError when the launcher started several
/// processes but this build has no MPI (each would run the whole job and write the same files).
std::unique_ptr<Farm> make_farm(const char* command);

/// Processes the launcher says this job has (OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_SIZE or, under
/// srun, SLURM_STEP_NUM_TASKS); 0 when not started by a launcher.
int launcher_size();

/// -t of a rank: `threads` when given (> 0), else this node's cores shared by the ranks the launcher
/// placed on it (OMPI_COMM_WORLD_LOCAL_SIZE, SLURM_NTASKS_PER_NODE), at least 1.
int threads_per_rank(int threads);

/// This process alone: `slots` threads, used by make_farm() without a launcher.
std::unique_ptr<Farm> make_local_farm();
#ifdef RESLENS_HAVE_MPI
std::unique_ptr<Farm> make_mpi_farm();  // farm_mpi.cpp
#endif

}  // namespace reslens::cli
