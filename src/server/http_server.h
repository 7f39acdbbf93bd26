// The HTTP side of `reslens serve`: sockets in front of Api::handle. Only this file knows about
// sockets; the API is tested without them (tests/web/server_api_test.cpp), the request reader on
// bytes (tests/unit/server), and the whole under hostile load (tests/web/hostile_test.py).
//
// Why not a library: Debian's cpp-httplib (0.11) gives each connection a thread that waits on it
// with a per-byte timeout, so eight clients sending a byte every few seconds stop the server, and it
// bounds bodies before decoding only. Here one thread reads every connection without blocking, each
// request has one deadline for the whole of it, a request reaches the worker threads only once it
// is complete, and its body is bounded after decoding (server/http_request.h).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "server/api.h"

namespace reslens::server {

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                ///< 0: any free port (on_listening says which)
  int http_threads = 8;           ///< complete requests handled at once (the model still runs one job at a time)
  double request_timeout_s = 10;  ///< from a connection's accept to its request's last byte
  double write_timeout_s = 30;    ///< to write a reply
  size_t max_connections = 512;   ///< open connections; more are answered 503 and closed
  size_t max_queued = 64;         ///< complete requests waiting for a thread; more get 503
};

/// Serves `api` until SIGINT or SIGTERM, calling on_listening(port) once the socket is bound.
/// Throws IoError when the address cannot be bound (in use: the port is never shared).
void serve_http(Api& api, const HttpOptions& options, const std::function<void(int port)>& on_listening);

}  // namespace reslens::server
