// cpp-httplib in front of Api::handle (see http_server.h).
#include "server/http_server.h"

#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <thread>

#include "reslens/error.h"

#if defined(RESLENS_HAVE_HTTPLIB)
#include <httplib.h>
#endif

namespace reslens::server {

#if defined(RESLENS_HAVE_HTTPLIB)

namespace {

// SIGINT and SIGTERM write a byte to this pipe (all a handler may safely do, on whatever thread the
// signal lands: libraries such as OpenBLAS start threads of their own before main); a thread that
// reads it stops the server.
int g_stop_pipe[2] = {-1, -1};

extern "C" void on_stop_signal(int) {
  const char byte = 1;
  [[maybe_unused]] const ssize_t n = write(g_stop_pipe[1], &byte, 1);
}

}  // namespace

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

  const int port = options.port == 0 ? http.bind_to_any_port(options.host) : (http.bind_to_port(options.host, options.port) ? options.port : -1);
  if (port <= 0) {
    throw IoError("cannot listen on " + options.host + ":" + std::to_string(options.port) +
                  " (in use, or not an address of this machine)");
  }
  if (pipe(g_stop_pipe) != 0) throw IoError("cannot create a pipe for the stop signals");
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int {}, old_term {};
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  std::thread waiter([&] {
    char byte = 0;
    while (read(g_stop_pipe[0], &byte, 1) < 0 && errno == EINTR) {
    }
    http.stop();
  });
  on_listening(port);
  http.listen_after_bind();
  on_stop_signal(0);  // wakes the waiter when listening ended for another reason
  waiter.join();
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  close(g_stop_pipe[0]);
  close(g_stop_pipe[1]);
  g_stop_pipe[0] = g_stop_pipe[1] = -1;
}

#else

bool http_available() { return false; }

void serve_http(Api&, const HttpOptions&, const std::function<void(int)>&) {
  throw UnsupportedError("this reslens was built without its server (cpp-httplib was not found when it was configured, or RESLENS_BUILD_WEB was off; apt-get install libcpp-httplib-dev and rebuild)");
}

#endif

}  // namespace reslens::server
