// The single worker thread and the job table (see job_queue.h).
#include "server/job_queue.h"

#include <algorithm>
#include <random>

namespace reslens::server {

namespace {

// 128 bits from the kernel's generator as 32 hex digits: a page on another origin cannot guess the
// id of somebody else's job (sequential ids could be walked).
std::string new_job_id() {
  static thread_local std::random_device rd;  // /dev/urandom (getrandom) on Linux
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 4; ++i) {
    const uint32_t v = rd();
    for (int b = 28; b >= 0; b -= 4) id += kHex[(v >> b) & 15];
  }
  return id;
}

}  // namespace

const char* to_string(Job::State s) {
  switch (s) {
    case Job::State::kQueued: return "queued";
    case Job::State::kRunning: return "running";
    case Job::State::kDone: return "done";
    case Job::State::kFailed: return "failed";
    case Job::State::kCancelled: return "cancelled";
  }
  return "?";
}

Job::Job(std::string id, std::string kind, uint64_t seq)
    : id_(std::move(id)), kind_(std::move(kind)), seq_(seq), future_(promise_.get_future().share()) {}

void Job::set_stage(std::string stage) {
  std::lock_guard lock(mu_);
  stage_ = std::move(stage);
}

void Job::add_part(std::string json_document) {
  std::lock_guard lock(mu_);
  parts_.push_back(std::move(json_document));
}

std::pair<std::vector<std::string>, size_t> Job::parts_from(size_t from) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (size_t i = from; i < parts_.size(); ++i) out.push_back(parts_[i]);
  return {std::move(out), parts_.size()};
}

void Job::start() {
  std::lock_guard lock(mu_);
  state_ = State::kRunning;
  stage_ = "running";
}

void Job::finish(Reply reply) {
  {
    std::lock_guard lock(mu_);
    // A stop asked for before the end wins over whatever the work returned (a step boundary's
    // error, or a result finished just after the request): the client was told it would stop.
    if (stop_requested()) {
      state_ = State::kCancelled;
      reply = {409, "application/json", R"({"error": "the job was cancelled"})"};
    } else {
      state_ = reply.status < 400 ? State::kDone : State::kFailed;
    }
    stage_ = to_string(state_);
    reply_ = reply;
  }
  promise_.set_value(std::move(reply));
}

bool Job::request_stop() {
  std::lock_guard lock(mu_);  // against finish(): either the stop is seen there, or the job had ended
  if (state_ != State::kQueued && state_ != State::kRunning) return false;
  stop_requested_.store(true, std::memory_order_relaxed);
  return true;
}

Job::Snapshot Job::snapshot() const {
  std::lock_guard lock(mu_);
  Snapshot s;
  s.state = state_;
  s.stage = stage_;
  s.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - created_).count();
  if (state_ == State::kDone || state_ == State::kFailed || state_ == State::kCancelled) s.reply = &reply_;
  return s;
}

JobQueue::JobQueue(size_t max_pending, size_t keep_finished)
    : max_pending_(max_pending), keep_finished_(keep_finished), worker_([this] { loop(); }) {}

JobQueue::~JobQueue() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
  for (auto& [job, work] : queue_) {
    job->finish({503, "application/json", R"({"error": "the server is stopping"})"});
  }
}

std::shared_ptr<Job> JobQueue::submit(std::string kind, Work work) {
  std::shared_ptr<Job> job;
  {
    std::lock_guard lock(mu_);
    if (stop_ || queue_.size() >= max_pending_) return nullptr;
    const uint64_t seq = next_seq_++;
    job = std::make_shared<Job>(new_job_id(), std::move(kind), seq);
    jobs_[job->id()] = job;
    queue_.emplace_back(job, std::move(work));
  }
  cv_.notify_one();
  return job;
}

std::shared_ptr<Job> JobQueue::find(const std::string& id) const {
  std::lock_guard lock(mu_);
  const auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : it->second;
}

size_t JobQueue::ahead_of(const Job& job) const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [queued, work] : queue_) {
    if (queued.get() == &job) return n;
    ++n;
  }
  return 0;
}

size_t JobQueue::pending() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

JobQueue::CancelResult JobQueue::cancel(const std::string& id) {
  std::shared_ptr<Job> job;
  bool was_queued = false;
  {
    std::lock_guard lock(mu_);
    const auto it = jobs_.find(id);
    if (it == jobs_.end()) return CancelResult::kUnknown;
    job = it->second;
    const auto q = std::find_if(queue_.begin(), queue_.end(), [&](const auto& entry) { return entry.first == job; });
    if (q != queue_.end()) {
      queue_.erase(q);  // its work is dropped unrun
      was_queued = true;
    }
  }
  // A job the worker has just taken but not started is still "queued" here: it is asked to stop,
  // and the worker then skips its work (loop()).
  if (!job->request_stop()) return CancelResult::kFinished;
  if (!was_queued) return CancelResult::kStopping;
  job->finish({});
  std::lock_guard lock(mu_);
  keep_finished(job->id());
  return CancelResult::kCancelled;
}

void JobQueue::keep_finished(const std::string& id) {
  finished_.push_back(id);
  while (finished_.size() > keep_finished_) {
    jobs_.erase(finished_.front());
    finished_.pop_front();
  }
}

void JobQueue::loop() {
  while (true) {
    std::shared_ptr<Job> job;
    Work work;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      job = std::move(queue_.front().first);
      work = std::move(queue_.front().second);
      queue_.pop_front();
    }
    job->start();
    Reply reply;
    try {
      if (!job->stop_requested()) reply = work(*job);  // cancelled between the queue and here: not run
    } catch (...) {
      reply = {500, "application/json", std::string(R"({"error": "internal error"})")};
    }
    job->finish(std::move(reply));
    std::lock_guard lock(mu_);
    keep_finished(job->id());
  }
}

}  // namespace reslens::server
