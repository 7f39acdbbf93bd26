// The server's single worker: requests that touch the model become jobs, run one at a time on one
// thread that owns the model's use, and report their state (queued with how many ahead, running with
// a stage, done with the reply, failed with an error, or cancelled). HTTP threads wait on a job's
// future (synchronous requests) or poll it by id (POST ...?async=1, then GET /api/jobs/ID). A client
// that no longer wants a job cancels it (JobQueue::cancel): a queued one leaves the queue at once, a
// running one is asked to stop (Job::stop_requested, which the work checks between its steps).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace reslens::server {

/// An HTTP answer: status, content type and body.
struct Reply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

class Job {
 public:
  enum class State { kQueued, kRunning, kDone, kFailed, kCancelled };

  Job(std::string id, std::string kind, uint64_t seq);
  const std::string& id() const { return id_; }
  const std::string& kind() const { return kind_; }
  uint64_t seq() const { return seq_; }

  /// Called by the work itself as it goes ("forward pass", "attribution", ...).
  void set_stage(std::string stage);
  /// Called by the work as parts of its answer finish (an answer's explained steps, each a JSON
  /// document), so a client polling the job reads them before the whole reply is done.
  void add_part(std::string json_document);
  /// The parts added so far from index `from` on, and how many there are in all.
  std::pair<std::vector<std::string>, size_t> parts_from(size_t from) const;
  /// Whether a client cancelled the job while it ran: the work should stop at its next step
  /// boundary (whatever it returns then, the job ends cancelled). Cheap: the work may poll it.
  bool stop_requested() const { return stop_requested_.load(std::memory_order_relaxed); }

  struct Snapshot {
    State state = State::kQueued;
    std::string stage;
    double elapsed_s = 0;  ///< since it was queued
    const Reply* reply = nullptr;  ///< when done or failed (lives as long as the job)
  };
  Snapshot snapshot() const;
  std::shared_future<Reply> future() const { return future_; }

 private:
  friend class JobQueue;
  void start();
  /// Ends the job: cancelled when a stop was requested before (its reply is then the cancellation's,
  /// not the work's), else done (status < 400) or failed.
  void finish(Reply reply);
  /// A running job: marks the stop asked for (true). A finished job: false, nothing changes.
  bool request_stop();

  const std::string id_, kind_;
  const uint64_t seq_;
  const std::chrono::steady_clock::time_point created_ = std::chrono::steady_clock::now();
  mutable std::mutex mu_;
  State state_ = State::kQueued;
  std::atomic<bool> stop_requested_{false};
  std::string stage_ = "queued";
  std::vector<std::string> parts_;
  Reply reply_;
  std::promise<Reply> promise_;
  std::shared_future<Reply> future_;
};

const char* to_string(Job::State s);

class JobQueue {
 public:
  using Work = std::function<Reply(Job&)>;

  /// At most `max_pending` jobs wait at once; the last `keep_finished` finished jobs stay findable.
  JobQueue(size_t max_pending, size_t keep_finished);
  /// Stops the worker after the running job; jobs still waiting fail with 503.
  ~JobQueue();
  JobQueue(const JobQueue&) = delete;
  JobQueue& operator=(const JobQueue&) = delete;

  /// Queues `work`; nullptr when the queue is full (the caller answers 503). The work's exceptions
  /// must be turned into replies by the work itself; any that escape become a 500.
  std::shared_ptr<Job> submit(std::string kind, Work work);
  /// A job by id (queued, running or among the recent finished ones), or nullptr.
  std::shared_ptr<Job> find(const std::string& id) const;
  /// Jobs ahead of `job` in the queue (0 when it runs or has finished).
  size_t ahead_of(const Job& job) const;
  size_t pending() const;

  enum class CancelResult {
    kUnknown,    ///< no such job (never, or no longer kept)
    kFinished,   ///< done, failed or cancelled already: nothing to cancel
    kCancelled,  ///< it was queued: removed from the queue, its work never runs, it ends cancelled now
    kStopping,   ///< it is running: asked to stop, it ends cancelled at its next step boundary
  };
  /// Cancels a job by id (see CancelResult). Any thread.
  CancelResult cancel(const std::string& id);

 private:
  void loop();
  void keep_finished(const std::string& id);  ///< with mu_ held

  const size_t max_pending_, keep_finished_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::shared_ptr<Job>, Work>> queue_;
  std::map<std::string, std::shared_ptr<Job>> jobs_;  ///< every queued, running and kept finished job
  std::deque<std::string> finished_;                 ///< ids, oldest first
  uint64_t next_seq_ = 1;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace reslens::server
