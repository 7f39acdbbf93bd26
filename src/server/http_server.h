// The HTTP side of `reslens serve`: Debian's cpp-httplib in front of Api::handle. Only this file
// knows about sockets; the API is tested without them (tests/web/server_api_test.cpp).
#pragma once

#include <functional>
#include <string>

#include "server/api.h"

namespace reslens::server {

/// Whether this build has the HTTP server (cpp-httplib was found when it was configured).
bool http_available();

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8080;          ///< 0: any free port (on_listening says which)
  int http_threads = 8;     ///< connections served at once (model work still runs one job at a time)
};

/// Serves `api` until SIGINT or SIGTERM, calling on_listening(port) once the socket is bound.
/// Throws IoError when the address cannot be bound, UnsupportedError without cpp-httplib.
void serve_http(Api& api, const HttpOptions& options, const std::function<void(int port)>& on_listening);

}  // namespace reslens::server
