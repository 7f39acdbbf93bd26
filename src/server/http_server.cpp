// cpp-httplib in front of Api::handle (see http_server.h).
#include "server/http_server.h"

#include <pthread.h>

#include <csignal>
#include <thread>

#include "reslens/error.h"

#if RESLENS_HAVE_HTTPLIB
#include <httplib.h>
#endif

namespace reslens::server {

namespace {
sigset_t stop_signals() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGTERM);
  return s;
}
}  // namespace

void block_stop_signals() {
  const sigset_t s = stop_signals();
  pthread_sigmask(SIG_BLOCK, &s, nullptr);
}

#if RESLENS_HAVE_HTTPLIB

bool http_available() { return true; }

void serve_http(Api& api, const HttpOptions& options, const std::function<void(int port)>& on_listening) {
  httplib::Server http;
  const int n_threads = options.http_threads;
  http.new_task_queue = [n_threads] { return new httplib::ThreadPool(static_cast<size_t>(n_threads)); };
  // httplib refuses larger bodies itself (413) before reading them; Api checks again.
  http.set_payload_max_length(api.options().max_body_bytes);
  http.set_read_timeout(10, 0);
  http.set_write_timeout(30, 0);

  auto handler = [&api](const httplib::Request& req, httplib::Response& res) {
    Request r;
    r.method = req.method;
    r.path = req.path;
    for (const auto& [k, v] : req.params) r.query[k] = v;
    r.body = req.body;
    const Reply reply = api.handle(r);
    res.status = reply.status;
    res.set_header("Cache-Control", "no-store");
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_content(reply.body, reply.content_type.c_str());
  };
  http.Get(".*", handler);
  http.Post(".*", handler);
  http.Put(".*", handler);
  http.Patch(".*", handler);
  http.Delete(".*", handler);
  http.Options(".*", handler);
  // Whatever httplib answers by itself (413 for a body over the limit, 400 for a bad request line)
  // also gets a JSON body.
  http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    const Reply r = error_reply(res.status, res.status == 413 ? "the request body is over the size limit"
                                                              : std::string("HTTP ") + std::to_string(res.status));
    res.set_content(r.body, r.content_type.c_str());
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    const Reply r = error_reply(500, "internal error");
    res.status = 500;
    res.set_content(r.body, r.content_type.c_str());
  });

  // SIGINT and SIGTERM stop the server from a thread that waits for them (no work in a handler).
  const sigset_t signals = stop_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const int port = options.port == 0 ? http.bind_to_any_port(options.host) : (http.bind_to_port(options.host, options.port) ? options.port : -1);
  if (port <= 0) {
    throw IoError("cannot listen on " + options.host + ":" + std::to_string(options.port) +
                  " (in use, or not an address of this machine)");
  }
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    http.stop();
  });
  on_listening(port);
  http.listen_after_bind();
  pthread_kill(waiter.native_handle(), SIGTERM);  // wakes the waiter when listening ended otherwise
  waiter.join();
}

#else

bool http_available() { return false; }

void serve_http(Api&, const HttpOptions&, const std::function<void(int)>&) {
  throw UnsupportedError("this reslens was built without cpp-httplib (apt-get install libcpp-httplib-dev, then rebuild)");
}

#endif

}  // namespace reslens::server
