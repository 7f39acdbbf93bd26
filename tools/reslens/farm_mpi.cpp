// The farm over MPI processes (Open MPI; mpirun or srun). Only the thread that called MPI_Init_thread
// calls MPI (MPI_THREAD_FUNNELED); each rank's slots are a FarmPool. Nobody waits in a blocking
// receive: every rank polls (MPI_Iprobe, then a 1 ms wait on its own pool), so a rank spends no core
// on waiting, and when a rank dies the launcher's teardown of the job is never stuck behind us.
// Messages (all small but RESULT, which is one JSON line):
//   HELLO   worker -> 0   "ok\n<fingerprint>" or "fail\n<kind>\n<message>" after the worker's setup
//   WANT    worker -> 0   int32 slots: the worker takes that many tasks at once
//   TASK    0 -> worker   int64 task number
//   RESULT  worker -> 0   int64 task number, then the result's bytes
//   FAILED  worker -> 0   "<kind>\n<message>": a task threw; the job ends
//   STOP    0 -> worker   no more tasks (or the job failed)
//   BYE     worker -> 0   the worker's last message: after it, rank 0 may finalize
// Rank 0 receives (and drops) everything until each worker's BYE before MPI_Finalize, so a worker
// that is still sending a large result (a send that waits for its receive) is never left blocked
// when the job ends early; a worker whose setup failed also waits for STOP and says BYE.
// The C API only: Open MPI's and MPICH's deprecated C++ bindings would need their own library.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <cstring>
#include <deque>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "farm_pool.h"
#include "reslens/error.h"

namespace reslens::cli {

namespace {

enum Tag : int { kHello = 1, kWant, kTask, kResult, kFailed, kStop, kBye };

// An exception crosses ranks as its kind and message, and is thrown again as the same type, so the
// CLI's exit code is the one the failing rank would have had.
std::string describe(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const InvalidArgument& x) {
    return std::string("invalid\n") + x.what();
  } catch (const OutOfRange& x) {
    return std::string("range\n") + x.what();
  } catch (const UnsupportedError& x) {
    return std::string("unsupported\n") + x.what();
  } catch (const FormatError& x) {
    return std::string("format\n") + x.what();
  } catch (const Error& x) {
    return std::string("io\n") + x.what();
  } catch (const InternalError& x) {
    return std::string("internal\n") + x.what();
  } catch (const std::bad_alloc&) {
    return "io\nout of memory";
  } catch (const std::exception& x) {
    return std::string("other\n") + x.what();
  } catch (...) {
    return "internal\nan exception that is not a std::exception";
  }
}

[[noreturn]] void rethrow_described(const std::string& d, int rank) {
  const size_t nl = d.find('\n');
  const std::string kind = d.substr(0, nl);
  const std::string message = "rank " + std::to_string(rank) + ": " + (nl == std::string::npos ? "" : d.substr(nl + 1));
  if (kind == "invalid") throw InvalidArgument(message);
  if (kind == "range") throw OutOfRange(message);
  if (kind == "unsupported") throw UnsupportedError(message);
  if (kind == "format") throw FormatError(message);
  if (kind == "io") throw IoError(message);
  if (kind == "internal") throw InternalError(message);
  throw std::runtime_error(message);
}

void send_bytes(const std::string& bytes, int dest, Tag tag) {
  MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, dest, tag, MPI_COMM_WORLD);
}

struct Message {
  int source = 0;
  int tag = 0;
  std::string bytes;
};

