// The JSON API of `reslens serve` (docs/report.md lists every endpoint with examples), as a plain
// function from a request to a reply so it can be tested without sockets. Requests are validated on
// the caller's thread (4xx at once for a body over the limit, malformed JSON, unknown fields, wrong
// types, out-of-range indices); everything that runs the model is a job on the single worker.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "reslens/chat.h"
#include "reslens/model.h"
#include "server/job_queue.h"

namespace reslens::server {

struct ApiOptions {
  size_t max_body_bytes = 64 * 1024;
  size_t max_prompt_tokens = 512;  ///< also never more than the model's context
  size_t max_pending_jobs = 64;    ///< more waiting requests get 503
  size_t keep_finished_jobs = 256;
  int n_threads = 0;               ///< for the model (0 = every core)
  std::string example_prompt;      ///< shown by the page as a placeholder
  /// Lay every prompt out as a chat user turn with this layout (reslens/chat.h), and this system
  /// message; none: prompts are tokenized as typed.
  std::optional<ChatTemplate> chat;
  std::string chat_system;
  /// Requests must name the server in their Host header by an IP address, "localhost" or one of
  /// these names; anything else (a DNS-rebinding page's own domain) gets 403. Requests without a Host
  /// header (not a browser's) pass.
  std::vector<std::string> host_names;
  /// When set, every /api/ request needs "Authorization: Bearer <token>" (401 without), except a
  /// leaving page's cancel beacon (an empty-bodied POST /api/jobs/ID/cancel; see refuse()).
  std::string token;
};

struct Request {
  std::string method;  ///< "GET", "POST", ...
  std::string path;    ///< without the query
  std::map<std::string, std::string> query;
  std::string body;
  std::map<std::string, std::string> headers;  ///< names lower-cased
};

class Engine;  // the worker's side: runs, explanations and their caches (api.cpp)

class Api {
 public:
  Api(std::shared_ptr<const Model> model, ApiOptions options);
  ~Api();
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  /// Any request: "/" gives the explorer page, "/api/..." the JSON API; others are 404.
  Reply handle(const Request& request);

  const ApiOptions& options() const { return options_; }

 private:
  Reply post(const std::string& endpoint, const Request& request);
  Reply job_status(const std::string& id, const std::map<std::string, std::string>& query = {}) const;
  /// DELETE /api/jobs/ID and POST /api/jobs/ID/cancel: 200 (was queued, now cancelled) or 202
  /// (running, asked to stop) with the job's status; 409 when it has finished; 404 when unknown.
  Reply cancel_job(const std::string& id, const Request& request);
  Reply info() const;
  /// The checks a browser's request must pass before anything else (Host, token, content type), or
  /// nothing. A POST /api/jobs/ID/cancel with an empty body (a leaving page's navigator.sendBeacon,
  /// which can set no header) needs neither the token nor a JSON content type; api.cpp's
  /// is_beacon_cancel says why that is safe.
  std::optional<Reply> refuse(const Request& request) const;

  std::shared_ptr<const Model> model_;
  ApiOptions options_;
  size_t max_tokens_;
  std::unique_ptr<Engine> engine_;  ///< used only on the worker thread
  std::unique_ptr<JobQueue> jobs_;  ///< declared last: destroyed (its worker stopped) first
};

/// {"error": message} with `status`.
Reply error_reply(int status, const std::string& message);

}  // namespace reslens::server
