// The single worker thread and the job table (see job_queue.h).
#include "server/job_queue.h"

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
    state_ = reply.status < 400 ? State::kDone : State::kFailed;
    stage_ = to_string(state_);
    reply_ = reply;
  }
  promise_.set_value(std::move(reply));
}

Job::Snapshot Job::snapshot() const {
  std::lock_guard lock(mu_);
  Snapshot s;
  s.state = state_;
  s.stage = stage_;
  s.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - created_).count();
  if (state_ == State::kDone || state_ == State::kFailed) s.reply = &reply_;
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
      reply = work(*job);
    } catch (...) {
      reply = {500, "application/json", std::string(R"({"error": "internal error"})")};
    }
    job->finish(std::move(reply));
    std::lock_guard lock(mu_);
    finished_.push_back(job->id());
    while (finished_.size() > keep_finished_) {
      jobs_.erase(finished_.front());
      finished_.pop_front();
    }
  }
}

}  // namespace reslens::server
