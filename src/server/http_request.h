// Reading one HTTP/1.1 request from a socket's bytes, within limits. The reader is fed whatever a
// read returned and never holds more than the limits allow: headers are bounded as they arrive, and a
// body is bounded after decoding (Content-Length, chunked framing, gzip or deflate), so a 100 MB
// chunked body or a gzip bomb costs at most `max_body_bytes` of memory before its 413. It has no
// socket of its own, so it is tested and fuzzed on bytes (tests/unit/server, tests/fuzz).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace reslens::server {

struct HttpLimits {
  size_t max_header_bytes = 16 * 1024;  ///< request line + header lines (and a chunked body's trailers)
  size_t max_headers = 100;
  size_t max_body_bytes = 64 * 1024;    ///< the body as read from the wire, and again once decoded
};

struct HttpRequest {
  std::string method;  ///< "GET", "POST", ...
  std::string path;    ///< percent-decoded, without the query
  std::map<std::string, std::string> query;    ///< percent-decoded; '+' is a space
  std::map<std::string, std::string> headers;  ///< names lower-cased; repeated headers joined by ", "
  std::string body;    ///< decoded (chunked framing and Content-Encoding removed)
};

class Inflater;  // zlib's stream (http_request.cpp)

class RequestReader {
 public:
  enum class State {
    kNeedMore,      ///< feed more bytes
    kWantContinue,  ///< the headers asked "Expect: 100-continue": answer it, then feed the body
    kDone,          ///< request() is complete
    kFailed,        ///< error_status() / error_message() say why; the connection should close
  };

  explicit RequestReader(HttpLimits limits = {});
  ~RequestReader();
  RequestReader(const RequestReader&) = delete;
  RequestReader& operator=(const RequestReader&) = delete;

  /// Consumes `bytes` (any split of the stream). Bytes after a complete request are ignored: the
  /// server answers one request per connection.
  State feed(std::string_view bytes);
  State state() const { return state_; }
  /// Whether any byte has arrived (an idle connection that times out gets no 408).
  bool started() const { return started_; }

  const HttpRequest& request() const { return request_; }
  HttpRequest& request() { return request_; }
  int error_status() const { return error_status_; }  ///< 400, 413, 415, 431, 501, 505
  const std::string& error_message() const { return error_message_; }

 private:
  enum class Phase { kHead, kLength, kChunkSize, kChunkData, kChunkDataEnd, kTrailers, kDone };
  State fail(int status, std::string message);
  State parse_head(const std::string& head);  // request line and headers; sets up the body's reading
  State feed_body(std::string_view data);
  State append_body(std::string_view data);  // wire bytes of the body proper (framing removed)
  State finish();
  bool take_line(std::string& line);  // a CRLF- (or LF-) terminated line from buf_, without its end

  HttpLimits limits_;
  State state_ = State::kNeedMore;
  Phase phase_ = Phase::kHead;
  bool started_ = false;
  std::string buf_;           ///< bytes not yet consumed (bounded by the header limit or one chunk line)
  size_t remaining_ = 0;      ///< Content-Length bytes, or the current chunk's, still to come
  size_t wire_body_ = 0;      ///< body bytes as sent (before decoding)
  size_t trailer_bytes_ = 0;
  bool expect_continue_ = false;
  std::unique_ptr<Inflater> inflater_;  ///< Content-Encoding: gzip or deflate
  HttpRequest request_;
  int error_status_ = 0;
  std::string error_message_;
};

/// "OK", "Not Found", ... for a status code ("" for one it does not know).
const char* http_reason(int status);

}  // namespace reslens::server