// The next message from `source` (MPI_ANY_SOURCE for any), if one has arrived.
bool mpi_poll(int source, Message& m) {
  int flag = 0;
  MPI_Status st;
  MPI_Iprobe(source, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
  if (flag == 0) return false;
  int count = 0;
  MPI_Get_count(&st, MPI_BYTE, &count);
  m.source = st.MPI_SOURCE;
  m.tag = st.MPI_TAG;
  m.bytes.assign(static_cast<size_t>(count), '\0');
  MPI_Recv(m.bytes.data(), count, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  return true;
}

template <class T>
std::string pod_bytes(T v) {
  std::string s(sizeof v, '\0');
  std::memcpy(s.data(), &v, sizeof v);
  return s;
}

template <class T>
T pod_from(const std::string& s) {
  T v{};
  if (s.size() >= sizeof v) std::memcpy(&v, s.data(), sizeof v);
  return v;
}

// FNV-1a 64 of this process's executable: ranks running different reslens builds (an old copy on one
// node) would compute different numbers, so they refuse to work together.
std::string binary_checksum() {
  std::ifstream in("/proc/self/exe", std::ios::binary);
  uint64_t h = 1469598103934665603ULL;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    for (std::streamsize i = 0; i < in.gcount(); ++i) h = (h ^ static_cast<unsigned char>(buf[i])) * 1099511628211ULL;
  }
  return std::to_string(h);
}

void mpi_idle() {
  // Nothing arrived: sleep briefly rather than spin (Open MPI's blocking receive busy-polls a core).
  struct timespec ts {0, 1000000};
  nanosleep(&ts, nullptr);
}

class MpiFarm final : public Farm {
 public:
  MpiFarm() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized == 0) {
      int provided = 0;
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
      owns_ = true;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiFarm() override {
    if (rank_ == 0) {
      stop_workers();  // after a failure of rank 0's own, the workers must not wait
      drain();
    } else if (!said_bye_) {
      wait_for_stop();  // a worker that failed outside serve(): rank 0 still counts on its BYE
    }
    if (owns_) MPI_Finalize();
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  bool ready(std::exception_ptr setup_error, const std::string& settings) override {
    const std::string fingerprint = "binary " + binary_checksum() + "\n" + settings;
    if (rank_ != 0) {
      send_bytes(setup_error ? "fail\n" + describe(setup_error) : "ok\n" + fingerprint, 0, kHello);
      if (!setup_error) return true;
      wait_for_stop();  // rank 0 reports the failure and ends the job
      return false;
    }
    if (setup_error) std::rethrow_exception(setup_error);  // the destructor stops the workers
    // Every worker's hello, in rank order of arrival; the first failure or mismatch ends the job.
    std::vector<bool> heard(static_cast<size_t>(size_), false);
    int waiting = size_ - 1;
    Message m;
    while (waiting > 0) {
      if (!mpi_poll(MPI_ANY_SOURCE, m)) {
        mpi_idle();
        continue;
      }
      if (m.tag != kHello || heard[static_cast<size_t>(m.source)]) continue;
      heard[static_cast<size_t>(m.source)] = true;
      --waiting;
      if (m.bytes.rfind("fail\n", 0) == 0) rethrow_described(m.bytes.substr(5), m.source);
      const std::string theirs = m.bytes.substr(m.bytes.find('\n') + 1);
      if (theirs != fingerprint) {
        const bool binary = theirs.substr(0, theirs.find('\n')) != fingerprint.substr(0, fingerprint.find('\n'));
        throw InvalidArgument("rank " + std::to_string(m.source) + " runs " +
                              (binary ? "another reslens binary" : "with another model, data or settings") +
                              " than rank 0 (every rank must run the same reslens on the same files with the same "
                              "flags)");
      }
    }
    return true;
  }

  void coordinate(std::span<const int64_t> tasks, int slots, const TaskFn& work, const ResultFn& on_result) override {
    if (rank_ != 0) throw InternalError("coordinate() on a worker");
    FarmPool pool(slots, work);
    size_t next = 0, received = 0;
    std::vector<int> credit(static_cast<size_t>(size_), 0);  // tasks each worker would take now
    const auto hand_out = [&](int w) {
      while (credit[static_cast<size_t>(w)] > 0 && next < tasks.size()) {
        send_bytes(pod_bytes<int64_t>(tasks[next++]), w, kTask);
        --credit[static_cast<size_t>(w)];
      }
    };
    for (; next < tasks.size() && next < static_cast<size_t>(pool.slots()); ++next) pool.submit(tasks[next]);
    Message m;
    while (received < tasks.size()) {
      bool any = false;
      while (mpi_poll(MPI_ANY_SOURCE, m)) {
        any = true;
        if (m.tag == kWant) {
          credit[static_cast<size_t>(m.source)] += pod_from<int32_t>(m.bytes);
        } else if (m.tag == kResult) {
          ++received;
          ++credit[static_cast<size_t>(m.source)];
          on_result(pod_from<int64_t>(m.bytes), m.bytes.substr(sizeof(int64_t)));
        } else if (m.tag == kFailed) {
          rethrow_described(m.bytes, m.source);
        }
        hand_out(m.source);
      }
      for (FarmDone& d : pool.take(std::chrono::milliseconds(any ? 0 : 1))) {
        if (d.error) std::rethrow_exception(d.error);
        ++received;
        if (next < tasks.size()) pool.submit(tasks[next++]);
        on_result(d.task, d.result);
      }
    }
    stop_workers();
  }

  void serve(int slots, const TaskFn& work) override {
    FarmPool pool(slots, work);
    send_bytes(pod_bytes<int32_t>(pool.slots()), 0, kWant);
    Message m;
    for (;;) {
      bool any = false;
      while (mpi_poll(0, m)) {
        any = true;
        if (m.tag == kStop) {
          send_bytes("", 0, kBye);
          said_bye_ = true;
          return;  // the pool's destructor waits for tasks still running; their results are dropped
        }
        if (m.tag == kTask) pool.submit(pod_from<int64_t>(m.bytes));
      }
      for (FarmDone& d : pool.take(std::chrono::milliseconds(any ? 0 : 1))) {
        if (d.error) {
          send_bytes(describe(d.error), 0, kFailed);
          continue;  // rank 0 ends the job and says stop
        }
        send_bytes(pod_bytes<int64_t>(d.task) + d.result, 0, kResult);
      }
    }
  }

 private:
  void wait_for_stop() {
    Message m;
    for (;;) {
      if (!mpi_poll(0, m)) {
        mpi_idle();
      } else if (m.tag == kStop) {
        send_bytes("", 0, kBye);
        said_bye_ = true;
        return;
      }
    }
  }
  // Rank 0, after STOP: every message still coming is dropped until each worker has said BYE.
  void drain() {
    int left = size_ - 1;
    Message m;
    while (left > 0) {
      if (!mpi_poll(MPI_ANY_SOURCE, m)) {
        mpi_idle();
      } else if (m.tag == kBye) {
        --left;
      }
    }
  }
  void stop_workers() {
    if (stopped_) return;
    stopped_ = true;
    for (int w = 1; w < size_; ++w) send_bytes("", w, kStop);
  }
  int rank_ = 0, size_ = 1;
  bool owns_ = false, stopped_ = false, said_bye_ = false;
};

}  // namespace

std::unique_ptr<Farm> make_mpi_farm() { return std::make_unique<MpiFarm>(); }

}  // namespace reslens::cli
